"""Batch compression on Dask distributed: the same jobs on this machine's cores or on a cluster.

    from dsslic.distributed import Job, run_batch
    jobs = [Job.make(p, out / (p.stem + ".dsslic"), quality=32) for p in photos]
    result = run_batch(jobs, workers=2)                    # a LocalCluster of 2 processes on loopback
    result = run_batch(jobs, scheduler="tcp://head:8786")  # an existing cluster (dask-jobqueue, dask-kubernetes, ...)
    result = run_batch(jobs)                               # workers=0: in this process, the same code

Why Dask: it installs with pip, a ``LocalCluster`` is embedded (no service to run), and the code that drives
two local processes drives a multi-node scheduler unchanged; it reschedules the tasks of a worker that dies.

Guarantees:

- each worker process keeps one loaded :class:`~dsslic.codec.Codec` per set of codec options
  (:func:`worker_codec`): networks are loaded once per worker, not once per image;
- outputs are byte-identical to a serial run: a job runs the very function the serial path runs;
- workers return the output bytes and the client writes each file atomically (temporary file + rename), so a
  killed worker, a crashed client or a stopped run leaves complete files or none; a re-run skips outputs that
  exist and removes temporary files left by a killed writer: it finishes only what is missing;
- a failure is collected per file (a bad image never stops the batch), a task whose worker dies is retried on
  another one (Dask's ``allowed-failures``, default 3) and then reported as failed;
- one progress bar for the whole job; tasks are submitted in a bounded window, so millions of files do not
  become millions of pending futures.

Workers need the inputs at the same paths (one machine, or a shared filesystem on a cluster); only the client
writes outputs. :func:`map_files` is the generic engine (any picklable function over any items), for other
per-file commands such as an index.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DsslicError, DsslicInputError

_CODECS: dict[tuple, Any] = {}  # in each worker process: one loaded Codec per codec-options key


def worker_codec(**codec_options: Any) -> Any:
    """The process's :class:`~dsslic.codec.Codec` for these options, built on first use and kept."""
    key = tuple(sorted(codec_options.items()))
    if key not in _CODECS:
        from .codec import Codec

        _CODECS[key] = Codec(**codec_options)
    return _CODECS[key]


# ------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class Job:
    """One file to compress (image -> .dsslic) or decompress (.dsslic -> image), with its options.

    ``options`` go to :meth:`Codec.encode` (residual, quality, target_bpp, verify) or name the decoded
    ``layers``; ``codec`` to :class:`Codec` (model, segmenter, device, max_pixels, enhance). Both are
    sorted tuples of pairs so that jobs are hashable and pickle small."""

    src: str
    dst: str
    kind: str = "compress"
    options: tuple[tuple[str, Any], ...] = ()
    codec: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, src: str | os.PathLike, dst: str | os.PathLike, kind: str = "compress",
             codec: dict[str, Any] | None = None, **options: Any) -> "Job":
        if kind not in ("compress", "decompress"):
            raise DsslicInputError(f"unknown job kind {kind!r}")
        clean = {k: v for k, v in (codec or {}).items() if v is not None}
        return cls(str(src), str(dst), kind, tuple(sorted(options.items())), tuple(sorted(clean.items())))


@dataclass
class Outcome:
    """What a worker sends back: the output's bytes, or why there are none."""

    job: Job
    data: bytes | None = None
    error: str | None = None
    note: str = ""  # a line for the log (size, rate, PSNR)

    @property
    def ok(self) -> bool:
        return self.error is None


def _compress(job: Job) -> Outcome:
    opts = dict(job.options)
    res = worker_codec(**dict(job.codec)).encode(job.src, **opts)
    q = f" q={res.quality}" if res.quality is not None else ""
    p = f", PSNR {res.psnr:.2f} dB" if res.psnr is not None else ""
    return Outcome(job, res.data, note=f"{len(res.data)} bytes, {res.bpp:.4f} bpp{q}{p}")


