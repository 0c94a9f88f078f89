"""The ``dsslic`` command: compress, decompress, info, segment, eval, train.

Exit codes: 0 success; 2 bad input, bad file, bad argument or a path that cannot be written (one line on
stderr, no output file left behind, inputs untouched); 3 the disk (or quota) is full; 1 an internal error
or another system error. ``-`` as an input reads stdin, ``-o -`` writes stdout.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import warnings
from pathlib import Path

from . import distributed
from .errors import DsslicError, DsslicInputError
from .imageio import IMAGE_EXTS

STDIO = "-"


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dsslic: warning: {message}", file=sys.stderr)


def _read(path: str) -> bytes:
    if path == STDIO:
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        raise DsslicInputError(f"{path}: no such file")
    return p.read_bytes()


def _write(out: str | Path, data: bytes) -> None:
    """The output, whole or not at all: stdout for ``-``, else through a temporary file and a rename."""
    if str(out) == STDIO:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as e:
            _drop_stdout()
            raise OSError(e.errno, e.strerror, "stdout") from None
        return
    from .fileutil import atomic_write

    atomic_write(out, data)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_output(out: str | Path, inputs: list[Path], force: bool) -> None:
    """Refuse, before any work, an output that is an input (also through a symlink or hard link, whatever the
    flags), that exists without --force, or that cannot be written (missing or read-only folder, long name)."""
    if str(out) == STDIO:
        return
    from .fileutil import check_writable

    out = Path(out)
    for i in inputs:
        if str(i) != STDIO and _same_file(i, out):
            raise DsslicInputError(f"{out}: is the input {i}; an input is never overwritten")
    if out.is_dir():
        raise DsslicInputError(f"{out}: is a directory")
    if (out.exists() or out.is_symlink()) and not force:
        raise DsslicInputError(f"{out}: already exists (use --force to overwrite)")
    if not out.parent.is_dir():
        raise DsslicInputError(f"{out.parent}: no such directory")
    check_writable(out)


def _check_writable(out: str | Path, force: bool) -> None:
    """An output of a command that reads no file of the user's (see :func:`_check_output`)."""
    _check_output(out, [], force)


def _check_folder(folder: Path) -> None:
    """A batch's output folder, or the nearest folder above it that exists, must take new files."""
    from .fileutil import check_writable

    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise DsslicInputError(f"{folder}: not a directory")
    check_writable(folder / "probe.dsslic")


def _jobs(inputs: list[str], out: str) -> tuple[list[tuple[Path, Path]], bool]:
    """(input, output) pairs, and whether this is a batch (OUT is a directory).

    A folder's images keep their path below it; files given one by one keep theirs below the folder
    they have in common. Two inputs that would map to one output are refused before anything is done."""
    if STDIO in inputs:
        if len(inputs) > 1:
            raise DsslicInputError("- (stdin) must be the only input")
        if out != STDIO and (out.endswith(os.sep) or Path(out).is_dir()):
            raise DsslicInputError("an image read from stdin needs -o FILE or -o -")
        return [(Path(STDIO), Path(out))], False
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise DsslicInputError(f"{p}: no such file or directory")
    batch = len(paths) > 1 or paths[0].is_dir() or out.endswith(os.sep) or (out != STDIO and Path(out).is_dir())
    if not batch:
        return [(paths[0], Path(out))], False
    if out == STDIO:
        raise DsslicInputError("several images cannot all go to stdout (-o -); give an output folder")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise DsslicInputError(f"{out_dir}: not a directory (several inputs need an output directory)")
    files = [p for p in paths if not p.is_dir()]
    base = Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in files])) if files else None
    pairs, seen, by_dst = [], set(), {}
    for p in paths:
        found = ([(f, f.relative_to(p)) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_EXTS]
                 if p.is_dir() else [(p, Path(os.path.abspath(p)).relative_to(base))])
        for f, rel in found:
            key = os.path.realpath(f)
            if key in seen:  # the same file named twice (itself and through its folder)
                continue
            seen.add(key)
            dst = out_dir / rel.with_suffix(".dsslic")
            if dst in by_dst:
                raise DsslicInputError(f"{by_dst[dst]} and {f} would both be written to {dst}; "
                                       "rename one or compress them separately")
            by_dst[dst] = f
            pairs.append((f, dst))
    if not pairs:
        raise DsslicInputError("no images found in the input")
    return pairs, True


