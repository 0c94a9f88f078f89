"""``dsslic report``: one self-contained HTML page that shows what a file holds, layer by layer.

    dsslic report photo.png other.dsslic -o report.html     # per image: layers, rates, quality, per class
    dsslic report --eval reports/kodak -o kodak.html        # an eval run: RD curves, BD-rates, per-image rows

Everything (pictures, plots) is embedded as base64 ``data:`` URIs, so the page can be mailed or archived as
one file. An image given as input is compressed first (with ``--qp``/``--residual``/``--model``/``--segmenter``)
and is the reference for PSNR, MS-SSIM and per-class PSNR; a ``.dsslic`` file is shown as decoded (no
reference, no distortion figures). Every picture is what the decoder produces; only the residual is
rescaled, to be visible, with its gain in the caption.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DsslicInputError

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}
.grid{display:flex;flex-wrap:wrap;gap:14px} figure{margin:0;max-width:46%} figure img{max-width:100%;border:1px solid #bbb}
figcaption{font-size:12px;color:#444;margin-top:3px} .pix{image-rendering:pixelated}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left} .sw{display:inline-block;width:12px;height:12px;
border:1px solid #000;margin-right:5px;vertical-align:-1px} .note{font-size:12px;color:#555} code{background:#f4f4f4}
"""


# ------------------------------------------------------------------------------------ page pieces
def data_uri(arr: np.ndarray, fmt: str = "png", max_side: int | None = None, nearest: bool = False) -> str:
    """A uint8 picture as a ``data:`` URI; ``max_side`` shrinks it for display (the figures use full size)."""
    from PIL import Image

    im = Image.fromarray(arr)
    if max_side and max(im.size) > max_side:
        k = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))),
                       Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=90)
    else:
        im.save(buf, "PNG", optimize=True)
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode()}"