def _decompress(job: Job) -> Outcome:
    from . import bitstream, decoding
    from .imageio import DEFAULT_MAX_PIXELS, image_bytes

    cod = dict(job.codec)
    layers = dict(job.options).get("layers", "full")
    src = Path(job.src)
    if not src.is_file():
        raise DsslicInputError(f"{src}: no such file")
    data = src.read_bytes()
    hd = bitstream.parse(data, cod.get("max_pixels", DEFAULT_MAX_PIXELS))
    img = decoding.decode(hd, layers, cod.pop("model", None), cod.pop("enhance", None), name=str(src),
                          codec=lambda who: worker_codec(**{**cod, "model": who.model, "enhance": who.enhance,
                                                            "segmenter": who.segmenter}))
    out = image_bytes(job.dst, img)
    return Outcome(job, out, note=f"{img.shape[1]}x{img.shape[0]}, {len(out)} bytes")


def run_job(job: Job) -> Outcome:
    """Run one job where it is called (a worker, or this process); a bad file gives an Outcome, not an exception."""
    try:
        return (_compress if job.kind == "compress" else _decompress)(job)
    except DsslicError as e:
        error = str(e)
    except (OSError, RuntimeError, MemoryError) as e:
        error = f"{type(e).__name__}: {e}"
    return Outcome(job, error=error if error.startswith(job.src) else f"{job.src}: {error}")