def _quality(a: argparse.Namespace) -> int | None:
    """The residual's quality from -q/--quality or --qp, checked against its codec's range (no torch needed)."""
    from . import residual

    if a.qp is not None and a.residual != "hevc":
        raise DsslicInputError("--qp is the HEVC setting; use -q/--quality for other residual codecs")
    quality = a.qp if a.qp is not None else a.quality
    if a.target_bpp is not None:
        if a.target_bpp <= 0:
            raise DsslicInputError("--target-bpp must be positive")
        if quality is not None:
            raise DsslicInputError("--target-bpp searches the quality; it cannot be combined with -q/--qp")
        if a.residual == "none":
            raise DsslicInputError("--target-bpp sets the residual's quality; with --residual none there is none")
    if quality is not None:
        if a.residual in ("none", "learned"):
            raise DsslicInputError(f"--residual {a.residual} has no quality setting")
        residual.check_quality(a.residual, quality)
    return quality


def _check_limits(a: argparse.Namespace) -> None:
    if a.max_pixels is not None and a.max_pixels < 1:
        raise DsslicInputError("--max-pixels must be at least 1")


def cmd_compress(a: argparse.Namespace) -> int:
    _check_limits(a)
    quality = _quality(a)
    pairs, batch = _jobs(a.inputs, a.output)
    to_stdout = not batch and str(pairs[0][1]) == STDIO
    if batch:
        inputs = {(st.st_dev, st.st_ino) for st in (os.stat(i) for i, _ in pairs)}
        for _i, o in pairs:
            if o.exists() and (os.stat(o).st_dev, os.stat(o).st_ino) in inputs:
                raise DsslicInputError(f"{o}: is an input; an input is never overwritten")
        _check_folder(Path(a.output))
        todo = [(i, o) for i, o in pairs if a.force or not o.exists()]
        if len(todo) < len(pairs):
            print(f"dsslic: skipping {len(pairs) - len(todo)} already compressed (use --force to redo)", file=sys.stderr)
        Path(a.output).mkdir(parents=True, exist_ok=True)
    else:
        _check_output(pairs[0][1], [pairs[0][0]], a.force)
        todo = pairs
    image = _read(STDIO) if str(pairs[0][0]) == STDIO else None
    if a.workers or a.scheduler:  # Dask: local worker processes or a cluster (dsslic.distributed)
        if image is not None:
            raise DsslicInputError("--workers/--scheduler take files, not stdin")
        return distributed.cli_batch(a, todo, "compress", residual=a.residual, quality=quality,
                                     target_bpp=a.target_bpp, verify=a.verify)
    from tqdm import tqdm

    from . import segmenters
    from .codec import Codec

    segmenter = segmenters.get(a.segmenter, device=a.device) if a.segmenter else None
    if a.labels:
        segmenter = segmenters.FileSegmenter(a.labels, label_space=a.label_space)
    codec = Codec(model=a.model, segmenter=segmenter, device=a.device, max_pixels=a.max_pixels, enhance=a.enhance,
                  restore=False if a.no_restore else None)
    roi = codec.roi(a.roi, a.roi_boost, a.residual) if a.roi or a.roi_boost is not None else None
    failed = 0
    bar = tqdm(todo, unit="img", disable=not batch or a.quiet, file=sys.stderr)
    for src, dst in bar:
        try:
            res = codec.encode(src if image is None else image, residual=a.residual, quality=quality,
                               target_bpp=a.target_bpp, verify=a.verify,
                               compact=a.compact_codec, compact_q=a.compact_quality, roi=roi)
            if batch:
                dst.parent.mkdir(parents=True, exist_ok=True)
            _write(dst, res.data)
        except DsslicError as e:
            if not batch:
                raise
            failed += 1
            tqdm.write(f"dsslic: error: {e}", file=sys.stderr)
            continue
        if not a.quiet:
            q = f" q={res.quality}" if res.quality is not None else ""
            p = f", PSNR {res.psnr:.2f} dB" if res.psnr is not None else ""
            tqdm.write(f"{dst}: {len(res.data)} bytes, {res.bpp:.4f} bpp{q}{p}",
                       file=sys.stderr if batch or to_stdout else sys.stdout)
    if failed:
        print(f"dsslic: error: {failed} of {len(todo)} images failed", file=sys.stderr)
        return 2
    return 0


