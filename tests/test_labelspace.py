"""Label spaces: ids, torch-free lookup, and the documented mappings of training sets into them."""

import subprocess
import sys

import numpy as np
import pytest

from dsslic.segmenters import labelspace as ls


def test_ids_resolve_and_are_distinct():
    spaces = [ls.NONE, ls.CAMVID11, ls.PHOTO]
    assert len({s.id for s in spaces}) == 3
    for s in spaces:
        assert ls.by_id(s.id) is s and ls.by_name(s.name) is s
        assert s.palette.shape == (s.num_labels, 3)
    assert ls.by_id(b"\0\0\0\0") is None


def test_photo_space_has_stanford_stuff_classes_by_name():
    for name in ("sky", "tree", "road", "grass", "water", "building", "mountain"):
        assert name in ls.PHOTO.class_names
    with pytest.raises(KeyError, match="known: sky"):
        ls.PHOTO.index("unicorn")


def test_stanford_foreground_is_a_set_of_object_classes():
    space, lut, sets = ls.source_table("stanford")
    n = space.num_labels
    assert lut[0] == space.index("sky") and lut[6] == space.index("mountain")
    assert lut[7] == n and {space.class_names[i] for i in sets[0]} == {"person", "animal", "vehicle", "other"}
    assert lut[255] == ls.IGNORE and lut[8] == ls.IGNORE


def test_msrc_maps_every_class():
    space, lut, sets = ls.source_table("msrc")
    assert not sets
    names = ls.SOURCES["msrc"][1]
    assert all(lut[i] < space.num_labels for i in range(len(names)))
    assert space.class_names[lut[names.index("cow")]] == "animal"
    assert space.class_names[lut[names.index("body")]] == "person"
    assert space.class_names[lut[names.index("boat")]] == "vehicle"
    assert lut[255] == ls.IGNORE


def test_colorize_uses_the_palette_and_falls_back():
    lab = np.array([[0, 1], [2, 0]], np.uint8)
    assert (ls.colorize(lab, ls.CAMVID11.palette)[0, 1] == ls.CAMVID11.palette[1]).all()
    assert ls.colorize(np.full((2, 2), 40, np.uint8), ls.CAMVID11.palette).shape == (2, 2, 3)


def test_labelspace_does_not_import_torch():
    code = "import sys, dsslic.segmenters.labelspace; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_label_space_module_is_registered():
    """A label space is a data module plus its name in SPACES: a module left out of SPACES would be silently unknown."""
    from pathlib import Path

    modules = sorted(p.stem for p in Path(ls.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert modules == sorted(ls.SPACES) == sorted(ls.names())
    assert all(len(ls.by_name(n).palette) == ls.by_name(n).num_labels for n in ls.names())