# ------------------------------------------------------------------------------------ the engine
def local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` processes, one thread each, listening on loopback only, no dashboard
    (its health endpoint on a free port, not 8787), quiet logs."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR)


@contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[Any]:
    from distributed import Client

    if scheduler:
        with Client(scheduler, set_as_default=False) as client:
            yield client
        return
    with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _describe(e: BaseException) -> str:
    if type(e).__name__ == "KilledWorker":
        return "the worker running it died too many times (KilledWorker): it may crash its process or run out of memory"
    return f"{type(e).__name__}: {e}"


def map_files(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 0, scheduler: str | None = None,
              progress: bool = True, desc: str = "dsslic", on_result: Callable[[Any, Any, str | None], None] | None = None,
              window: int | None = None) -> list[tuple[Any, str]]:
    """Run ``fn(item)`` for every item on Dask workers (or here, with ``workers=0`` and no ``scheduler``).

    ``on_result(item, result, error)`` runs in this process as each result arrives (in completion order);
    ``error`` is None or one line (an exception ``fn`` raised, or a worker that kept dying). Returns the
    (item, error) pairs that failed. ``fn`` must be importable or picklable (a module-level function)."""
    from tqdm import tqdm

    items = list(items)
    failed: list[tuple[Any, str]] = []

    def handle(item: Any, result: Any, error: str | None) -> None:
        if error is not None:
            failed.append((item, error))
        if on_result is not None:
            on_result(item, result, error)
        bar.update()

    bar = tqdm(total=len(items), unit="file", desc=desc, disable=not progress, file=sys.stderr)
    try:
        if not workers and not scheduler:
            for item in items:
                try:
                    result, error = fn(item), None
                except Exception as e:  # collected per item; the batch goes on
                    result, error = None, _describe(e)
                handle(item, result, error)
            return failed
        if not items:
            return failed
        from distributed import as_completed

        with _client(workers, scheduler) as client:
            token, todo, pending = uuid.uuid4().hex[:8], iter(enumerate(items)), {}
            ac = as_completed(loop=client.loop)

            def submit(n: int) -> None:
                for i, item in (next(todo, (None, None)) for _ in range(n)):
                    if i is None:
                        return
                    f = client.submit(fn, item, key=f"{desc}-{token}-{i}", pure=False)
                    pending[f.key] = item
                    ac.add(f)

            submit(window or max(16, 4 * max(1, sum(client.nthreads().values()))))
            for f in ac:
                item = pending.pop(f.key)
                try:
                    result, error = f.result(), None
                except Exception as e:
                    result, error = None, _describe(e)
                f.release()
                handle(item, result, error)
                submit(1)
        return failed
    finally:
        bar.close()


# ------------------------------------------------------------------------------------ compress / decompress
def write_output(dst: str | os.PathLike, data: bytes) -> None:
    """Atomic write of one output, first removing temporary files a killed writer left for it."""
    from .fileutil import atomic_write

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    for stale in dst.parent.glob(f".{glob.escape(dst.name)}.*.part"):
        stale.unlink(missing_ok=True)
    atomic_write(dst, data)


@dataclass
class BatchResult:
    """Per-file outcomes of a batch (in completion order) and how many outputs already existed."""

    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> str:
        n, bad = len(self.outcomes), len(self.failed)
        s = f"{n - bad} of {n} files done" + (f", {self.skipped} already done" if self.skipped else "")
        return s + (f"; {bad} failed: " + "; ".join(str(o.error) for o in self.failed[:20])
                    + (f"; ... ({bad - 20} more)" if bad > 20 else "") if bad else "")


def run_batch(jobs: Iterable[Job], *, workers: int = 0, scheduler: str | None = None, progress: bool = True,
              force: bool = False, log: Callable[[str], None] | None = None,
              fn: Callable[[Job], Outcome] = run_job) -> BatchResult:
    """Run compress/decompress jobs whose outputs do not exist yet (all with ``force``), writing each output
    atomically as it arrives. ``workers=0`` and no ``scheduler``: in this process. ``log`` gets one line per file;
    ``fn`` is what runs each job on a worker (:func:`run_job`, or a wrapper around it)."""
    jobs = list(jobs)
    todo = [j for j in jobs if force or not Path(j.dst).exists()]
    result = BatchResult(skipped=len(jobs) - len(todo))

    def done(job: Job, out: Outcome | None, error: str | None) -> None:
        out = out if out is not None else Outcome(job, error=f"{job.src}: {error or 'no result'}")
        if out.ok:
            try:
                write_output(job.dst, out.data or b"")
            except OSError as e:
                out = Outcome(job, error=f"cannot write {job.dst}: {e}")
        out.data = None  # written: do not keep every file in memory
        result.outcomes.append(out)
        if log is not None:
            log(f"{job.dst}: {out.note}" if out.ok else f"dsslic: error: {out.error}")

    map_files(fn, todo, workers=workers, scheduler=scheduler, progress=progress, on_result=done,
              desc="compress" if all(j.kind == "compress" for j in todo) else "dsslic")
    return result


# ------------------------------------------------------------------------------------ the command line
@contextmanager
def ordered_map(workers: int = 0, scheduler: str | None = None) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """A ``map(fn, items)`` whose results come back in order, run on Dask workers: the ``map_fn`` of
    :func:`dsslic.semantic_search.index`, for which indexing is a map over files (``fn`` catches its own errors)."""
    with _client(workers, scheduler) as client:
        def run(fn: Callable, items: Iterable) -> Iterator:
            futures = client.map(fn, list(items), pure=False, batch_size=256)
            for f in futures:
                yield f.result()
                f.release()

        yield run


def add_arguments(p: Any) -> None:
    """``--workers N`` / ``--scheduler ADDRESS`` for a subcommand that maps over files."""
    p.add_argument("--workers", type=int, metavar="N",
                   help="run on a Dask LocalCluster of N worker processes on this machine (loopback only)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (tcp://host:8786); "
                   "its workers need this dsslic and the inputs at the same paths")


def cli_batch(a: Any, pairs: list[tuple[Path, Path]], kind: str, **options: Any) -> int:
    """The compress/decompress commands' (input, output) pairs through :func:`run_batch`; exit code 2 if any failed.

    ``pairs`` are the outputs still to write (the command has applied --force and skipping already)."""
    from tqdm import tqdm

    if a.workers is not None and a.workers < 1:
        raise DsslicInputError("--workers must be at least 1")
    if getattr(a, "labels", None):
        raise DsslicInputError("--labels is one map for one image; it cannot be combined with --workers/--scheduler")
    codec = {"model": a.model, "device": a.device, "max_pixels": a.max_pixels, "enhance": a.enhance,
             "segmenter": getattr(a, "segmenter", None), "restore": False if getattr(a, "no_restore", False) else None}
    jobs = [Job.make(src, dst, kind, codec=codec, **options) for src, dst in pairs]
    quiet = getattr(a, "quiet", False)
    res = run_batch(jobs, workers=a.workers or 0, scheduler=a.scheduler, progress=not quiet, force=True,
                    log=None if quiet else lambda line: tqdm.write(line, file=sys.stderr))
    if res.failed:
        print(f"dsslic: error: {res.summary()}", file=sys.stderr)
        return 2
    return 0
