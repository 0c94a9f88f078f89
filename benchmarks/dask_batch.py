"""Throughput of batch compression: serial in this process vs a Dask LocalCluster of 1 and 2 workers.

    python benchmarks/dask_batch.py --data ../shared/data/kodak --limit 8 --qp 32

Modes: serial in this process (all torch threads, then one), and Dask clusters of 1 and 2 workers (one thread
each, Dask's default of OMP_NUM_THREADS=1 per worker). *Warm* timings have the networks already loaded in every
worker and the cluster up (the steady state of a long batch); the modes are run in ``--rounds`` interleaved rounds
and the best wall time is kept, because this machine is shared: the load average is printed. CPU seconds per image
(all processes that did the work) are printed beside the wall time: on a loaded machine they show the engine's
overhead when the wall clock cannot show scaling. *Cold*: what one command pays (cluster start, each worker
loading the networks, shutdown). Outputs of every mode are compared byte for byte with the serial run.
Per-worker memory is each worker process's resident set size after its batch (psutil). (Not named distributed.py:
run as a script, that name would shadow the distributed package.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def _cpu_s() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--residual", default="hevc")
    ap.add_argument("--model", default=None)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    from contextlib import ExitStack

    import torch
    from distributed import Client

    from dsslic.distributed import Job, local_cluster, run_batch, worker_codec

    images = sorted(p for p in Path(a.data).iterdir() if p.suffix.lower() == ".png")[: a.limit]
    if not images:
        raise SystemExit(f"no images in {a.data}")
    tmp = Path(tempfile.mkdtemp(prefix="dsslic-bench-"))
    opts = {k: v for k, v in {"model": a.model}.items() if v is not None}
    counts = [int(w) for w in a.workers.split(",")]
    all_threads = torch.get_num_threads()
    print(f"{len(images)} images from {a.data}, --residual {a.residual} --qp {a.qp}, model {a.model or 'default'}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    def batch(name: str, **kw) -> tuple[float, dict[str, bytes]]:
        out = tmp / name
        shutil.rmtree(out, ignore_errors=True)
        jobs = [Job.make(p, out / f"{p.stem}.dsslic", codec=opts, residual=a.residual, quality=a.qp) for p in images]
        t = time.perf_counter()
        res = run_batch(jobs, progress=False, **kw)
        dt = time.perf_counter() - t
        assert not res.failed, res.summary()
        return dt, {p.name: p.read_bytes() for p in sorted(out.glob("*.dsslic"))}

    best: dict[str, list] = {}  # mode -> [wall, cpu, rss list, identical]
    with ExitStack() as stack:
        clients = {}
        for n in counts:
            t0 = time.perf_counter()
            cluster = stack.enter_context(local_cluster(n))
            client = stack.enter_context(Client(cluster))
            client.run(worker_codec, **opts)  # every worker loads the networks once
            clients[n] = (cluster.scheduler_address, client)
            print(f"{n} worker(s): cluster start + network load {time.perf_counter() - t0:.1f} s")
        worker_codec(**opts)
        ref = None
        for r in range(a.rounds):
            for mode in [f"serial, {all_threads} torch threads", "serial, 1 torch thread", *counts]:
                if isinstance(mode, str):
                    torch.set_num_threads(all_threads if "1 torch" not in mode else 1)
                    c0 = _cpu_s()
                    dt, got = batch("serial")
                    cpu, rss = _cpu_s() - c0, [_rss_mb()]
                else:
                    addr, client = clients[mode]
                    c0 = sum(client.run(_cpu_s).values())
                    dt, got = batch(f"dask{mode}", scheduler=addr)
                    cpu = sum(client.run(_cpu_s).values()) - c0
                    rss = list(client.run(_rss_mb).values())
                    mode = f"Dask, {mode} worker{'s' if mode > 1 else ''} (1 thread each), warm"
                ref = ref or got
                prev = best.get(mode)
                if prev is None or dt < prev[0]:
                    best[mode] = [dt, cpu, rss, got == ref and (prev is None or prev[3])]
                elif got != ref:
                    prev[3] = False
            print(f"round {r + 1} done, load average {os.getloadavg()[0]:.1f}")
    for n in counts:
        dt, got = batch(f"cold{n}", workers=n)
        best[f"Dask, {n} worker{'s' if n > 1 else ''}, cold (one command: start, load, run, stop)"] = \
            [dt, float("nan"), [], got == ref]
    shutil.rmtree(tmp, ignore_errors=True)

    base = next(iter(best.values()))[0]
    print(f"\n| mode | best wall s ({a.rounds} rounds) | images/s | vs serial | CPU s per image | RSS per process (MB) "
          "| bytes = serial |")
    print("|---|---|---|---|---|---|---|")
    for name, (dt, cpu, rss, same) in best.items():
        mem = ", ".join(f"{v:.0f}" for v in rss) if rss else "-"
        cpu_s = "-" if cpu != cpu else f"{cpu / len(images):.2f}"
        print(f"| {name} | {dt:.1f} | {len(images) / dt:.3f} | {base / dt:.2f}x | {cpu_s} | {mem} | "
              f"{'yes' if same else 'NO'} |")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
