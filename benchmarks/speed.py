"""Encode and decode time of one 768x512 image on this machine, per layer and in total.

    python benchmarks/speed.py [--image PATH] [--model NAME] [--qp 29] [--repeat 5] [--device cpu]  (default: the default model)

Uses Kodak's kodim01 from ../shared/data when present, else a synthetic 768x512 image.
Times are the median of --repeat runs in one process (no interpreter or torch import time;
that start-up cost is printed separately, with a one-image CLI round trip). Each row also as a ratio to
HEVC decoding this file's residual in the same run (a reference that moves with the machine's load).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dsslic import bitstream, codecs
from dsslic.bitstream import LayerKind
from dsslic.codec import COMPACT_CODECS, DEFAULT_COMPACT, Codec, _pad_to, _upscale_labels, compact_quality
from dsslic.imageio import load_image

KODIM01 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak" / "kodim01.png"


def timed(fn, repeat: int):
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(KODIM01) if KODIM01.is_file() else None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--qp", type=int, default=29)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.image:
        x = load_image(a.image)
    else:
        rng = np.random.default_rng(0)
        x = np.clip(rng.normal(128, 40, (512, 768, 3)).cumsum(1) / 30 + 128, 0, 255).astype(np.uint8)
    codec = Codec(a.model, device=a.device)
    cuda = codec.device is not None and codec.device.type == "cuda"  # device None: the numpy runtime (dsslic.npnet)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    h, w = x.shape[:2]
    alpha = codec.alpha
    rows = []

    # encoder, stage by stage (Algorithm 1), with the default compact codec at the joint rule's quality
    compact = DEFAULT_COMPACT
    q_c = compact_quality(compact, "hevc", a.qp)
    cc = codecs.get(COMPACT_CODECS[compact])
    t_seg, sample = timed(lambda: codec.segmenter.sampler(x), a.repeat)  # the network, at its working size
    # the map at the stored samples only, as the encoder computes it, and coded
    t_segc, (f_seg, s_stored, s_layer) = timed(lambda: codec._store_labels(sample, h, w), a.repeat)
    s = _upscale_labels(s_stored, f_seg, h, w)
    xp, sp = _pad_to(x, alpha), _pad_to(s, alpha)
    t_comp, c8 = timed(lambda: (codec.compact(xp, sp), sync())[0], a.repeat)
    t_cc, c_bytes = timed(lambda: cc.encode(c8, q_c), a.repeat)
    t_dc, c8 = timed(lambda: cc.decode(c_bytes, c8.shape), a.repeat)
    t_rec, xc = timed(lambda: (codec.recnet(sp, c8), sync())[0], a.repeat)
    coder = codec.residual_coder("hevc")  # the paper's min/max residual through HEVC
    rc = coder.image_codec()
    rn, lo, hi = coder.samples(x.astype(np.int16) - xc[:h, :w].astype(np.int16))
    t_res, r_bytes = timed(lambda: rc.encode(rn, a.qp), a.repeat)
    t_enc, res = timed(lambda: codec.encode(x, quality=a.qp), a.repeat)
    rows += [("encode", "segment (SegNet)", t_seg), ("encode", f"s at 1/{f_seg}'s samples, coded ({codecs.by_id(s_layer.codec_id).name})", t_segc),
             ("encode", "compact c (CompNet)", t_comp), ("encode", f"code c ({cc.name} q {q_c})", t_cc),
             ("encode", "decode c (closed loop)", t_dc), ("encode", "x' = RecNet(s, c)", t_rec),
             ("encode", f"code residual (hevc qp {a.qp}, {codec.residual_coding.tag})", t_res),
             ("encode", "total (Codec.encode)", t_enc)]

    # decoder; the reference is HEVC decoding this file's residual, timed in the same run
    hd = bitstream.parse(res.data)
    t_parse, _ = timed(lambda: bitstream.parse(res.data), a.repeat)
    t_ds, _ = timed(lambda: codecs.by_id(hd.layers[0].codec_id).decode(hd.layers[0].data, hd.seg_shape), a.repeat)
    t_dc, _ = timed(lambda: cc.decode(hd.layer(LayerKind.COMPACT).data, hd.compact_shape), a.repeat)
    t_dr, _ = timed(lambda: codecs.get("hevc").decode(hd.layer(LayerKind.RESIDUAL).data, (h, w, 3)), a.repeat)
    t_dec, _ = timed(lambda: codec.decode(res.data), a.repeat)
    rows += [("decode", "parse + CRCs", t_parse), ("decode", "decode s", t_ds), ("decode", f"decode c ({cc.name})", t_dc),
             ("decode", "x' = RecNet(s, c)", t_rec), ("decode", "decode residual (hevc) = reference", t_dr)]
    if (net := codec.restorer()) is not None:  # the decoder's restoration filter (on by default when shipped)
        t_rst, _ = timed(lambda: net(x, xc[:h, :w], s, float(a.qp)), a.repeat)
        rows += [("decode", f"restoration filter ({net.macs_per_pixel:,.0f} MAC/pixel, numpy)", t_rst)]
    rows += [("decode", "total (Codec.decode)", t_dec)]

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"from dsslic.codec import Codec; Codec({a.model!r})"], check=True)
    t_import = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # one-image CLI round trip, start-up included
        src, mid, dst = a.image or str(Path(tmp) / "x.png"), str(Path(tmp) / "x.dsslic"), str(Path(tmp) / "y.png")
        if not a.image:
            from PIL import Image

            Image.fromarray(x).save(src)
        model = ["--model", a.model] if a.model else []
        c0 = os.times()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dsslic.cli", "compress", "--quiet", src, "-o", mid, "--qp", str(a.qp), *model],
                       check=True)
        t_cli_enc = time.perf_counter() - t0
        subprocess.run([sys.executable, "-m", "dsslic.cli", "decompress", mid, "-o", dst, *model], check=True)
        t_cli = time.perf_counter() - t0
        c1 = os.times()
        cpu_cli = c1.children_user + c1.children_system - c0.children_user - c0.children_system

    runtime = "torch" if codec.device is not None else "numpy runtime"
    dev = torch.cuda.get_device_name() if cuda else f"{platform.processor() or platform.machine()}, {runtime}, {torch.get_num_threads()} torch threads"
    print(f"image {w}x{h}, model {codec.model.name}, residual hevc qp {a.qp}: {len(res.data)} bytes, "
          f"{res.bpp:.4f} bpp, PSNR {res.psnr:.2f} dB; device {dev}; median of {a.repeat}")
    print("\n| step | stage | seconds | x HEVC residual decode |\n|---|---|---|---|")
    for step, stage, t in rows:
        print(f"| {step} | {stage} | {t:.3f} | {t / t_dr:.2f} |")
    print(f"\nstart-up (python + a ready Codec for {codec.model.name}, {runtime}): {t_import:.2f} s")
    print(f"CLI round trip (dsslic compress then decompress, one image, start-up included): {t_cli:.2f} s "
          f"(compress {t_cli_enc:.2f} s); CPU time of the two processes {cpu_cli:.2f} s (load average "
          f"{os.getloadavg()[0]:.1f}: on a busy machine the wall time waits for the CPU)")


if __name__ == "__main__":
    main()
