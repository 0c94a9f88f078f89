"""``dsslic eval``: rate-distortion curves of DSSLIC and the classical codecs on the same images.

Every rate comes from real encoded bytes (DSSLIC: the whole ``.dsslic`` file); every distortion from
the decoded 8-bit image. Averages follow the field's convention: at each codec setting, the mean
bits per pixel and the mean of the per-image PSNR / MS-SSIM. BD-rates use the ``bjontegaard``
package (Akima interpolation) on those averaged curves.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import codecs
from .codec import psnr
from .imageio import IMAGE_EXTS, load_image

#: The published CompressAI anchor for BPG 4:4:4 on Kodak: PSNR (dB) at 0.25 / 0.5 / 0.75 / 1.0 bpp.
KODAK_BPG444_ANCHOR = {0.25: 30.32, 0.5: 33.32, 0.75: 35.41, 1.0: 37.16}


@dataclass(frozen=True)
class Baseline:
    """An eval codec: a layer codec (or DSSLIC) and the settings swept."""

    name: str
    codec: str  # layer codec name, or "dsslic"
    settings: tuple[int, ...]
    note: str


BASELINES: dict[str, Baseline] = {b.name: b for b in [
    Baseline("dsslic", "dsslic", (22, 25, 28, 31, 34, 37, 40, 43, 46, 49),
             "DSSLIC, all layers and header counted; setting = HEVC QP of the residual layer"),
    Baseline("dsslic-learned", "dsslic-learned", (),
             "DSSLIC with the learned enhancement layer (--residual learned); setting = index of the --enhance "
             "model (one model per rate point)"),
    Baseline("bpg444", "hevc", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "x265 all-intra, fixed QP, preset veryslow, tune ssim, YCbCr 4:4:4 full range BT.601, 8-bit, "
             "no info SEI; raw stream + 16 bytes for a BPG header; setting = QP (bpgenc -q = QP - 1)"),
    Baseline("bpg444rgb", "hevc-rgb", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "as bpg444 but coding the G, B, R planes directly (bpgenc -c rgb): the paper's BPG anchor"),
    Baseline("bpg420", "hevc420", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "as bpg444 with 4:2:0 chroma (bpgenc's default); bilinear chroma upsampling on decode"),
    Baseline("jpeg", "jpeg", (10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
             "libjpeg-turbo via Pillow, 4:2:0, optimised Huffman tables; setting = quality"),
    Baseline("jpeg2000", "jpeg2000", (192, 128, 96, 64, 48, 32, 24, 16, 12),
             "OpenJPEG via Pillow, 9/7 wavelet, colour transform on (mct=1); setting = compression ratio"),
    Baseline("webp", "webp", (5, 15, 30, 45, 60, 75, 85, 95),
             "libwebp via Pillow, method 6 (slowest, best); setting = quality"),
    Baseline("avif", "avif", (20, 30, 40, 50, 60, 70, 80, 90),
             "libavif/libaom via Pillow, 4:4:4, speed 4; setting = quality"),
    Baseline("jxl", "jxl-lossy", (20, 35, 50, 65, 75, 85, 92, 97),
             "libjxl via imagecodecs, VarDCT, effort 7; setting = quality; bare codestream"),
]}


# ------------------------------------------------------------------------------------ metrics
def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([0.299, 0.587, 0.114])
    return psnr(a.astype(np.float64) @ w, b.astype(np.float64) @ w)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM over RGB (pytorch-msssim, 5 scales); NaN for images under 161 pixels a side."""
    if min(a.shape[:2]) <= 160:
        return float("nan")
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ta = torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].double()
    tb = torch.from_numpy(np.array(b)).permute(2, 0, 1)[None].double()
    return float(_ms_ssim(ta, tb, data_range=255))


def db(msssim: float) -> float:
    return -10 * math.log10(max(1 - msssim, 1e-10))


# ------------------------------------------------------------------------------------ one encode
_WORKER: dict = {}