def _warn_constant_labels(hd) -> None:
    """``--layers seg`` of a file whose label map is one value: a flat image, said in words."""
    from . import codecs, zoo
    from .bitstream import LayerKind
    from .segmenters import labelspace

    if hd.layer(LayerKind.SEG).codec_id != codecs.get("const").id:
        return
    ls = labelspace.by_id(hd.segmenter_id)
    if ls is None or ls.id == labelspace.NONE.id:
        names = zoo.names("segmenter")
        warnings.warn("this file stores no label map (constant); compress with --segmenter "
                      f"{'|'.join(names) or 'NAME'} (or --labels MAP.png) to store one", stacklevel=2)
    else:
        warnings.warn(f"the label map is one value everywhere (label space {ls.name})", stacklevel=2)


def cmd_decompress(a: argparse.Namespace) -> int:
    from . import bitstream
    from .imageio import encode_image, output_format, save_image

    _check_limits(a)
    out = a.output
    try:
        output_format(".png" if out == STDIO else Path(out).suffix, a.lossy_output_quality)
    except DsslicInputError as e:
        raise DsslicInputError(f"{out}: {e}") from None
    _check_output(out, [Path(a.input)], a.force)
    data = _read(a.input)
    if a.workers or a.scheduler:
        if STDIO in (a.input, out) or a.lossy_output_quality is not None or a.layers == "seg":
            raise DsslicInputError("--workers/--scheduler write lossless files: not with -, "
                                   "--lossy-output-quality or --layers seg")
        return distributed.cli_batch(a, [(Path(a.input), Path(out))], "decompress", layers=a.layers)
    hd = bitstream.parse(data, a.max_pixels)  # a bad file fails here or in its layers, before torch is imported
    from . import decoding

    def codec(who: decoding.Decoder):
        from .codec import Codec

        return Codec(model=who.model, segmenter=who.segmenter, device=a.device, max_pixels=a.max_pixels,
                     enhance=who.enhance, restore=False if a.no_restore else None)

    img = decoding.decode(hd, a.layers, a.model, a.enhance, codec, name=a.input)
    if a.layers == "seg":  # the base layer alone: no network, no torch
        _warn_constant_labels(hd)
    if out == STDIO:
        _write(out, encode_image(img, ".png"))
    else:
        save_image(out, img, a.lossy_output_quality)
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    from .decoding import info  # torch-free: headers and the base layer only

    _check_limits(a)
    d = info(_read(a.input), a.max_pixels)
    if a.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{a.input}: {d['width']}x{d['height']}, {d['bytes']} bytes, {d['bpp']:.4f} bpp "
          f"({d['bpp_per_channel']:.4f} bpp per channel)")
    print(f"  model {d['model'] or 'unknown'} (id {d['model_id']}), alpha {d['alpha']}, "
          f"segmenter id {d['segmenter_id']}, {d['num_labels']} labels, present: "
          f"{', '.join(d['label_names_present']) if d['label_names_present'] else d['labels_present']}")
    print(f"  header {d['header_bytes']} bytes; residual range {d['residual_range']}")
    for la in d["layers"]:
        q = "" if la["quality"] is None else f" q={la['quality']}"
        print(f"  {la['layer']:8s} {la['codec']:9s}{q:6s} {la['bytes']:8d} bytes  {la['bpp']:.4f} bpp")
    return 0


def cmd_segment(a: argparse.Namespace) -> int:
    import numpy as np

    from . import segmenters
    from .fileutil import atomic_write
    from .imageio import load_image

    seg = segmenters.get(a.segmenter or segmenters.default_name(), device=a.device)
    if a.classes:
        print("\n".join(seg.class_names))
        return 0
    if a.input is None or a.output is None:
        raise DsslicInputError("segment needs IN and -o MAP.png (or --classes)")
    out = Path(a.output)
    _check_output(out, [Path(a.input)], a.force)
    x = load_image(a.input, a.max_pixels)
    labels = seg.segment(x)
    import io

    from PIL import Image

    buf = io.BytesIO()
    if a.color:
        Image.fromarray(segmenters.render_legend(segmenters.colorize(labels, seg.palette), labels, seg)).save(buf, "PNG")
    else:
        Image.fromarray(labels.astype(np.uint16) if labels.max(initial=0) > 255 else labels.astype(np.uint8)).save(buf, "PNG")
    atomic_write(out, buf.getvalue())
    present = [seg.class_names[i] for i in np.unique(labels) if i < seg.num_labels]
    print(f"{out}: {labels.shape[1]}x{labels.shape[0]} labels from {seg.name}; present: {', '.join(present)}")
    return 0


