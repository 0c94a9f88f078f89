"""The restoration filter's gain: the same files decoded with and without it, BD-rate against bpg444.

    python benchmarks/restoration.py --data ../shared/data/kodak --filter general \\
        --anchor-rows reports/kodak/rows.json --out reports/restoration_kodak.md
    python benchmarks/restoration.py --data ../shared/data/photos/bsds500-test --limit 20 --filter general \\
        --anchor-rows reports/bsds500-test/rows.json --out reports/restoration_bsds500test.md

Every image is coded by the default ``Codec`` at the eval's residual QPs; the decoder's x~, x' and label map are
cached per image (``--cache``), then x^ = filter(x~, x', s, q) is scored against the same file's bytes (plus
``--extra-bytes`` per file: what naming the filter in the file costs), as the encoder chooses (the filter where it
raises the image's PSNR, else the file without it) and always on. PSNR over RGB and MS-SSIM (dB), means of
per-image values per setting (the eval's convention); bpg444 from the eval's committed rows of the same images
(or coded here without ``--anchor-rows``). ``--filter`` takes several filters to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from _report import emit
from tqdm import tqdm

from dsslic import codecs
from dsslic.eval import BASELINES, average, bd_rate, curve, db, list_images, ms_ssim, psnr
from dsslic.imageio import load_image


def _filter(arg: str):
    from dsslic import restoration

    path = restoration.find(arg)
    if path is None:
        raise SystemExit(f"--filter {arg}: no such filter")
    return restoration.load(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--filter", nargs="+", required=True, help="shipped filter names or .restore.safetensors paths")
    ap.add_argument("--model", default="general")
    ap.add_argument("--qps", default=",".join(map(str, BASELINES["dsslic"].settings)))
    ap.add_argument("--anchor-rows", help="an eval rows.json holding bpg444 rows of these images")
    ap.add_argument("--cache", default="/tmp/dsslic-restoration-cache")
    ap.add_argument("--extra-bytes", type=int, default=0, help="bytes per file that naming the filter adds")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from dsslic.codec import Codec
    from dsslic.restoration import apply, strength
    from dsslic.training.restore import BITS, make_pairs

    qs = [int(q) for q in a.qps.split(",")]
    files = list_images([a.data], a.limit or None)
    nets = {f: _filter(f) for f in a.filter}
    cache = Path(a.cache) / Path(a.data).name
    cache.mkdir(parents=True, exist_ok=True)
    codec = Codec(a.model, restore=False)
    tag = hashlib.sha256(codec.encoder_tag.encode()).hexdigest()[:8]  # cached decodes are the encoder's of today
    rows, times = [], []
    for f in tqdm(files, desc="images"):
        dst = cache / f"{Path(f).stem}-{a.model}-{tag}.npz"
        if not dst.is_file():
            np.savez_compressed(dst, **make_pairs(codec, load_image(f), qs))
        with np.load(dst) as z:
            x, s = z["x"], z["s"]
            for q in qs:
                xt, xc, nbytes = z[f"xt{q}"], z[f"xc{q}"], int(z[f"bytes{q}"])
                outs = {"dsslic": (xt, nbytes)}
                for name, net in nets.items():
                    t0 = time.perf_counter()
                    r = x.astype(np.int16) - xc  # the min/max range the file stores
                    qs_ = strength(q, int(r.min()), int(r.max()), BITS)
                    y = apply(net, xt, xc, s, qs_)
                    label = Path(name).name.removesuffix(".restore.safetensors")
                    outs[f"dsslic+{label} always"] = (y, nbytes + a.extra_bytes)
                    # the encoder's choice (Codec.encode): the file names the filter only where it raises the PSNR
                    outs[f"dsslic+{label}"] = (y, nbytes + a.extra_bytes) if psnr(x, y) > psnr(x, xt) else (xt, nbytes)
                    times.append(time.perf_counter() - t0)
                for codec_name, (y, nb) in outs.items():
                    m = ms_ssim(x, y)
                    rows.append({"image": Path(f).name, "codec": codec_name, "setting": q, "bpp": 8 * nb / x[..., 0].size,
                                 "bpp_per_channel": 8 * nb / x.size, "psnr": psnr(x, y), "psnr_y": 0.0, "ms_ssim": m,
                                 "ms_ssim_db": db(m), "encode_s": 0.0, "decode_s": 0.0})
    names = {Path(f).name for f in files}
    if a.anchor_rows:
        anchor = [r for r in json.loads(Path(a.anchor_rows).read_text()) if r["codec"] == "bpg444" and r["image"] in names]
    else:
        hevc, anchor = codecs.get("hevc"), []
        for f in files:
            x = load_image(f)
            for q in BASELINES["bpg444"].settings:
                d = hevc.encode(x, q)
                y = hevc.decode(d, x.shape)
                m = ms_ssim(x, y)
                anchor.append({"image": Path(f).name, "codec": "bpg444", "setting": q, "psnr": psnr(x, y),
                               "bpp": 8 * (len(d) + hevc.container_overhead) / x[..., 0].size, "ms_ssim": m,
                               "ms_ssim_db": db(m), "bpp_per_channel": 0.0, "psnr_y": 0.0, "encode_s": 0.0,
                               "decode_s": 0.0})
    if len({r["image"] for r in anchor}) != len(names):
        raise SystemExit("the anchor rows do not cover every image")
    avgs = average(rows + anchor)
    codec_names = sorted({r["codec"] for r in rows}, key=len)
    L = [f"# Restoration filter: {Path(a.data).name}, {len(files)} images, model {a.model}, residual QPs {a.qps}",
         "", "Same files decoded without and with the filter (bytes per file + "
         f"{a.extra_bytes} with it); bpp over all channels (per channel: /3); means of per-image values.", "",
         "| decoder | BD-rate vs bpg444, PSNR | BD-rate vs bpg444, MS-SSIM |", "|---|---|---|"]
    for c in codec_names:
        L.append(f"| {c} | {bd_rate(curve(avgs, 'bpg444', 'psnr'), curve(avgs, c, 'psnr')):+.2f}% | "
                 f"{bd_rate(curve(avgs, 'bpg444', 'ms_ssim_db'), curve(avgs, c, 'ms_ssim_db')):+.2f}% |")
    for c in codec_names[1:]:
        L.append(f"| {c} vs dsslic without it | {bd_rate(curve(avgs, 'dsslic', 'psnr'), curve(avgs, c, 'psnr')):+.2f}% | "
                 f"{bd_rate(curve(avgs, 'dsslic', 'ms_ssim_db'), curve(avgs, c, 'ms_ssim_db')):+.2f}% |")
    by = {(v["codec"], v["setting"]): v for v in avgs}
    L += ["", "| QP | bpp | PSNR without | " + " | ".join(f"PSNR {c[7:]} (gain)" for c in codec_names[1:])
          + " | MS-SSIM dB without | " + " | ".join(f"MS-SSIM dB {c[7:]}" for c in codec_names[1:]) + " |",
          "|---" * (3 + 2 * len(codec_names)) + "|"]
    for q in qs:
        base = by[("dsslic", q)]
        L.append(f"| {q} | {base['bpp']:.4f} | {base['psnr']:.3f} | "
                 + " | ".join(f"{by[(c, q)]['psnr']:.3f} ({by[(c, q)]['psnr'] - base['psnr']:+.3f})" for c in codec_names[1:])
                 + f" | {base['ms_ssim_db']:.3f} | " + " | ".join(f"{by[(c, q)]['ms_ssim_db']:.3f}" for c in codec_names[1:]) + " |")
    if times:
        L += ["", f"Filter time per image (one thread, mean over {len(times)} runs): {1000 * np.mean(times):.0f} ms."]
    emit("\n".join(L), a.out)


if __name__ == "__main__":
    main()