def _dsslic_codec(model: str | None, device: str, enhance: str | None = None):
    key = (model, device, enhance)
    if key not in _WORKER:
        from .codec import Codec

        _WORKER[key] = Codec(model, device=device, enhance=enhance)
    return _WORKER[key]


def run_one(path: str, name: str, setting: int, model: str | None, device: str,
            enhance: tuple[str, ...] = ()) -> dict:
    """Encode and decode one image with one codec setting; a row of the report."""
    x = load_image(path)
    h, w = x.shape[:2]
    b = BASELINES[name]
    t0 = time.perf_counter()
    if b.codec == "dsslic":
        codec = _dsslic_codec(model, device)
        data = codec.compress(x, quality=setting)
        t1 = time.perf_counter()
        y = codec.decompress(data)
        nbytes = len(data)
    elif b.codec == "dsslic-learned":
        codec = _dsslic_codec(model, device, enhance[setting])
        data = codec.compress(x, residual="learned")
        t1 = time.perf_counter()
        y = codec.decompress(data)
        nbytes = len(data)
    else:
        lc = codecs.get(b.codec)
        data = lc.encode(x, setting)
        t1 = time.perf_counter()
        y = lc.decode(data, x.shape)
        nbytes = len(data) + lc.container_overhead
    t2 = time.perf_counter()
    if y.shape != x.shape:
        raise RuntimeError(f"{name} decoded {y.shape} for a {x.shape} image")
    bpp = 8 * nbytes / (w * h)
    m = ms_ssim(x, y)
    return {"image": Path(path).name, "codec": name, "setting": setting, "bytes": nbytes,
            "bpp": bpp, "bpp_per_channel": bpp / 3, "psnr": psnr(x, y), "psnr_y": psnr_y(x, y),
            "ms_ssim": m, "ms_ssim_db": db(m) if m == m else float("nan"),
            "width": w, "height": h, "encode_s": t1 - t0, "decode_s": t2 - t1}