# Subcommands whose modules import torch or plotting libraries: built only when asked for, so that
# `dsslic info` or a bad file answers without paying for those imports.
_LAZY = {"eval": ("dsslic.evaluation.cli", "rate-distortion curves against classical codecs"),
         "report": ("dsslic.report", "self-contained HTML report of files, images or an eval run"),
         "train": ("dsslic.training.recnet", "train CompNet + FineNet (+ discriminators) on folders of images"),
         "train-segnet": ("dsslic.training.segnet", "train the SegNetLite segmenter from scratch on labelled images"),
         "train-enhance": ("dsslic.training.enhance", "train the learned enhancement layer (--residual learned)"),
         "train-restore": ("dsslic.training.restore", "train the decoder's restoration filter on decoded training photos")}


def _quality_help() -> str:
    """One knob for every residual codec: each one's scale and default, from the codecs themselves."""
    from .residual import for_choice, names

    parts = []
    for name in names():
        c = for_choice(name)
        if c.default_quality is None or c.quality_range == (0, 0):
            continue
        lo, hi = c.quality_range
        way = "higher is better" if c.higher_is_better else "lower is better"
        unit = {"hevc": "QP", "jpeg2000": "compression ratio"}.get(name, "quality")
        parts.append(f"{name}: {unit} {lo}-{hi}, default {c.default_quality}, {way}")
    return "residual quality, on the residual codec's own scale (" + "; ".join(parts) + ")"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from . import __version__
    from .imageio import DEFAULT_MAX_PIXELS, LOSSLESS_OUTPUTS
    from .residual import names as residual_names

    p = argparse.ArgumentParser(prog="dsslic", description="DSSLIC layered image compression",
                                epilog="exit codes: 0 success; 2 bad input, file, argument or output path; "
                                       "3 disk full; 1 internal error")
    p.add_argument("--version", action="version", version=f"dsslic {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    limits = argparse.ArgumentParser(add_help=False)
    limits.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images larger than this many pixels (default 100 megapixels)")
    common = argparse.ArgumentParser(add_help=False, parents=[limits])
    common.add_argument("--device", default="cpu", help="where the networks run: cpu (default) or cuda")
    model_help = ("a shipped model's name (lean, the default; general, street, plain) or a path: only an argument that ends in "
                  ".safetensors or contains a path separator is read as a file, a name is never looked up "
                  "outside the installed weights")

    c = sub.add_parser("compress", parents=[common], help="image(s) -> .dsslic")
    c.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories; - reads one image from stdin")
    c.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file, directory for several inputs (sub-folders mirrored), or - for stdout")
    g = c.add_mutually_exclusive_group()
    g.add_argument("-q", "--quality", type=int, help=_quality_help())
    g.add_argument("--qp", type=int, help="alias of -q for the HEVC residual: QP 0-51, lower is better (default 29)")
    c.add_argument("--target-bpp", type=float,
                   help="search the residual's quality for the whole file to come closest under this many bits "
                        "per pixel (not with -q, nor with --residual none)")
    c.add_argument("--residual", default="hevc", choices=[*residual_names(), "none"],
                   help="second enhancement layer codec (default hevc; none: the coarse layers only)")
    c.add_argument("--model", help=f"{model_help} (default: the shipped default)")
    c.add_argument("--compact-codec", choices=["hevc", "avif", "jxl", "jxl-lossless"],
                   help="codec of the compact image c (default hevc, chosen jointly with the residual; "
                        "jxl-lossless = the paper's configuration)")
    c.add_argument("--compact-quality", type=int, help="c's quality setting (default: the joint rule)")
    c.add_argument("--roi", metavar="CLASS[,CLASS...]", help="spend more residual bits on these classes of the map")
    c.add_argument("--roi-boost", type=int, metavar="DQ", help="--roi's boost in HEVC QP steps, -24..24 (default 6)")
    c.add_argument("--enhance", metavar="NAME|PATH", help="learned enhancement model for --residual learned")
    c.add_argument("--labels", metavar="MAP.png", help="use this label map as the base layer (the 'file' segmenter)")
    c.add_argument("--label-space", metavar="NAME", help="with --labels: the label space its ids belong to (photo, "
                                                          "camvid11; default: numbered classes)")
    c.add_argument("--segmenter", help="segmenter for the base layer (default: photo for label-free models, else the "
                                       "model's own): photo, camvid11, none, hf:DIR, ...")
    c.add_argument("--no-restore", action="store_true", help="no restoration filter at the decoder (default: the "
                                                              "model's shipped one, named in the file)")
    c.add_argument("--force", action="store_true", help="overwrite existing outputs (never an input)")
    c.add_argument("--verify", action="store_true", help="decode each output and check it against the encoder")
    c.add_argument("--quiet", action="store_true", help="no progress bar and no per-file line")
    distributed.add_arguments(c)
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", parents=[common], help=".dsslic -> image")
    d.add_argument("input", metavar="IN.dsslic", help="a .dsslic file, or - for stdin")
    d.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help=f"the image: {', '.join(sorted(LOSSLESS_OUTPUTS))} are written losslessly; .jpg and "
                        ".avif (or lossy .webp) only with --lossy-output-quality; - writes PNG to stdout")
    d.add_argument("--lossy-output-quality", type=int, metavar="Q",
                   help="write a lossy format (.jpg, .avif, .webp) at this quality, 1-100")
    d.add_argument("--layers", default="full", choices=["seg", "coarse", "full"],
                   help="seg: the label map in colour; coarse: x' without residual; full: the image")
    d.add_argument("--model", help=f"model to decode with: {model_help} (default: the one the file names)")
    d.add_argument("--enhance", metavar="NAME|PATH", help="learned enhancement model (default: the shipped one the file names)")
    d.add_argument("--no-restore", action="store_true", help="skip the restoration filter the file names")
    d.add_argument("--force", action="store_true", help="overwrite an existing output (never the input)")
    distributed.add_arguments(d)
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("info", parents=[limits], help="describe a .dsslic file (no network, no torch)")
    i.add_argument("input", metavar="IN.dsslic", help="a .dsslic file, or - for stdin")
    i.add_argument("--json", action="store_true", help="print the description as JSON")
    i.set_defaults(func=cmd_info)

    sg = sub.add_parser("segment", parents=[common], help="image -> label map (the base layer's content)")
    sg.add_argument("input", metavar="IN", nargs="?", help="an image file")
    sg.add_argument("-o", "--output", metavar="MAP.png", help="the label map (PNG of ids, or --color)")
    sg.add_argument("--segmenter", help="photo (the default: general photos), camvid11 (street scenes), none, "
                                        "file:MAP.png, hf:DIR, torchvision:PTH, or a .seg.safetensors path")
    sg.add_argument("--classes", action="store_true", help="print the segmenter's class names, one per line, in id order")
    sg.add_argument("--color", action="store_true", help="write a colour rendering with a legend instead of raw ids")
    sg.add_argument("--force", action="store_true", help="overwrite an existing output (never the input)")
    sg.set_defaults(func=cmd_segment)

    import importlib

    importlib.import_module("dsslic.semantic_search").add_parser(sub)  # index, search: light, no torch
    words = [w for w in (sys.argv[1:] if argv is None else argv) if not w.startswith("-")]
    for name, (module, help_) in _LAZY.items():
        if words[:1] == [name]:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_)
    return p


_PATH_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS,
                errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST, errno.EXDEV, errno.ENXIO, errno.ETXTBSY}


def _drop_stdout() -> None:
    """After a failed write to stdout, keep Python from failing (and printing) again when it flushes at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _warning
    try:
        args = build_parser(argv).parse_args(argv)
        return args.func(args)
    except DsslicError as e:
        print(f"dsslic: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dsslic: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # the system said no: say what, once (exit 2 for a path, 3 for a full disk)
        from .fileutil import is_no_space

        where = f"{e.filename}: " if e.filename else ""
        print(f"dsslic: error: {where}{e.strerror or e}", file=sys.stderr)
        return 3 if is_no_space(e) else 2 if e.errno in _PATH_ERRNOS else 1
    except Exception as e:  # a bug: still one line, with a way to see more
        if os.environ.get("DSSLIC_DEBUG"):
            raise
        print(f"dsslic: internal error: {type(e).__name__}: {e} (set DSSLIC_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
