"""The numpy runtime (dsslic.npnet) against torch: import time, speed on a 768x512 image, agreement on real images.

    python benchmarks/runtime.py [--data ../shared/data/kodak] [--lean NAME|PATH] [--repeat 5] [--out FILE.md]

Rows: start-up (a fresh interpreter importing the runtime and loading the weights), the lean RecNet x' = RecNet(c)
on a 768x512 image (the shipped ``lean`` model when there is one, else a random-weight one of the same shape: the
same arithmetic), and each shipped SegNetLite's ``segment`` on kodim01. Times are medians of --repeat runs in one
process, each also as a ratio to torch's in the same run (a reference that moves with the machine's load).
Agreement: the share of pixels whose label (or 8-bit x') is the same from both runtimes, over every image of --data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import emit

from dsslic import npnet, segmenters, zoo
from dsslic.imageio import load_image
from dsslic.models import LearnedConfig, LearnedModel
from dsslic.segmenters.segnetlite import NetSegmenter

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak"


def timed(fn, repeat: int) -> tuple[tuple[float, float], object]:
    """((median wall seconds, median CPU seconds of this process), the last result), after one warm-up run."""
    out, ts, cpu = fn(), [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        ts.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return (statistics.median(ts), statistics.median(cpu)), out


def startup(code: str, repeat: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) time of a fresh interpreter running ``code``."""
    ts, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), os.times()
        subprocess.run([sys.executable, "-c", code], check=True)
        ts.append(time.perf_counter() - t)
        c2 = os.times()
        cpu.append(c2.children_user + c2.children_system - c.children_user - c.children_system)
    return statistics.median(ts), statistics.median(cpu)


def lean_path(arg: str | None, tmp: str) -> tuple[Path, str]:
    path = zoo.find(arg or "lean")
    if path is not None:
        return path, str(arg or "lean")
    torch.manual_seed(0)  # the shape being trained (width 32, 6 blocks, bicubic up), random weights
    m = LearnedModel(LearnedConfig(name="lean-random", arch="lean", compact="area", width=32, n_blocks=6,
                                   up_mode="bicubic"))
    for p in m.parameters():
        p.data.normal_(0, 0.05)
    path = Path(tmp) / "lean-random.safetensors"
    m.save(path)
    return path, "random-weight lean (width 32, 6 blocks; no lean.safetensors shipped)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(KODAK))
    ap.add_argument("--lean", help="a lean model's name or path (default: the shipped lean, else random weights)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    files = sorted(p for p in Path(a.data).glob("*.png")) if Path(a.data).is_dir() else []
    x = load_image(files[0]) if files else np.random.default_rng(0).integers(0, 256, (512, 768, 3), np.uint8)
    x = x[:512, :768] if x.shape[0] <= x.shape[1] else np.ascontiguousarray(x.transpose(1, 0, 2))[:512, :768]
    rows, agree = [], []
    tmp = tempfile.mkdtemp()
    path, lean_name = lean_path(a.lean, tmp)

    rows.append(("start-up: import (python -c)", startup("import dsslic.npnet", a.repeat),
                 startup("import torch", a.repeat)))
    rows.append(("start-up: import + load lean", startup(f"from dsslic import npnet; npnet.LeanRecNet.load({str(path)!r})",
                                                         a.repeat),
                 startup(f"from dsslic.models import LearnedModel; LearnedModel.load({str(path)!r})", a.repeat)))

    nm, tm = npnet.LeanRecNet.load(path), LearnedModel.load(path)
    c8 = nm.compact(x)

    def torch_recnet(c: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = tm.reconstruct(None, torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255)
            return (t[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    t_np, x_np = timed(lambda: nm.reconstruct(c8), a.repeat)
    t_t, x_t = timed(lambda: torch_recnet(c8), a.repeat)
    rows.append((f"x' = RecNet(c), {lean_name}", t_np, t_t))
    same = []
    for f in files:
        img = load_image(f)
        c = nm.compact(img[: img.shape[0] // 8 * 8, : img.shape[1] // 8 * 8])
        same.append(float((nm.reconstruct(c) == torch_recnet(c)).mean()))
    same = same or [float((x_np == x_t).mean())]
    agree.append((f"x' (8-bit samples), {lean_name}", min(same), statistics.mean(same), len(same)))

    for name in segmenters.available()[1:]:
        ref = NetSegmenter.load(zoo.find(name, "segmenter"))
        net = npnet.SegNetLite(npnet.read_safetensors(zoo.find(name, "segmenter"))[0])
        t_np, _ = timed(lambda net=net, ref=ref: npnet.segment(net, x, ref.work_size), a.repeat)
        t_t, _ = timed(lambda ref=ref: ref.segment(x), a.repeat)
        rows.append((f"segment, {name} (work size {ref.work_size})", t_np, t_t))
        same = []
        for f in files:
            img = load_image(f)
            same.append(float((npnet.segment(net, img, ref.work_size) == ref.segment(img)).mean()))
        if same:
            agree.append((f"labels, {name}", min(same), statistics.mean(same), len(same)))

    lines = [f"numpy runtime vs torch {torch.__version__}, 768x512 image ({files[0].name if files else 'random'}), "
             f"median of {a.repeat}; numpy {np.__version__}, torch threads {torch.get_num_threads()}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.1f}.",
             "", "| what | numpy s | torch s | numpy / torch | numpy CPU s | torch CPU s | CPU numpy / torch |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {what} | {n:.3f} | {t:.3f} | {n / t:.2f} | {nc:.3f} | {tc:.3f} | {nc / tc:.2f} |"
              for what, (n, nc), (t, tc) in rows]
    lines += ["", f"Agreement over {a.data}:", "", "| output | min share of equal pixels | mean | images |",
              "|---|---|---|---|"]
    lines += [f"| {what} | {100 * lo:.4f}% | {100 * mean:.4f}% | {n} |" for what, lo, mean, n in agree]
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