def _figure(src: str, caption: str, attrs: str = "") -> str:
    return (f'<figure><img src="{src}" {attrs} alt="{html.escape(caption)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _page(title: str, body: list[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}</body></html>")


def _f(v: float | None, fmt: str = ".2f", unit: str = "") -> str:
    return "n/a" if v is None or v != v else (f"{v:{fmt}}{unit}" if not math.isinf(v) else "inf")


# ------------------------------------------------------------------------------------ one image
@dataclass
class ImageReport:
    """Everything the page shows for one file, computed by the decoder's own code."""

    name: str
    data: bytes
    info: dict
    labels: np.ndarray
    names: list[str]
    palette: np.ndarray
    compact: np.ndarray
    coarse: np.ndarray
    final: np.ndarray
    original: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    per_class: list[dict] = field(default_factory=list)


def _ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from .evaluation.metrics import ms_ssim
    except ImportError:  # pytorch-msssim is in the [eval] extra
        return float("nan")
    try:
        return ms_ssim(a, b)
    except ImportError:
        return float("nan")


def analyse(name: str, data: bytes, codec, original: np.ndarray | None = None) -> ImageReport:
    """Decode ``data`` layer by layer with ``codec`` (the file's model) and measure against ``original``."""
    from . import bitstream
    from .codec import decode_layers, psnr
    from .decoding import info
    from .segmenters import labelspace

    hd = bitstream.parse(data, codec.max_pixels)
    lay = decode_layers(hd, "full")
    coarse = codec.reconstruct(hd, lay, "coarse")
    final = codec.reconstruct(hd, lay, "full")
    if codec.segmenter.id == hd.segmenter_id:  # the segmenter that made the map (file:, hf:, ... included)
        names, palette = list(codec.segmenter.class_names), codec.segmenter.palette
    else:
        space = labelspace.by_id(hd.segmenter_id) or labelspace.generic(hd.num_labels)
        names, palette = list(space.class_names), space.palette
    rep = ImageReport(name, data, info(data, codec.max_pixels), lay.s, names, palette, lay.c8, coarse, final, original)
    if original is not None:
        rep.metrics = {"psnr": psnr(original, final), "psnr_coarse": psnr(original, coarse),
                       "ms_ssim": _ms_ssim(original, final), "ms_ssim_coarse": _ms_ssim(original, coarse)}
        for i in np.unique(lay.s):
            m = lay.s == i
            rep.per_class.append({"id": int(i), "pixels": int(m.sum()), "psnr": psnr(original[m], final[m]),
                                  "psnr_coarse": psnr(original[m], coarse[m])})
    return rep


def residual_view(final: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, float]:
    """The residual the decoder added (x~ - x'), as 128 + gain * r, gain mapping the 99.5th percentile of |r| to 127."""
    r = final.astype(np.float32) - coarse.astype(np.float32)
    top = float(np.percentile(np.abs(r), 99.5)) if r.size else 0.0
    gain = 127.0 / top if top > 0 else 1.0
    return np.clip(np.rint(128 + gain * r), 0, 255).astype(np.uint8), gain


def image_section(rep: ImageReport, fmt: str = "png", max_side: int | None = None) -> str:
    from .segmenters.labelspace import colorize

    d = rep.info
    h, w = rep.final.shape[:2]
    res, gain = residual_view(rep.final, rep.coarse)
    figs = []
    if rep.original is not None:
        figs.append(_figure(data_uri(rep.original, fmt, max_side), "original x"))
    k = len(np.unique(rep.labels))
    figs.append(_figure(data_uri(colorize(rep.labels, rep.palette), "png", max_side, nearest=True),
                        f"label map s (base layer: {k} class{'es' if k > 1 else ''}, legend below)"))
    ch, cw = rep.compact.shape[:2]
    shown = w if not max_side or max(w, h) <= max_side else round(w * max_side / max(w, h))
    figs.append(_figure(data_uri(rep.compact, "png"), f"compact image c ({cw}x{ch}, shown enlarged)",
                        f'class="pix" width="{shown}"'))
    figs.append(_figure(data_uri(rep.coarse, fmt, max_side), "coarse reconstruction x' = RecNet(s, c)"))
    figs.append(_figure(data_uri(res, fmt, max_side), f"residual x~ - x', shown as 128 + {gain:.1f} r"))
    figs.append(_figure(data_uri(rep.final, fmt, max_side), "decoded image x~"))

    layer_rows = [[la["layer"], la["codec"], "" if la["quality"] is None else str(la["quality"]), str(la["bytes"]),
                   f"{la['bpp']:.4f}", f"{la['bpp'] / 3:.4f}"] for la in d["layers"]]
    hb = d["header_bytes"]
    layer_rows.append(["header + layer table", "", "", str(hb), f"{8 * hb / (w * h):.4f}", f"{8 * hb / (w * h) / 3:.4f}"])
    layer_rows.append(["<b>whole file</b>", "", "", f"<b>{d['bytes']}</b>", f"<b>{d['bpp']:.4f}</b>",
                       f"{d['bpp_per_channel']:.4f}"])
    out = [f"<h2>{html.escape(rep.name)}</h2>",
           f"<p>{w}x{h}, model <code>{html.escape(str(d['model']))}</code>, {d['num_labels']} labels "
           f"(present: {html.escape(', '.join(d['label_names_present'] or map(str, d['labels_present'])))})</p>",
           f"<div class='grid'>{''.join(figs)}</div>",
           _table(["layer", "codec", "setting", "bytes", "bpp", "bpp per channel"], layer_rows)]
    m = rep.metrics
    if m:
        out.append(_table(["image", "PSNR (dB)", "MS-SSIM"],
                          [["coarse x'", _f(m["psnr_coarse"]), _f(m["ms_ssim_coarse"], ".4f")],
                           ["decoded x~", _f(m["psnr"]), _f(m["ms_ssim"], ".4f")]]))
    else:
        out.append("<p class='note'>No original given: distortion figures need the image the file was made from "
                   "(pass the image instead of the .dsslic file).</p>")
    n = rep.labels.size
    rows = []
    for i in np.unique(rep.labels) if not rep.per_class else [c["id"] for c in rep.per_class]:
        rgb = ",".join(str(int(v)) for v in rep.palette[i]) if i < len(rep.palette) else "0,0,0"
        nm = rep.names[i] if i < len(rep.names) else f"id {i}"
        c = next((c for c in rep.per_class if c["id"] == i), None)
        px = c["pixels"] if c else int((rep.labels == i).sum())
        row = [f"<span class='sw' style='background:rgb({rgb})'></span>{html.escape(nm)}", f"{100 * px / n:.1f}%"]
        if c:
            row += [_f(c["psnr_coarse"]), _f(c["psnr"])]
        rows.append(row)
    head = ["class (legend)", "area"] + (["PSNR x' (dB)", "PSNR x~ (dB)"] if rep.per_class else [])
    out.append(_table(head, rows))
    return "".join(out)


# ------------------------------------------------------------------------------------ an eval run
def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v) if k not in ("image", "codec", "anchor") else v
            except (TypeError, ValueError):
                pass
    return rows


