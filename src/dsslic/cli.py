"""The ``dsslic`` command: compress, decompress, info, eval.

Exit codes: 0 success, 2 bad input or bad file (one line on stderr, no output file left behind),
1 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from . import distributed
from .errors import DsslicError, DsslicInputError
from .imageio import IMAGE_EXTS


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dsslic: warning: {message}", file=sys.stderr)


def _read(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise DsslicInputError(f"{path}: no such file")
    return p.read_bytes()


def _check_writable(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise DsslicInputError(f"{out}: already exists (use --force to overwrite)")
    if out.is_dir():
        raise DsslicInputError(f"{out}: is a directory")
    if not out.parent.is_dir():
        raise DsslicInputError(f"{out.parent}: no such directory")


def _jobs(inputs: list[str], out: str) -> tuple[list[tuple[Path, Path]], bool]:
    """(input, output) pairs, and whether this is a batch (OUT is a directory)."""
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise DsslicInputError(f"{p}: no such file or directory")
    batch = len(paths) > 1 or paths[0].is_dir() or out.endswith(os.sep) or Path(out).is_dir()
    if not batch:
        return [(paths[0], Path(out))], False
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise DsslicInputError(f"{out_dir}: not a directory (several inputs need an output directory)")
    pairs = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                    pairs.append((f, out_dir / f.relative_to(p).with_suffix(".dsslic")))
        else:
            pairs.append((p, out_dir / p.with_suffix(".dsslic").name))
    if not pairs:
        raise DsslicInputError("no images found in the input")
    return pairs, True


def cmd_compress(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .codec import Codec
    from .fileutil import atomic_write

    if a.qp is not None and a.residual != "hevc":
        raise DsslicInputError("--qp is the HEVC setting; use --quality for other residual codecs")
    quality = a.qp if a.qp is not None else a.quality
    if a.target_bpp is not None and (a.target_bpp <= 0 or quality is not None):
        raise DsslicInputError("--target-bpp must be positive and cannot be combined with --qp/--quality")
    pairs, batch = _jobs(a.inputs, a.output)
    if batch:
        Path(a.output).mkdir(parents=True, exist_ok=True)
        todo = [(i, o) for i, o in pairs if a.force or not o.exists()]
        if len(todo) < len(pairs):
            print(f"dsslic: skipping {len(pairs) - len(todo)} already compressed (use --force to redo)", file=sys.stderr)
    else:
        _check_writable(pairs[0][1], a.force)
        todo = pairs
    if a.workers or a.scheduler:  # Dask: local worker processes or a cluster (dsslic.distributed)
        return distributed.cli_batch(a, todo, "compress", residual=a.residual, quality=quality,
                                     target_bpp=a.target_bpp, verify=a.verify)
    from . import segnet

    segmenter = segnet.get(a.segmenter, device=a.device) if a.segmenter else None
    if a.labels:
        segmenter = segnet.FileSegmenter(a.labels, label_space=a.label_space)
    codec = Codec(model=a.model, segmenter=segmenter, device=a.device, max_pixels=a.max_pixels, enhance=a.enhance)
    roi = codec.roi(a.roi, a.roi_boost, a.residual) if a.roi or a.roi_boost is not None else None
    failed = 0
    bar = tqdm(todo, unit="img", disable=not batch or a.quiet, file=sys.stderr)
    for src, dst in bar:
        try:
            res = codec.encode(src, residual=a.residual, quality=quality, target_bpp=a.target_bpp, verify=a.verify,
                               compact=a.compact_codec, compact_q=a.compact_quality, roi=roi)
            dst.parent.mkdir(parents=True, exist_ok=True)
            for stale in dst.parent.glob(f".{dst.name}.*.part"):  # left by a run killed mid-write
                stale.unlink(missing_ok=True)
            atomic_write(dst, res.data)
        except DsslicError as e:
            if not batch:
                raise
            failed += 1
            tqdm.write(f"dsslic: error: {e}", file=sys.stderr)
            continue
        if not a.quiet:
            q = f" q={res.quality}" if res.quality is not None else ""
            p = f", PSNR {res.psnr:.2f} dB" if res.psnr is not None else ""
            tqdm.write(f"{dst}: {len(res.data)} bytes, {res.bpp:.4f} bpp{q}{p}", file=sys.stderr if batch else sys.stdout)
    if failed:
        print(f"dsslic: error: {failed} of {len(todo)} images failed", file=sys.stderr)
        return 2
    return 0


def cmd_decompress(a: argparse.Namespace) -> int:
    from . import bitstream

    data = _read(a.input)
    out = Path(a.output)
    _check_writable(out, a.force)
    if a.workers or a.scheduler:
        return distributed.cli_batch(a, [(Path(a.input), out)], "decompress", layers=a.layers)
    hd = bitstream.parse(data, a.max_pixels)  # a bad file fails here or in its layers, before torch is imported
    from .codec import Codec, decode_layers

    lay = decode_layers(hd, a.layers)

    from . import registry
    from .imageio import save_image

    model = a.model
    if model is None and a.layers != "seg":
        model = registry.name_for_id(hd.model_id)  # torch is not imported to refuse an unknown model
        if model is None:
            raise DsslicInputError(
                f"{a.input}: made with model id {hd.model_id.hex()}, which this installation does not have "
                f"(installed: {', '.join(registry.available())}); pass --model PATH.safetensors"
            )
    codec = Codec(model=model or "plain", device=a.device, max_pixels=a.max_pixels, enhance=a.enhance)
    img = codec.reconstruct(hd, lay, a.layers)
    save_image(out, img)
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    from . import bitstream

    data = _read(a.input)
    bitstream.parse(data, a.max_pixels)  # a bad file fails here, before torch is imported
    from .codec import info

    d = info(data, a.max_pixels)
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

    from . import segnet
    from .fileutil import atomic_write
    from .imageio import load_image

    seg = segnet.get(a.segmenter or segnet.default_name(), device=a.device)
    if a.classes:
        print("\n".join(seg.class_names))
        return 0
    if a.input is None or a.output is None:
        raise DsslicInputError("segment needs IN and -o MAP.png (or --classes)")
    out = Path(a.output)
    _check_writable(out, a.force)
    x = load_image(a.input, a.max_pixels)
    labels = seg.segment(x)
    import io

    from PIL import Image

    buf = io.BytesIO()
    if a.color:
        Image.fromarray(segnet.render_legend(segnet.colorize(labels, seg.palette), labels, seg)).save(buf, "PNG")
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
         "train": ("dsslic.train", "train CompNet + FineNet (+ discriminators) on folders of images"),
         "train-segnet": ("dsslic.segtrain", "train the SegNetLite segmenter from scratch on labelled images"),
         "train-enhance": ("dsslic.enhancetrain", "train the learned enhancement layer (--residual learned)")}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from . import __version__
    from .codecs import RESIDUAL_CODECS
    from .imageio import DEFAULT_MAX_PIXELS

    p = argparse.ArgumentParser(prog="dsslic", description="DSSLIC layered image compression")
    p.add_argument("--version", action="version", version=f"dsslic {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images larger than this many pixels (default 100 megapixels)")
    common.add_argument("--device", default="cpu", help="cpu or cuda")

    c = sub.add_parser("compress", parents=[common], help="image(s) -> .dsslic")
    c.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories")
    c.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, or directory for several inputs")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--qp", type=int, help="HEVC residual QP, 0-51, lower is better (default 29)")
    g.add_argument("--quality", type=int, help="residual codec's native quality setting")
    c.add_argument("--target-bpp", type=float, help="search the residual setting for this many bits per pixel")
    c.add_argument("--residual", default="hevc", choices=[*RESIDUAL_CODECS, "none"], help="second enhancement layer codec")
    c.add_argument("--compact-codec", choices=["hevc", "avif", "jxl", "jxl-lossless"],
                   help="codec of the compact image c (default hevc, chosen jointly with the residual; "
                        "jxl-lossless = the paper's configuration)")
    c.add_argument("--compact-quality", type=int, help="c's quality setting (default: the joint rule)")
    c.add_argument("--roi", metavar="CLASS[,CLASS...]", help="spend more residual bits on these classes of the map")
    c.add_argument("--roi-boost", type=int, metavar="DQ", help="--roi's boost in HEVC QP steps, -24..24 (default 6)")
    c.add_argument("--model", help="model name or .safetensors path (default: the shipped default)")
    c.add_argument("--enhance", metavar="NAME|PATH", help="learned enhancement model for --residual learned")
    c.add_argument("--labels", metavar="MAP.png", help="use this label map as the base layer (the 'file' segmenter)")
    c.add_argument("--label-space", metavar="NAME", help="with --labels: the label space its ids belong to (photo, "
                                                          "camvid11; default: numbered classes)")
    c.add_argument("--segmenter", help="segmenter for the base layer (default: photo for label-free models, else the "
                                       "model's own): photo, camvid11, none, hf:DIR, ...")
    c.add_argument("--force", action="store_true", help="overwrite existing outputs")
    c.add_argument("--verify", action="store_true", help="decode each output and check it against the encoder")
    c.add_argument("-q", "--quiet", action="store_true")
    distributed.add_arguments(c)
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", parents=[common], help=".dsslic -> image")
    d.add_argument("input", metavar="IN.dsslic")
    d.add_argument("-o", "--output", required=True, metavar="OUT.png")
    d.add_argument("--layers", default="full", choices=["seg", "coarse", "full"],
                   help="seg: the label map in colour; coarse: x' without residual; full: the image")
    d.add_argument("--model", help="model to decode with (default: the one named in the file)")
    d.add_argument("--enhance", metavar="NAME|PATH", help="learned enhancement model (default: the shipped one the file names)")
    d.add_argument("--force", action="store_true")
    distributed.add_arguments(d)
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("info", parents=[common], help="describe a .dsslic file")
    i.add_argument("input", metavar="IN.dsslic")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    sg = sub.add_parser("segment", parents=[common], help="image -> label map (the base layer's content)")
    sg.add_argument("input", metavar="IN", nargs="?")
    sg.add_argument("-o", "--output", metavar="MAP.png")
    sg.add_argument("--segmenter", help="photo (the default: general photos), camvid11 (street scenes), none, "
                                        "file:MAP.png, hf:DIR, torchvision:PTH, or a .seg.safetensors path")
    sg.add_argument("--classes", action="store_true", help="print the segmenter's class names, one per line, in id order")
    sg.add_argument("--color", action="store_true", help="write a colour rendering with a legend instead of raw ids")
    sg.add_argument("--force", action="store_true")
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
    except Exception as e:  # a bug: still one line, with a way to see more
        if os.environ.get("DSSLIC_DEBUG"):
            raise
        print(f"dsslic: internal error: {type(e).__name__}: {e} (set DSSLIC_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
