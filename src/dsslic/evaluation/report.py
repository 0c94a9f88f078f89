"""The report of a sweep: rows.csv/json, averages.csv, bd_rate.csv, two RD plots and report.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .metrics import average, average_per_class, bd_rate, curve, interp_psnr
from .sweep import BASELINES

#: The published CompressAI anchor for BPG 4:4:4 on Kodak: PSNR (dB) at 0.25 / 0.5 / 0.75 / 1.0 bpp.
KODAK_BPG444_ANCHOR = {0.25: 30.32, 0.5: 33.32, 0.75: 35.41, 1.0: 37.16}
ANCHORS = ("bpg444", "bpg444rgb")  # BD-rates are against these, where swept


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


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "per_class"], extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)


def _bd_rows(avgs: list[dict], names: list[str]) -> list[dict]:
    rows = []
    for anchor in ANCHORS:
        if anchor not in names:
            continue
        for c in names:
            rows.append({"anchor": anchor, "codec": c,
                         "bd_rate_psnr": bd_rate(curve(avgs, anchor, "psnr"), curve(avgs, c, "psnr")),
                         "bd_rate_msssim": bd_rate(curve(avgs, anchor, "ms_ssim_db"), curve(avgs, c, "ms_ssim_db"))})
    return rows


def _anchor_check(rows: list[dict], avgs: list[dict], names: list[str]) -> dict | None:
    """On Kodak's 24 images: our bpg444 against CompressAI's published curve (ours, theirs) per bpp."""
    kodak = sorted({r["image"] for r in rows}) == [f"kodim{i:02d}.png" for i in range(1, 25)]
    if "bpg444" not in names or not kodak:
        return None
    ours = {b: interp_psnr(avgs, "bpg444", b) for b in KODAK_BPG444_ANCHOR}
    return {b: (ours[b], KODAK_BPG444_ANCHOR[b]) for b in KODAK_BPG444_ANCHOR}


def _fmt_pct(v: float) -> str:
    return "n/a" if v != v else f"{v:+.1f}%"


def _md_intro(datasets: list[str], command: str, n_images: int, n_rows: int) -> list[str]:
    return [f"# Rate-distortion report: {', '.join(datasets)}", "",
            f"Command: `{command}`", "",
            f"{n_images} images; {n_rows} encodes. Rate = real encoded bytes x 8 / pixels (**bpp over all channels**;",
            "bpp per channel = bpp / 3, the paper's unit, is in `averages.csv` and on the plots' top axis).",
            "Distortion on the decoded 8-bit image: PSNR over RGB (one MSE over the three channels), PSNR-Y (BT.601),",
            "MS-SSIM over RGB (pytorch-msssim, 5 scales). Each point is the **mean bpp and the mean per-image metric**",
            "at one codec setting. BD-rates: `bjontegaard` package, Akima interpolation, over the overlapping quality",
            "range (MS-SSIM in dB). Negative = fewer bits than the anchor at equal quality.", ""]


def _md_bd_rate(bd_rows: list[dict], names: list[str]) -> list[str]:
    if not bd_rows:
        return []
    L = ["## BD-rate", "", "| codec | vs bpg444, PSNR | vs bpg444, MS-SSIM | vs bpg444rgb, PSNR | vs bpg444rgb, MS-SSIM |",
         "|---|---|---|---|---|"]
    for c in names:
        cells = []
        for anchor in ANCHORS:
            r = next((b for b in bd_rows if b["anchor"] == anchor and b["codec"] == c), None)
            cells += [_fmt_pct(r["bd_rate_psnr"]), _fmt_pct(r["bd_rate_msssim"])] if r else ["n/a", "n/a"]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    return L + [""]


def _md_anchor_check(anchor_check: dict | None) -> list[str]:
    if not anchor_check:
        return []
    L = ["## Sanity: bpg444 against the published anchor", "",
         "CompressAI's BPG 4:4:4 anchor on Kodak (these are Kodak's 24 images):", "",
         "| bpp | bpg444 here (dB) | CompressAI anchor (dB) | difference |", "|---|---|---|---|"]
    for b, (o, ref) in anchor_check.items():
        L.append(f"| {b} | {o:.2f} | {ref:.2f} | {o - ref:+.2f} |")
    return L + [""]


def _md_averages(avgs: list[dict]) -> list[str]:
    L = ["## Averages per setting", "",
         "| codec | setting | bpp | bpp/channel | PSNR | PSNR-Y | MS-SSIM | encode s | decode s |",
         "|---|---|---|---|---|---|---|---|---|"]
    for a in avgs:
        L.append(f"| {a['codec']} | {a['setting']} | {a['bpp']:.4f} | {a['bpp_per_channel']:.4f} | {a['psnr']:.2f} | "
                 f"{a['psnr_y']:.2f} | {a['ms_ssim']:.4f} | {a['encode_s']:.3f} | {a['decode_s']:.3f} |")
    return L


def _md_settings(names: list[str]) -> list[str]:
    L = ["", "## Codec settings", "", "| codec | configuration |", "|---|---|"]
    L += [f"| {c} | {BASELINES[c].note} |" for c in names]
    return L + ["", "Times are wall-clock seconds per image in one worker thread on the machine that ran the command,",
                "including Python-side colour conversion; they are indicative, not benchmarks.", ""]


def _md_per_class(pc: list[dict]) -> list[str]:
    """Mean PSNR per class at each codec setting (columns: the classes present in any image)."""
    if not pc:
        return []
    classes = sorted({(a["class"], a["name"]) for a in pc})
    by = {(a["codec"], a["setting"], a["class"]): a for a in pc}
    L = ["## PSNR per class", "",
         "PSNR over RGB of the pixels of each class of the label map the DSSLIC file stores (for the baselines: the",
         "map DSSLIC stores for that image); mean over the images where the class is present (`per_class.csv`:",
         "per image, with pixel counts). `-`: class absent.", "",
         "| codec | setting | " + " | ".join(n for _, n in classes) + " |", "|---|---|" + "---|" * len(classes)]
    for c, s in sorted({(a["codec"], a["setting"]) for a in pc}):
        cells = [f"{by[(c, s, k)]['psnr']:.2f}" if (c, s, k) in by else "-" for k, _ in classes]
        L.append(f"| {c} | {s} | " + " | ".join(cells) + " |")
    return L + [""]


def _per_class_rows(rows: list[dict]) -> list[dict]:
    return [{"image": r["image"], "codec": r["codec"], "setting": r["setting"], "bpp": r["bpp"], "class": int(k),
             "name": name, "pixels": pixels, "psnr": p}
            for r in rows for k, (name, pixels, p) in r.get("per_class", {}).items()]


def write_report(rows: list[dict], out: Path, command: str, datasets: list[str], model: str | None) -> dict:
    """rows.csv/json, averages.csv, bd_rate.csv, RD plots and report.md; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "rows.csv", rows)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    avgs = average(rows)
    _write_csv(out / "averages.csv", avgs)
    names = sorted({a["codec"] for a in avgs})
    n_images = len({r["image"] for r in rows})
    title = f"{', '.join(datasets)}: {n_images} images, mean of per-image values at each setting"
    plot(avgs, "psnr", "PSNR over RGB (dB)", out / "rd_psnr.png", title)
    plot(avgs, "ms_ssim_db", "MS-SSIM over RGB (dB: -10 log10(1 - MS-SSIM))", out / "rd_msssim.png", title)
    bd_rows = _bd_rows(avgs, names)
    if bd_rows:
        _write_csv(out / "bd_rate.csv", bd_rows)
    anchor_check = _anchor_check(rows, avgs, names)
    pc = average_per_class(rows)
    if pc:
        _write_csv(out / "per_class.csv", _per_class_rows(rows))
        _write_csv(out / "per_class_averages.csv", pc)

    L = _md_intro(datasets, command, n_images, len(rows))
    if "dsslic" in names:
        from ..models import default_model

        L += [f"DSSLIC model: `{model or default_model()}`.", ""]
    L += ["![PSNR](rd_psnr.png)", "", "![MS-SSIM](rd_msssim.png)", ""]
    L += _md_bd_rate(bd_rows, names) + _md_anchor_check(anchor_check) + _md_per_class(pc) + _md_averages(avgs)
    L += _md_settings(names)
    (out / "report.md").write_text("\n".join(L))
    return {"averages": avgs, "bd_rate": bd_rows, "anchor_check": anchor_check, "per_class": pc}