def rd_plot(avgs: list[dict], rows: list[dict]) -> str:
    """PSNR and MS-SSIM (dB) against bpp over all channels (bottom) and per channel (top), with the anchors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .evaluation.metrics import curve
    from .evaluation.report import KODAK_BPG444_ANCHOR

    kodak = sorted({r["image"] for r in rows}) == [f"kodim{i:02d}.png" for i in range(1, 25)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), dpi=90)
    for ax, (metric, label) in zip(axes, [("psnr", "PSNR over RGB (dB)"), ("ms_ssim_db", "MS-SSIM (dB)")]):
        for c in sorted({a["codec"] for a in avgs}):
            r, d = curve(avgs, c, metric)
            kw = {"dsslic": dict(lw=2.6, color="black"), "bpg444": dict(lw=2, ls="--", color="tab:red"),
                  "bpg444rgb": dict(lw=2, ls="--", color="tab:purple")}.get(c, dict(lw=1.2))
            ax.plot(r, d, marker="o", ms=3, label=c, **kw)
        if metric == "psnr" and kodak:
            b = list(KODAK_BPG444_ANCHOR)
            ax.plot(b, [KODAK_BPG444_ANCHOR[k] for k in b], "x", ms=9, mew=2, color="tab:red",
                    label="BPG 4:4:4, CompressAI's published anchor")
        ax.set_xlabel("bits per pixel (all channels)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.secondary_xaxis("top", functions=(lambda v: v / 3, lambda v: v * 3)).set_xlabel("bits per pixel per channel")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"


def eval_page(report_dir: Path) -> str:
    """The page for a ``dsslic eval`` output folder (rows.csv, bd_rate.csv, report.md)."""
    from .evaluation.metrics import average

    rows_path = report_dir / "rows.csv"
    if not rows_path.is_file():
        raise DsslicInputError(f"{report_dir}: no rows.csv (not a dsslic eval report folder)")
    rows = _read_csv(rows_path)
    if not rows:
        raise DsslicInputError(f"{rows_path}: no rows")
    avgs = average(rows)
    bd = _read_csv(report_dir / "bd_rate.csv") if (report_dir / "bd_rate.csv").is_file() else []
    md = (report_dir / "report.md").read_text() if (report_dir / "report.md").is_file() else ""
    command = next((ln[len("Command: "):].strip("`") for ln in md.splitlines() if ln.startswith("Command: ")), None)
    images = sorted({r["image"] for r in rows})
    body = [f"<p>{len(images)} images, {len(rows)} encodes. Rates from the real bytes, bpp over all channels (top "
            "axis: per channel). Each point: mean bpp and mean per-image metric at one codec setting. "
            + (f"Command: <code>{html.escape(command)}</code>" if command else "") + "</p>",
            f'<img src="{rd_plot(avgs, rows)}" style="max-width:100%" alt="RD curves">']
    if bd:
        def pct(v) -> str:
            return "n/a" if not isinstance(v, float) or v != v else f"{v:+.1f}%"

        anchors = sorted({b["anchor"] for b in bd})
        codecs = sorted({b["codec"] for b in bd})
        cell = {(b["anchor"], b["codec"]): b for b in bd}
        trs = [[c] + [pct(cell[(a, c)][k]) if (a, c) in cell else "n/a" for a in anchors
                      for k in ("bd_rate_psnr", "bd_rate_msssim")] for c in codecs]
        body += ["<h2>BD-rate (negative: fewer bits than the anchor at equal quality)</h2>",
                 _table(["codec"] + [f"vs {a}, {m}" for a in anchors for m in ("PSNR", "MS-SSIM")], trs)]
    body += ["<h2>Averages per setting</h2>",
             _table(["codec", "setting", "images", "bpp", "bpp/channel", "PSNR", "PSNR-Y", "MS-SSIM", "MS-SSIM dB"],
                    [[a["codec"], f"{a['setting']:g}", str(a["images"]), f"{a['bpp']:.4f}", f"{a['bpp_per_channel']:.4f}",
                      _f(a["psnr"]), _f(a["psnr_y"]), _f(a["ms_ssim"], ".4f"), _f(a["ms_ssim_db"])] for a in avgs]),
             "<h2>Per image</h2>"]
    pc = report_dir / "per_class_averages.csv"  # written by `dsslic eval --per-class`
    if pc.is_file():
        pcr = _read_csv(pc)
        if pcr:
            body[-1:-1] = ["<h2>Per class (averages)</h2>", _table(list(pcr[0]), [[
                f"{v:.4g}" if isinstance(v, float) else html.escape(str(v)) for v in r.values()] for r in pcr])]
    for im in images:
        rs = sorted((r for r in rows if r["image"] == im), key=lambda r: (r["codec"], r["bpp"]))
        body.append(f"<details><summary>{html.escape(im)} ({len(rs)} encodes)</summary>" + _table(
            ["codec", "setting", "bytes", "bpp", "PSNR", "PSNR-Y", "MS-SSIM"],
            [[r["codec"], f"{r['setting']:g}", f"{r['bytes']:.0f}", f"{r['bpp']:.4f}", _f(r["psnr"]), _f(r["psnr_y"]),
              _f(r["ms_ssim"], ".4f")] for r in rs]) + "</details>")
    return _page(f"dsslic eval report: {report_dir}", body)


# ------------------------------------------------------------------------------------ command
def images_page(inputs: list[str], codec_args: dict, fmt: str = "png", max_side: int | None = None,
                command: str | None = None) -> str:
    """The page for images (compressed here) and ``.dsslic`` files (decoded here)."""
    from . import segmenters, zoo
    from .codec import Codec
    from .imageio import load_image

    codecs: dict = {}

    def get(model: str | None) -> Codec:
        if model not in codecs:
            seg = codec_args.get("segmenter")
            codecs[model] = Codec(model=model, segmenter=segmenters.get(seg) if seg else None)
        return codecs[model]

    sections = []
    for path in inputs:
        p = Path(path)
        if not p.is_file():
            raise DsslicInputError(f"{path}: no such file")
        raw = p.read_bytes()
        if raw[:4] == b"DSLC":
            from . import bitstream

            mid = bitstream.parse(raw).model_id
            model = codec_args.get("model") or zoo.name_for_id(mid)
            if model is None:
                raise DsslicInputError(f"{path}: made with model id {mid.hex()}, which this installation does not "
                                       "have; pass --model PATH.safetensors")
            rep = analyse(p.name, raw, get(model))
        else:
            x = load_image(p)
            c = get(codec_args.get("model"))
            data = c.encode(x, residual=codec_args.get("residual", "hevc"), quality=codec_args.get("quality")).data
            rep = analyse(p.name, data, c, original=x)
        sections.append(image_section(rep, fmt, max_side))
    note = [f"<p class='note'>Command: <code>{html.escape(command)}</code></p>"] if command else []
    if fmt == "jpeg" or max_side:
        note.append("<p class='note'>Display copies: " + (f"shrunk to {max_side} px on the long side, " if max_side
                    else "") + ("photographic pictures as JPEG quality 90 (the label map and c as PNG); " if fmt ==
                    "jpeg" else "") + "every figure in the tables is from the full-size decoded images.</p>")
    return _page("dsslic report", note + sections)


def cmd_report(a: argparse.Namespace) -> int:
    import shlex
    import sys

    from .cli import _check_writable
    from .fileutil import atomic_write

    out = Path(a.output)
    _check_writable(out, a.force)
    if a.eval:
        if a.inputs:
            raise DsslicInputError("give either --eval REPORT_DIR or files, not both")
        page = eval_page(Path(a.eval))
    else:
        if not a.inputs:
            raise DsslicInputError("nothing to report: give images, .dsslic files or --eval REPORT_DIR")
        if a.qp is not None and a.residual != "hevc":
            raise DsslicInputError("--qp is the HEVC setting; use --quality for other residual codecs")
        command = "dsslic " + " ".join(shlex.quote(x) for x in sys.argv[1:])
        args = {"model": a.model, "segmenter": a.segmenter, "residual": a.residual,
                "quality": a.qp if a.qp is not None else a.quality}
        page = images_page(a.inputs, args, a.display, a.max_side, command)
    atomic_write(out, page.encode())
    print(f"{out}: {len(page.encode()) / 1e6:.2f} MB")
    return 0


def add_parser(sub) -> None:
    from .bitstream import RESIDUAL_CODECS

    p = sub.add_parser("report", help="self-contained HTML report of files, images or an eval run")
    p.add_argument("inputs", nargs="*", metavar="FILE.dsslic|IMAGE")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="the HTML report to write")
    p.add_argument("--eval", metavar="REPORT_DIR", help="a `dsslic eval --out` folder instead of files")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--qp", type=int, help="HEVC QP for images compressed here")
    g.add_argument("--quality", type=int, help="residual codec's setting for images compressed here")
    p.add_argument("--residual", default="hevc", choices=[*RESIDUAL_CODECS, "none"],
                   help="residual codec of the compressions shown (default hevc)")
    p.add_argument("--model", help="model for images (default: the shipped default) or to decode files with")
    p.add_argument("--segmenter", help="segmenter for images compressed here (default: the model's)")
    p.add_argument("--display", choices=["png", "jpeg"], default="png",
                   help="format of the embedded photographic pictures (jpeg: a smaller page; label map and c stay PNG)")
    p.add_argument("--max-side", type=int, help="shrink embedded pictures to this many pixels on the long side")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.set_defaults(func=cmd_report)


__all__ = ["analyse", "image_section", "images_page", "eval_page", "rd_plot", "residual_view", "data_uri"]
