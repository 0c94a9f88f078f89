"""Search a collection of ``.dsslic`` files by their base layers: ``dsslic index`` and ``dsslic search``.

The label map is the first layer of every file, so what an image shows can be read without decoding
the image and without any network: indexing parses the header and decodes the base layer only (no
torch import). Per file the index stores the area share of every class and a 4x4 grid of class shares
(the coarse layout). The index is one SQLite file:

* ``files``: path, size, mtime, header CRC (incremental re-indexing), size in pixels, model and label-space
  ids, and two blobs: ``shares`` (K class shares, float32) and ``grid`` (16 x K, uint8 in 1/255 per cell);
* ``areas``: one row per (file, class present) with its share (the same float32 value), indexed by
  (space, class, area) so that one ``--has CLASS:MIN`` with ``--top K`` reads K index entries;
* ``spaces``: the class names of every label space seen (from :mod:`dsslic.segmenters.labelspace`);
* ``packs``: the ``shares`` of a label space packed into a few large arrays, rebuilt after indexing, so that
  combined filters and ``--like`` are one numpy pass over a million files (``--like``: class shares first, the
  grids of the best 2,000 next).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DsslicError, DsslicFormatError, DsslicInputError

SCHEMA_VERSION = "2"
GRID = 4  #: the layout is GRID x GRID cells
PACK = 65536  #: files per packed block of class shares
RERANK = 2000  #: --like: candidates re-ranked by their grids after the class-share pass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS spaces(space INTEGER PRIMARY KEY, names TEXT);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER, header_crc INTEGER,
    width INTEGER, height INTEGER, model_id TEXT, space INTEGER, num_labels INTEGER, shares BLOB, grid BLOB);
CREATE INDEX IF NOT EXISTS files_space ON files(space);
CREATE TABLE IF NOT EXISTS areas(space INTEGER, class INTEGER, area REAL, file_id INTEGER);
CREATE INDEX IF NOT EXISTS areas_query ON areas(space, class, area, file_id);
CREATE INDEX IF NOT EXISTS areas_file ON areas(file_id, space, class, area);
CREATE TABLE IF NOT EXISTS packs(space INTEGER, block INTEGER, ids BLOB, shares BLOB, PRIMARY KEY(space, block));
"""


def class_names(space_id: bytes) -> list[str] | None:
    """Class names of a label space named in a file, or None if this installation does not know it."""
    from .segmenters import labelspace

    ls = labelspace.by_id(space_id)
    return None if ls is None else list(ls.class_names)


# ---------------------------------------------------------------------------------------------- one file
@dataclass
class Record:
    """What the index keeps of one file (computed from its header and base layer alone)."""

    path: str
    size: int
    mtime_ns: int
    header_crc: int
    width: int
    height: int
    model_id: str
    space: int
    num_labels: int
    shares: np.ndarray  # (K,) float64: class area shares, summing to 1
    grid: np.ndarray  # (GRID*GRID, K) float64: class shares per cell


_PLANS: dict[tuple, tuple] = {}


