"""Moved to :mod:`dsslic.zoo` (the one weights index); these names stay importable for code written against
``registry`` until its last caller moves (nothing is defined here)."""

from .zoo import PLAIN_ID, WEIGHTS_DIR, available, ids, is_path, name_for_id, shipped  # noqa: F401
