"""Label spaces: what the ids of a label map mean, as data that a file's label-space id resolves.

A file stores a 4-byte label-space id (a hash of the class names). Decoders, ``dsslic info``,
``dsslic index`` and the renderers resolve it here, independently of which segmenter they hold, and
without importing torch. Adding a label space is one data module in this package and its name in
``SPACES``.

Datasets whose classes map into a label space (``SOURCES``) say, per source class, the target class,
or a *set* of target classes when the source is coarser (Stanford's "foreground object" is one of
person, animal, vehicle or other): training then asks that the probability of the set be high.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from ...zoo import digest

IGNORE = 255  # source label meaning "unknown / void"


def label_space_id(class_names: list[str] | tuple[str, ...]) -> bytes:
    """4 bytes naming a label space: the first bytes of the SHA-256 of its class names, one per line."""
    return digest("\n".join(class_names))


def default_palette(n: int) -> np.ndarray:
    """A deterministic, well-spread palette (the PASCAL VOC bit-interleaving scheme)."""
    pal = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


@dataclass(frozen=True)
class LabelSpace:
    """A named list of classes with their colours."""

    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...] | None = None

    @property
    def id(self) -> bytes:
        return label_space_id(self.class_names)

    @property
    def num_labels(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        if self.colors is not None:
            return np.array(self.colors, np.uint8)
        return default_palette(self.num_labels)

    def index(self, name: str) -> int:
        """The id of a class name; a clear error naming the known classes otherwise."""
        try:
            return self.class_names.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r} in label space {self.name!r}; "
                           f"known: {', '.join(self.class_names)}") from None


def colorize(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Label map -> uint8 RGB rendering (a generic palette when the given one is too short)."""
    n = int(labels.max(initial=0)) + 1
    pal = palette if palette is not None and len(palette) >= n else default_palette(max(n, 1))
    return pal[labels]


#: The label spaces: one data module each in this package (``NAME``, ``CLASS_NAMES``, ``COLORS``, ``SOURCES``).
#: Adding a label space: its module, and its name here.
SPACES = ("none", "camvid11", "photo")
_MODULES = [importlib.import_module(f"{__name__}.{m}") for m in SPACES]
_KNOWN = {m.NAME: LabelSpace(m.NAME, tuple(m.CLASS_NAMES), tuple(map(tuple, m.COLORS))) for m in _MODULES}
NONE, CAMVID11, PHOTO = _KNOWN["none"], _KNOWN["camvid11"], _KNOWN["photo"]


def names() -> list[str]:
    return list(_KNOWN)


def by_name(name: str) -> LabelSpace | None:
    return _KNOWN.get(name)


def by_id(space_id: bytes) -> LabelSpace | None:
    """The label space a file names, if this installation knows it."""
    for ls in _KNOWN.values():
        if ls.id == space_id:
            return ls
    return None


def generic(num_labels: int) -> LabelSpace:
    """For a file whose label space is unknown: numbered classes in the default palette."""
    return LabelSpace("unknown", tuple(f"class{i}" for i in range(max(num_labels, 1))))


#: Source datasets mapped into a label space (each space's module lists its own): source -> (target space,
#: source class names by id, source class name -> target class, or a tuple of target classes when the source
#: class is one of them, which one is not known)
SOURCES: dict[str, tuple[LabelSpace, list[str], dict[str, str | tuple[str, ...]]]] = {
    src: (_KNOWN[m.NAME], names, mapping) for m in _MODULES for src, (names, mapping) in m.SOURCES.items()}


def source_table(source: str) -> tuple[LabelSpace, np.ndarray, list[tuple[int, ...]]]:
    """For training on ``source``'s label maps: (target space, lut, sets).

    ``lut`` maps every 8-bit source id to a target code: ``k < n`` is class ``k``; ``n + j`` is
    "one of the classes in ``sets[j]``"; ``IGNORE`` (255) is ignored. Ids not named by the source
    (void) are ignored."""
    space, names, mapping = SOURCES[source]
    n = space.num_labels
    lut = np.full(256, IGNORE, np.uint8)
    sets: list[tuple[int, ...]] = []
    for i, src in enumerate(names):
        tgt = mapping.get(src)
        if tgt is None:
            continue
        if isinstance(tgt, str):
            lut[i] = space.index(tgt)
        else:
            ids = tuple(space.index(t) for t in tgt)
            if ids not in sets:
                sets.append(ids)
            lut[i] = n + sets.index(ids)
    return space, lut, sets