def _plan(shape: tuple[int, int], f: int, height: int, width: int, k: int) -> tuple:
    """For a map stored at 1/f: which stored rows/columns fall in which grid cells, with how many image pixels."""
    key = (shape, f, height, width, k)
    if key not in _PLANS:
        def axis(n_stored: int, n_full: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            full = np.arange(n_full)
            w = np.bincount(full // f * GRID + full * GRID // n_full, minlength=n_stored * GRID).reshape(n_stored, GRID)
            i, cell = np.nonzero(w)
            return i, cell, w[i, cell]

        ri, ra, wr = axis(shape[0], height)
        ci, cb, wc = axis(shape[1], width)
        weights = None if f == 1 else (wr[:, None] * wc[None, :]).astype(np.float64).ravel()
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[key] = (ri, ci, ((ra[:, None] * GRID + cb[None, :]) * k).astype(np.intp), weights)
    return _PLANS[key]


def layout(s: np.ndarray, k: int, f: int = 1, height: int | None = None, width: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Class shares of a label map, over the image and per cell of a GRID x GRID layout.

    ``s`` may be the map as stored at 1/f of the image's ``height`` x ``width``: every stored label then
    counts for the image pixels it covers, exactly as if the map were upscaled first (but 1/f^2 the work)."""
    height, width = height or s.shape[0] * f, width or s.shape[1] * f
    ri, ci, base, weights = _plan(s.shape, f, height, width, k)
    labels = s if f == 1 else s[np.ix_(ri, ci)]
    counts = np.bincount((base + labels).ravel(), weights, minlength=GRID * GRID * k).reshape(GRID * GRID, k)
    counts = counts.astype(np.float64)
    shares = counts.sum(0) / (height * width)
    grid = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return shares, grid


def _space_int(space_id: bytes) -> int:
    return int.from_bytes(space_id, "little")


def _header_crc(data: bytes, hd: Any) -> int:
    end = len(data) - sum(len(la.data) for la in hd.layers)
    return int.from_bytes(data[end - 4 : end], "little")


def scan(path: str, known: tuple[int, int, int] | None = None, max_pixels: int | None = None) -> Record | str | None:
    """Read one file: its Record, None if it is unchanged since ``known`` (size, mtime_ns, header CRC), or
    the error message if it is not a valid ``.dsslic`` file. Module-level so that process pools can run it."""
    from . import bitstream
    from .codec import decode_layers
    from .imageio import DEFAULT_MAX_PIXELS

    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
        hd = bitstream.parse(data, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
        crc = _header_crc(data, hd)
        if known is not None and known == (st.st_size, st.st_mtime_ns, crc):
            return None
        # the map as stored, not upscaled: decode_layers on a header that says the stored size at factor 1
        h_s, w_s = hd.seg_shape
        s = decode_layers(dataclasses.replace(hd, width=w_s, height=h_s, seg_factor=1), "seg").s
    except (DsslicError, OSError) as e:
        return str(e)
    k = max(hd.num_labels, int(s.max(initial=0)) + 1)
    shares, grid = layout(s, k, hd.seg_factor, hd.height, hd.width)
    return Record(path, st.st_size, st.st_mtime_ns, crc, hd.width, hd.height, hd.model_id.hex(),
                  _space_int(hd.segmenter_id), hd.num_labels, shares, grid)


def _q8(a: np.ndarray) -> bytes:
    return np.rint(a * 255).astype(np.uint8).tobytes()


# ---------------------------------------------------------------------------------------------- the store
def connect(db: str | os.PathLike, create: bool = False) -> sqlite3.Connection:
    """Open an index (creating it if asked); refuses a file that is not one."""
    p = Path(db)
    if not create and not p.is_file():
        raise DsslicInputError(f"{db}: no such index (make one with `dsslic index`)")
    if p.is_dir():
        raise DsslicInputError(f"{db}: is a directory")
    try:
        con = sqlite3.connect(str(p))
        con.execute("PRAGMA synchronous=NORMAL")
        if create:
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            con.commit()
        row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.DatabaseError as e:
        raise DsslicInputError(f"{db}: not a dsslic index ({e})") from None
    if row is None or row[0] != SCHEMA_VERSION:
        raise DsslicInputError(f"{db}: index schema {row[0] if row else '?'}, this dsslic reads {SCHEMA_VERSION} "
                               "(delete it and run dsslic index again)")
    return con


def _delete(con: sqlite3.Connection, file_id: int) -> None:
    con.execute("DELETE FROM areas WHERE file_id=?", (file_id,))
    con.execute("DELETE FROM files WHERE id=?", (file_id,))


def insert(con: sqlite3.Connection, r: Record, names: list[str] | None = None) -> None:
    """Add or replace one file's record (the caller commits)."""
    shares = r.shares.astype(np.float32)  # the areas table and the packs hold the same values
    old = con.execute("SELECT id FROM files WHERE path=?", (r.path,)).fetchone()
    if old:
        _delete(con, old[0])
    cur = con.execute(
        "INSERT INTO files(path,size,mtime_ns,header_crc,width,height,model_id,space,num_labels,shares,grid)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (r.path, r.size, r.mtime_ns, r.header_crc, r.width, r.height, r.model_id, r.space, r.num_labels,
         shares.tobytes(), _q8(r.grid)))
    fid = cur.lastrowid
    present = np.flatnonzero(shares)
    con.executemany("INSERT INTO areas VALUES (?,?,?,?)",
                    [(r.space, int(c), float(shares[c]), fid) for c in present])
    con.execute("INSERT OR IGNORE INTO spaces VALUES (?,?)", (r.space, None if names is None else json.dumps(names)))


def _packs_valid(con: sqlite3.Connection) -> bool:
    row = con.execute("SELECT value FROM meta WHERE key='packs'").fetchone()
    return row is None or row[0] == "valid"  # None: a new index, nothing to pack


def rebuild_packs(con: sqlite3.Connection) -> None:
    """Pack every label space's class shares into blocks of PACK files (what filters and ``--like`` scan)."""
    con.execute("DELETE FROM packs")
    for (space,) in con.execute("SELECT DISTINCT space FROM files").fetchall():
        rows = con.execute("SELECT id, shares FROM files WHERE space=? ORDER BY id", (space,))
        block = 0
        while chunk := rows.fetchmany(PACK):
            ids = np.array([r[0] for r in chunk], np.int64)
            con.execute("INSERT INTO packs VALUES (?,?,?,?)",
                        (space, block, ids.tobytes(), b"".join(r[1] for r in chunk)))
            block += 1
    con.execute("INSERT OR REPLACE INTO meta VALUES ('packs', 'valid')")


@dataclass
class IndexStats:
    """What one indexing run did."""

    indexed: int = 0  #: new or changed files read
    unchanged: int = 0  #: skipped: same size, mtime and header CRC
    removed: int = 0  #: dropped from the index: no longer on disk
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (path, why) of files that are not valid

    @property
    def ok(self) -> bool:
        """Anything is in the index from this run (what exit code 0 means)."""
        return self.indexed + self.unchanged > 0


def walk(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The files to index: folders are searched for ``*.dsslic``; files named directly are taken as they are."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(os.path.abspath(f) for f in p.rglob("*.dsslic") if f.is_file())
        elif p.is_file():
            out.append(os.path.abspath(p))
        else:
            raise DsslicInputError(f"{p}: no such file or directory")
    return list(dict.fromkeys(out))


def _scan_job(job: tuple[str, tuple[int, int, int] | None]) -> Record | str | None:
    return scan(*job)


def index(paths: Sequence[str | os.PathLike] | str | os.PathLike, db: str | os.PathLike, *, jobs: int = 1,
          map_fn: Callable[[Callable, Iterable], Iterable] | None = None, progress: bool | None = False,
          on_error: Callable[[str, str], None] | None = None) -> IndexStats:
    """Index the ``.dsslic`` files under ``paths`` into the SQLite file ``db`` (created if absent).

    Incremental: a file with the same size, mtime and header CRC as in the index is not read again; files
    that are gone are dropped; a file that does not parse is reported through ``on_error(path, why)`` and
    skipped. ``jobs`` > 1 reads files in a process pool; ``map_fn(fn, items)`` replaces the map entirely
    (e.g. a distributed engine's map: indexing is a map over files, the writes stay here)."""
    from tqdm import tqdm

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = walk(paths)
    con = connect(db, create=True)
    stats = IndexStats()
    try:
        known = {p: (i, (s, m, c)) for i, p, s, m, c in
                 con.execute("SELECT id, path, size, mtime_ns, header_crc FROM files")}
        was_valid = _packs_valid(con)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('packs', 'stale')")  # until rebuilt below
        wanted = set(files)
        for p, (fid, _) in known.items():
            if p not in wanted and not os.path.exists(p):
                _delete(con, fid)
                stats.removed += 1
        jobs_list = [(p, known[p][1] if p in known else None) for p in files]
        pool = None
        if map_fn is None and jobs > 1 and len(jobs_list) > 64:
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(jobs)
            map_fn = lambda fn, it: pool.map(fn, it, chunksize=64)  # noqa: E731
        results: Iterator = iter((map_fn or map)(_scan_job, jobs_list))
        names_cache: dict[int, list[str] | None] = {}
        bar = tqdm(results, total=len(jobs_list), unit="file", disable=None if progress is None else not progress,
                   file=sys.stderr)
        try:
            for n, ((path, _), res) in enumerate(zip(jobs_list, bar)):
                if res is None:
                    stats.unchanged += 1
                elif isinstance(res, str):
                    stats.failed.append((path, res))
                    if path in known:  # it was indexed, and is now broken: it no longer matches anything
                        _delete(con, known[path][0])
                    if on_error:
                        on_error(path, res)
                else:
                    if res.space not in names_cache:
                        names_cache[res.space] = class_names(res.space.to_bytes(4, "little"))
                    insert(con, res, names_cache[res.space])
                    stats.indexed += 1
                if n % 1000 == 999:
                    con.commit()
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if stats.indexed or stats.removed or stats.failed or not was_valid:
            rebuild_packs(con)
        else:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('packs', 'valid')")
        con.commit()
    finally:
        con.close()
    return stats


# ---------------------------------------------------------------------------------------------- queries
@dataclass
class _Space:
    space: int
    names: list[str] | None


def _spaces(con: sqlite3.Connection) -> list[_Space]:
    return [_Space(s, None if n is None else json.loads(n))
            for s, n in con.execute("SELECT space, names FROM spaces WHERE space IN (SELECT DISTINCT space FROM files)"
                                    " ORDER BY space")]


def known_names(spaces: list[_Space]) -> list[str]:
    return list(dict.fromkeys(n for sp in spaces for n in (sp.names or [])))


def parse_term(term: str, opt: str = "--has") -> tuple[str, float | None]:
    """``CLASS`` or ``CLASS:AREA`` (a fraction of the image, 0..1)."""
    name, sep, amount = term.partition(":")
    if not sep:
        return name.strip().lower(), None
    try:
        a = float(amount)
    except ValueError:
        raise DsslicInputError(f"{opt} {term}: the area must be a number (a fraction of the image)") from None
    if not 0 <= a <= 1:
        raise DsslicInputError(f"{opt} {term}: the area is a fraction of the image, 0..1")
    return name.strip().lower(), a


def _class_id(sp: _Space, name: str) -> int | None:
    lower = [n.lower() for n in (sp.names or [])]
    return lower.index(name) if name in lower else None


def _terms(sp: _Space, has: list[tuple[str, float | None]], not_: list[tuple[str, float | None]]
           ) -> tuple[list[tuple[int, float | None]], list[tuple[int, float | None]]] | None:
    """Class ids of this space for the filters; None if a required class is not in it."""
    terms = [(_class_id(sp, n), a) for n, a in has]
    if any(c is None for c, _ in terms):
        return None
    return terms, [(c, a) for c, a in ((_class_id(sp, n), a) for n, a in not_) if c is not None]  # type: ignore[misc]


def _pack(con: sqlite3.Connection, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(file ids, n x K float32 class shares) of one label space, from the packs."""
    if not _packs_valid(con):  # an interrupted `dsslic index`: pack what is there
        rebuild_packs(con)
        con.commit()
    ids_l, sh_l = [], []
    for ids_b, sh_b in con.execute("SELECT ids, shares FROM packs WHERE space=? ORDER BY block", (space,)):
        ids = np.frombuffer(ids_b, np.int64)
        ids_l.append(ids)
        sh_l.append(np.frombuffer(sh_b, np.float32).reshape(len(ids), -1))
    if not ids_l:
        return np.zeros(0, np.int64), np.zeros((0, 1), np.float32)
    return np.concatenate(ids_l), np.concatenate(sh_l)


def _filter(shares: np.ndarray, terms: list[tuple[int, float | None]], excl: list[tuple[int, float | None]]
            ) -> tuple[np.ndarray, np.ndarray]:
    """(mask, score) of the files passing the filters; compared in float64 like SQLite compares the areas table."""
    mask = np.ones(len(shares), bool)
    score = np.zeros(len(shares))
    for c, amin in terms:
        col = shares[:, c].astype(np.float64)
        mask &= col >= amin if amin is not None else col > 0
        score += col
    for c, amax in excl:
        col = shares[:, c].astype(np.float64)
        mask &= ~(col >= amax) if amax is not None else col == 0
    return mask, score


def _paths(con: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        chunk = [int(i) for i in ids[start : start + 900]]
        out.update(con.execute(f"SELECT id, path FROM files WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    return out


def _filter_hits(con: sqlite3.Connection, sp: _Space, terms: list[tuple[int, float | None]],
                 excl: list[tuple[int, float | None]], top: int | None) -> list[tuple[int, float, str]]:
    """(file id, score, path) of the files passing the filters, best first (at most ``top``)."""
    if len(terms) == 1 and not excl and top:  # one class: the K largest areas, in index order
        c, amin = terms[0]
        return con.execute("SELECT a.file_id, a.area, f.path FROM areas a JOIN files f ON f.id=a.file_id WHERE a.space=?"
                           " AND a.class=? AND a.area>=? ORDER BY a.area DESC, a.file_id DESC LIMIT ?",
                           (sp.space, c, amin if amin is not None else 0.0, int(top))).fetchall()
    ids, shares = _pack(con, sp.space)
    mask, score = _filter(shares, terms, excl)
    ids, score = ids[mask], score[mask]
    order = np.lexsort((-ids, -score))  # ties: the newest file first, as in the index's reverse order
    if top:
        order = order[:top]
    paths = _paths(con, ids[order])
    return [(int(i), float(v), paths[int(i)]) for i, v in zip(ids[order], score[order])]


def _like_target(like: str | os.PathLike, segmenter: str | None, spaces: list[_Space]) -> tuple[int, np.ndarray, str | None]:
    """(label space, grid, own path) of the --like query: a .dsslic file's base layer, or an image segmented here."""
    from . import bitstream

    p = Path(like)
    if not p.is_file():
        raise DsslicInputError(f"--like {like}: no such file")
    data = p.read_bytes()
    if data[:4] == bitstream.MAGIC:
        rec = scan(str(p))
        if isinstance(rec, str):
            raise DsslicFormatError(f"--like {like}: {rec}")
        assert rec is not None
        return rec.space, rec.grid, os.path.abspath(p)
    from . import segmenters
    from .imageio import load_image

    if segmenter is None:  # the installed segmenter of the index's label space (by the space's name first)
        from .segmenters import labelspace

        ours = {ls.name: ls.id for ls in map(labelspace.by_id, (sp.space.to_bytes(4, "little") for sp in spaces)) if ls}
        names = sorted(segmenters.available(), key=lambda n: n not in ours)
        seg = next((c for c in map(segmenters.get, names) if c.id in ours.values() and c.name != "none"), None)
        if seg is None:
            raise DsslicInputError(f"--like {like}: no installed segmenter has this index's label space; "
                                   "pass --segmenter, or a .dsslic file")
    else:
        seg = segmenters.get(segmenter)
    s = seg.segment(load_image(p))
    return _space_int(seg.id), layout(s, max(seg.num_labels, int(s.max(initial=0)) + 1))[1], None


def _grid_sim(grids: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Layout similarity in [0, 1]: the mean over cells of the histogram intersection of class shares."""
    return 1 - np.abs(grids.astype(np.int16) - q.astype(np.int16)).sum(-1).mean(-1) / (2 * 255)


def _rank_like(con: sqlite3.Connection, space: int, qgrid: np.ndarray, filters: tuple | None, top: int | None,
               exclude: str | None) -> list[tuple[int, float, str]]:
    """(file_id, similarity, path) best first: class shares over the packs, then grids for the best."""
    q8 = np.rint(qgrid * 255).astype(np.uint8)
    ids, shares = _pack(con, space)
    if shares.shape[1] != q8.shape[1]:
        return []  # another number of classes: not comparable
    if filters is not None:
        keep = _filter(shares, *filters)[0]
        ids, shares = ids[keep], shares[keep]
    sim = 1 - np.abs(shares - qgrid.mean(0).astype(np.float32)).sum(1) / 2
    m = len(ids) if top is None else min(len(ids), max(RERANK, 20 * top))
    cand = ids[np.argpartition(-sim, m - 1)[:m]] if m < len(ids) else ids
    sims: list[tuple[int, float, str]] = []
    for start in range(0, len(cand), 900):
        chunk = [int(i) for i in cand[start : start + 900]]
        rows = con.execute(f"SELECT id, grid, path FROM files WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        rows = [r for r in rows if r[2] != exclude]
        if rows:
            g = np.frombuffer(b"".join(r[1] for r in rows), np.uint8).reshape(len(rows), *q8.shape)
            sims += zip((r[0] for r in rows), _grid_sim(g, q8).tolist(), (r[2] for r in rows))
    sims.sort(key=lambda t: (-t[1], -t[0]))
    return sims if top is None else sims[:top]


def search(db: str | os.PathLike, *, has: Sequence[str] = (), not_: Sequence[str] = (), like: str | os.PathLike | None = None,
           top: int | None = None, segmenter: str | None = None, with_areas: bool = True) -> list[dict]:
    """Files of the index that match, best first, as ``{path, score, areas}``.

    ``has``: ``CLASS`` or ``CLASS:MIN_AREA`` terms, all required (area > 0, or >= MIN_AREA as a fraction of
    the image); ``not_``: ``CLASS`` (must be absent) or ``CLASS:MAX_AREA`` (must cover less than that); ``like``: a ``.dsslic`` file or an image (segmented
    first, with ``segmenter`` or the installed one of the index's label space), ranked by the similarity of
    4x4 label layouts (score in [0, 1]). Without ``like`` the score is the summed area of the ``has`` classes."""
    if top is not None and top < 1:
        raise DsslicInputError("--top must be at least 1")
    con = connect(db)
    try:
        spaces = _spaces(con)
        hs = [parse_term(t) for t in has]
        nots = [parse_term(t, "--not") for t in not_]
        known = {n.lower() for n in known_names(spaces)}
        for name, _ in hs + nots:
            if name not in known:
                raise DsslicInputError(f"unknown class {name!r}; known: {', '.join(known_names(spaces)) or '(none)'}")
        hits: list[tuple[int, float, str]] = []
        if like is not None:
            space, qgrid, own = _like_target(like, segmenter, spaces)
            sp = next((s for s in spaces if s.space == space), None)
            filters = None if sp is None else _terms(sp, hs, nots)
            if filters is not None:
                hits = _rank_like(con, space, qgrid, filters if hs or nots else None, top, own)
        else:
            for sp in spaces:
                f = _terms(sp, hs, nots)
                if f is not None:
                    hits += _filter_hits(con, sp, *f, top)
            hits.sort(key=lambda t: (-t[1], -t[0]))
            if top:
                hits = hits[:top]
        return _describe(con, hits, {s.space: s.names for s in spaces}, with_areas)
    finally:
        con.close()


def _describe(con: sqlite3.Connection, hits: list[tuple[int, float, str]], names: dict[int, list[str] | None],
              with_areas: bool) -> list[dict]:
    areas: dict[int, dict[str, float]] = {h[0]: {} for h in hits}
    for start in range(0, len(hits) if with_areas else 0, 900):
        ids = [h[0] for h in hits[start : start + 900]]
        for fid, space, c, a in con.execute(f"SELECT file_id, space, class, area FROM areas WHERE file_id IN "
                                            f"({','.join('?' * len(ids))}) ORDER BY area DESC", ids):
            nm = names.get(space)
            areas[fid][nm[c] if nm and c < len(nm) else f"#{c}"] = round(a, 6)
    return [{"path": p, "score": round(s, 6), "areas": areas[i]} for i, s, p in hits]


# ---------------------------------------------------------------------------------------------- CLI
def add_parser(sub: argparse._SubParsersAction) -> None:
    """``dsslic index`` and ``dsslic search`` (light: nothing heavy is imported until one runs)."""
    i = sub.add_parser("index", help="index .dsslic files by their label maps (for dsslic search)")
    i.add_argument("paths", nargs="+", metavar="PATH", help=".dsslic files or folders (searched recursively)")
    i.add_argument("--db", required=True, metavar="INDEX.sqlite", help="the index (created if absent)")
    i.add_argument("--jobs", type=int, default=1, help="processes reading files (default 1)")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from . import distributed

    distributed.add_arguments(i)
    i.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="find indexed files by the classes they show, or by layout")
    s.add_argument("--db", required=True, metavar="INDEX.sqlite")
    s.add_argument("--has", action="append", default=[], metavar="CLASS[:MIN_AREA]",
                   help="the class must cover more than 0 (or at least MIN_AREA, a fraction) of the image; repeatable")
    s.add_argument("--not", dest="not_", action="append", default=[], metavar="CLASS[:MAX_AREA]",
                   help="the class must be absent (or cover less than MAX_AREA); repeatable")
    s.add_argument("--like", metavar="FILE", help="rank by layout similarity to a .dsslic file or an image")
    s.add_argument("--segmenter", help="segmenter for an image given to --like (default: the index's)")
    s.add_argument("--top", type=int, metavar="K", help="at most K results, best first")
    s.add_argument("--json", action="store_true", help="a JSON list of {path, score, areas}")
    s.set_defaults(func=cmd_search)


def cmd_index(a: argparse.Namespace) -> int:
    if a.jobs < 1:
        raise DsslicInputError("--jobs must be at least 1")

    def report(path: str, why: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"dsslic: warning: {path}: skipped ({why})", file=sys.stderr)

    if a.workers is not None and a.workers < 1:
        raise DsslicInputError("--workers must be at least 1")
    if a.workers or a.scheduler:  # the reads run on Dask workers; the index is written here
        from . import distributed

        with distributed.ordered_map(a.workers or 0, a.scheduler) as map_fn:
            st = index(a.paths, a.db, map_fn=map_fn, progress=None if not a.quiet else False, on_error=report)
    else:
        st = index(a.paths, a.db, jobs=a.jobs, progress=None if not a.quiet else False, on_error=report)
    if not a.quiet:
        print(f"{a.db}: {st.indexed} indexed, {st.unchanged} unchanged, {st.removed} removed, "
              f"{len(st.failed)} failed", file=sys.stderr)
    if not st.ok:
        raise DsslicInputError("nothing could be indexed" + (" (no .dsslic files found)" if not st.failed else ""))
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    res = search(a.db, has=a.has, not_=a.not_, like=a.like, top=a.top, segmenter=a.segmenter, with_areas=a.json)
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        sys.stdout.write("".join(r["path"] + "\n" for r in res))
    return 0