def _task(args: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    return run_one(*args)


def _key(digest: str, name: str, setting: int, version: str) -> str:
    return f"{digest}:{name}:{setting}:{version}"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ aggregation
def average(rows: list[dict]) -> list[dict]:
    """Per codec and setting: mean bpp and mean per-image metrics (the field's convention)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["codec"], r["setting"]), []).append(r)
    out = []
    for (c, s), rs in groups.items():
        avg = {"codec": c, "setting": s, "images": len(rs)}
        for k in ("bpp", "bpp_per_channel", "psnr", "psnr_y", "ms_ssim", "ms_ssim_db", "encode_s", "decode_s"):
            avg[k] = float(np.mean([r[k] for r in rs]))
        out.append(avg)
    return sorted(out, key=lambda a: (a["codec"], a["bpp"]))


def curve(avgs: list[dict], codec: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((a["bpp"], a[metric]) for a in avgs if a["codec"] == codec and a[metric] == a[metric])
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def bd_rate(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> float:
    """BD-rate in percent of ``test`` against ``anchor`` (negative = fewer bits); NaN without overlap."""
    import warnings

    import bjontegaard as bd

    (ra, da), (rt, dt) = anchor, test
    lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
    if len(ra) < 4 or len(rt) < 4 or lo >= hi:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bd.bd_rate(ra, da, rt, dt, method="akima", require_matching_points=False, min_overlap=0))


def interp_psnr(avgs: list[dict], codec: str, bpp: float) -> float:
    """PSNR of a codec's averaged curve at ``bpp`` (linear in log-rate); NaN outside the curve."""
    r, d = curve(avgs, codec, "psnr")
    if len(r) < 2 or not r.min() <= bpp <= r.max():
        return float("nan")
    return float(np.interp(np.log(bpp), np.log(r), d))


# ------------------------------------------------------------------------------------ outputs
def plot(avgs: list[dict], metric: str, ylabel: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=110)
    for c in sorted({a["codec"] for a in avgs}):
        r, d = curve(avgs, c, metric)
        style = dict(lw=2.4, color="black") if c == "dsslic" else dict(lw=1.4)
        ax.plot(r, d, marker="o", ms=3.5, label=c, **style)
    ax.set_xlabel("bits per pixel (all channels)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    top = ax.secondary_xaxis("top", functions=(lambda v: v / 3, lambda v: v * 3))
    top.set_xlabel("bits per pixel per channel (the paper's unit)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(rows: list[dict], out: Path, command: str, datasets: list[str], model: str | None) -> dict:
    """rows.csv/json, averages.csv, bd_rate.csv, RD plots and report.md; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0].keys())
    with open(out / "rows.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=cols)
        wr.writeheader()
        wr.writerows(rows)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    avgs = average(rows)
    with open(out / "averages.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(avgs[0].keys()))
        wr.writeheader()
        wr.writerows(avgs)
    names = sorted({a["codec"] for a in avgs})
    n_images = len({r["image"] for r in rows})
    title = f"{', '.join(datasets)}: {n_images} images, mean of per-image values at each setting"
    plot(avgs, "psnr", "PSNR over RGB (dB)", out / "rd_psnr.png", title)
    plot(avgs, "ms_ssim_db", "MS-SSIM over RGB (dB: -10 log10(1 - MS-SSIM))", out / "rd_msssim.png", title)

    bd_rows = []
    for anchor in ("bpg444", "bpg444rgb"):
        if anchor not in names:
            continue
        for c in names:
            bd_rows.append({"anchor": anchor, "codec": c,
                            "bd_rate_psnr": bd_rate(curve(avgs, anchor, "psnr"), curve(avgs, c, "psnr")),
                            "bd_rate_msssim": bd_rate(curve(avgs, anchor, "ms_ssim_db"), curve(avgs, c, "ms_ssim_db"))})
    if bd_rows:
        with open(out / "bd_rate.csv", "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(bd_rows[0].keys()))
            wr.writeheader()
            wr.writerows(bd_rows)

    anchor_check = None
    kodak = sorted({r["image"] for r in rows}) == [f"kodim{i:02d}.png" for i in range(1, 25)]
    if "bpg444" in names and kodak:
        ours = {b: interp_psnr(avgs, "bpg444", b) for b in KODAK_BPG444_ANCHOR}
        anchor_check = {b: (ours[b], KODAK_BPG444_ANCHOR[b]) for b in KODAK_BPG444_ANCHOR}

    L = [f"# Rate-distortion report: {', '.join(datasets)}", "",
         f"Command: `{command}`", "",
         f"{n_images} images; {len(rows)} encodes. Rate = real encoded bytes x 8 / pixels (**bpp over all channels**;",
         "bpp per channel = bpp / 3, the paper's unit, is in `averages.csv` and on the plots' top axis).",
         "Distortion on the decoded 8-bit image: PSNR over RGB (one MSE over the three channels), PSNR-Y (BT.601),",
         "MS-SSIM over RGB (pytorch-msssim, 5 scales). Each point is the **mean bpp and the mean per-image metric**",
         "at one codec setting. BD-rates: `bjontegaard` package, Akima interpolation, over the overlapping quality",
         "range (MS-SSIM in dB). Negative = fewer bits than the anchor at equal quality.", ""]
    if "dsslic" in names:
        from .models import default_model

        L += [f"DSSLIC model: `{model or default_model()}`.", ""]
    L += ["![PSNR](rd_psnr.png)", "", "![MS-SSIM](rd_msssim.png)", ""]
    if bd_rows:
        L += ["## BD-rate", "", "| codec | vs bpg444, PSNR | vs bpg444, MS-SSIM | vs bpg444rgb, PSNR | vs bpg444rgb, MS-SSIM |",
              "|---|---|---|---|---|"]

        def fmt(v: float) -> str:
            return "n/a" if v != v else f"{v:+.1f}%"

        for c in names:
            cells = []
            for anchor in ("bpg444", "bpg444rgb"):
                r = next((b for b in bd_rows if b["anchor"] == anchor and b["codec"] == c), None)
                cells += [fmt(r["bd_rate_psnr"]), fmt(r["bd_rate_msssim"])] if r else ["n/a", "n/a"]
            L.append(f"| {c} | " + " | ".join(cells) + " |")
        L.append("")
    if anchor_check:
        L += ["## Sanity: bpg444 against the published anchor", "",
              "CompressAI's BPG 4:4:4 anchor on Kodak (these are Kodak's 24 images):", "",
              "| bpp | bpg444 here (dB) | CompressAI anchor (dB) | difference |", "|---|---|---|---|"]
        for b, (o, ref) in anchor_check.items():
            L.append(f"| {b} | {o:.2f} | {ref:.2f} | {o - ref:+.2f} |")
        L.append("")
    L += ["## Averages per setting", "", "| codec | setting | bpp | bpp/channel | PSNR | PSNR-Y | MS-SSIM | encode s | decode s |",
          "|---|---|---|---|---|---|---|---|---|"]
    for a in avgs:
        L.append(f"| {a['codec']} | {a['setting']} | {a['bpp']:.4f} | {a['bpp_per_channel']:.4f} | {a['psnr']:.2f} | "
                 f"{a['psnr_y']:.2f} | {a['ms_ssim']:.4f} | {a['encode_s']:.3f} | {a['decode_s']:.3f} |")
    L += ["", "## Codec settings", "", "| codec | configuration |", "|---|---|"]
    for c in names:
        L.append(f"| {c} | {BASELINES[c].note} |")
    L += ["", "Times are wall-clock seconds per image in one worker thread on the machine that ran the command,",
          "including Python-side colour conversion; they are indicative, not benchmarks.", ""]
    (out / "report.md").write_text("\n".join(L))
    return {"averages": avgs, "bd_rate": bd_rows, "anchor_check": anchor_check}


# ------------------------------------------------------------------------------------ driver
def list_images(dirs: list[str], limit: int | None) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            files.append(p)
            continue
        if not p.is_dir():
            from .errors import DsslicInputError

            raise DsslicInputError(f"{d}: no such directory")
        found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        files += found[:limit] if limit else found
    if not files:
        from .errors import DsslicInputError

        raise DsslicInputError("no images found in --data")
    return files


def evaluate(data: list[str], names: list[str], out: Path, jobs: int = 1, device: str = "cpu",
             model: str | None = None, limit: int | None = None, settings: dict[str, tuple[int, ...]] | None = None,
             command: str = "", progress: bool = True, enhance: tuple[str, ...] = ()) -> dict:
    """Run (or complete, from the cache) the sweep and write the report. Returns its summary."""
    from tqdm import tqdm

    from .errors import DsslicInputError

    for n in names:
        if n not in BASELINES:
            raise DsslicInputError(f"unknown codec {n!r}; choose from {', '.join(BASELINES)}")
    settings = dict(settings or {})
    if "dsslic-learned" in names:
        if not enhance:
            raise DsslicInputError("dsslic-learned needs --enhance WEIGHTS (one per rate point)")
        settings.setdefault("dsslic-learned", tuple(range(len(enhance))))
    files = list_images(data, limit)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cache.jsonl"
    cache: dict[str, dict] = {}
    if cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            try:
                rec = json.loads(line)
                cache[rec["key"]] = rec["row"]
            except (ValueError, KeyError):
                continue  # a line cut short by a kill: recomputed
    version = {n: "1" for n in names}
    if {"dsslic", "dsslic-learned"} & set(names):
        # rows depend on the model's weights and, for a label-conditioned model, on the segmenter's
        base = _dsslic_codec(model, "cpu")
        version["dsslic"] = base.model.model_id.hex() + ":" + base.encoder_tag
        if base.model.num_labels:
            version["dsslic"] += "+" + base.segmenter.fingerprint
        version["dsslic-learned"] = version["dsslic"] + "+" + "+".join(
            _dsslic_codec(model, "cpu", e).enhancer().model_id.hex() for e in enhance)
    digests = {f: _file_digest(f) for f in files}
    tasks, keys, rows = [], [], []
    for f in files:
        for n in names:
            for s in (settings or {}).get(n, BASELINES[n].settings):
                k = _key(digests[f], n, s, version[n])
                if k in cache:
                    rows.append(cache[k])
                else:
                    tasks.append((str(f), n, s, model, device, tuple(enhance)))
                    keys.append(k)
    with open(cache_path, "a") as cf:
        def done(k: str, row: dict) -> None:
            rows.append(row)
            cf.write(json.dumps({"key": k, "row": row}) + "\n")
            cf.flush()

        bar = tqdm(total=len(tasks), unit="enc", disable=not progress, file=sys.stderr, desc="eval")
        if jobs > 1 and tasks:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(jobs) as pool:
                for k, row in zip(keys, pool.imap(_task, tasks, chunksize=1)):
                    done(k, row)
                    bar.update()
        else:
            for k, t in zip(keys, tasks):
                done(k, run_one(*t))
                bar.update()
        bar.close()
    order = {(str(f.name), n, s): i for i, (f, n, s) in enumerate(
        (f, n, s) for f in files for n in names for s in (settings or {}).get(n, BASELINES[n].settings))}
    rows.sort(key=lambda r: order.get((r["image"], r["codec"], r["setting"]), 1 << 30))
    return write_report(rows, out, command, [str(d) for d in data], model)


def _parse_settings(specs: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for spec in specs:
        name, _, vals = spec.partition("=")
        try:
            out[name] = tuple(int(v) for v in vals.split(","))
        except ValueError:
            from .errors import DsslicInputError

            raise DsslicInputError(f"--settings {spec!r}: expected CODEC=N,N,...") from None
    return out


def cmd_eval(a: argparse.Namespace) -> int:
    names = [n.strip() for n in a.codecs.split(",") if n.strip()]
    command = "dsslic " + " ".join(shlex.quote(x) for x in sys.argv[1:]) if a.command_line is None else a.command_line
    summary = evaluate(a.data, names, Path(a.out), jobs=a.jobs, device=a.device, model=a.model, limit=a.limit,
                       settings=_parse_settings(a.settings), command=command, progress=not a.quiet,
                       enhance=tuple(a.enhance))
    ac = summary["anchor_check"]
    if ac:
        print("bpg444 vs CompressAI's Kodak anchor (PSNR dB at 0.25/0.5/0.75/1.0 bpp): " + ", ".join(
            f"{o:.2f} vs {ref:.2f}" for o, ref in ac.values()))
    for r in summary["bd_rate"]:
        if r["codec"] != r["anchor"]:
            print(f"BD-rate {r['codec']} vs {r['anchor']}: PSNR {r['bd_rate_psnr']:+.1f}%, MS-SSIM {r['bd_rate_msssim']:+.1f}%")
    print(f"report: {Path(a.out) / 'report.md'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="rate-distortion curves against classical codecs")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of images (repeatable)")
    p.add_argument("--codecs", default="dsslic,bpg444,bpg444rgb,bpg420,jpeg,jpeg2000,webp,avif,jxl",
                   help=f"comma-separated, from: {','.join(BASELINES)}")
    p.add_argument("--out", required=True, metavar="REPORT_DIR")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", help="DSSLIC model (default: the shipped default)")
    p.add_argument("--enhance", action="append", default=[], metavar="WEIGHTS",
                   help="learned enhancement model for dsslic-learned (repeat: one per rate point)")
    p.add_argument("--limit", type=int, help="at most this many images per folder")
    p.add_argument("--settings", action="append", default=[], metavar="CODEC=N,N,...", help="override a sweep")
    p.add_argument("--command-line", help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)
