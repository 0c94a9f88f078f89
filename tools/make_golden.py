"""Write the golden ``.dsslic`` files of tests/golden/ and their expectations (expected.json).

The golden files are the promise that files written by a dsslic keep decoding to the same pixels in every
later version, so existing ones are never rewritten: the tool only ADDS files.

    python tools/make_golden.py              # add the cases of CASES whose files do not exist yet (a new codec...)
    python tools/make_golden.py --prefix v2- # after a format change (new VERSION): every case again, as v2-*.dsslic
    python tools/make_golden.py --check      # does today's code still write the committed files byte for byte?

The inputs (input.png, labels.png) were built with numpy by make_image/make_labels; once committed, they are read
back, so later files code the very same pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
W, H = 64, 48
ENHANCE = "enhance-golden.safetensors"
RESTORE = "restore-golden.restore.safetensors"

#: name -> encoder settings. "labels": the label-map PNG as the base layer (FileSegmenter, coded with JPEG XL);
#: otherwise the `none` segmenter (a constant map, the `const` codec). All use the integer-exact `plain` model.
#: "compact_q": c's quality, explicit because the joint rule's default moves (K = 9 when v2 was written, now 25).
CASES: dict[str, dict] = {
    "plain-hevc": {"residual": "hevc", "compact_q": 38},
    "plain-none": {"residual": "none", "compact_q": 22},
    "plain-avif": {"residual": "avif", "quality": 60, "compact_q": 38},
    "plain-jxl": {"residual": "jxl", "quality": 80, "compact_q": 38},
    "plain-webp": {"residual": "webp", "quality": 70, "compact_q": 38},
    "plain-jpeg2000": {"residual": "jpeg2000", "quality": 40, "compact_q": 38},
    "labels-hevc": {"residual": "hevc", "quality": 35, "labels": True, "compact_q": 44},
    "labels-f2-webp": {"residual": "webp", "quality": 50, "labels": True, "seg_factor": 2, "compact_q": 38},
    # the base layer re-coded with dsslic's own label-map coder: a legal file the encoder does not choose for a
    # map this small (JPEG XL is smaller), written so that coder's stream is pinned too
    "labels-labelmap-hevc": {"residual": "hevc", "labels": True, "seg_codec": "labelmap", "compact_q": 38},
    # an untrained, tiny enhancement model (committed: torch's initialisation may change between releases). Its
    # entropy decoding is exact anywhere; its float transforms only with the same torch on the same kind of CPU
    # ("float"): elsewhere the full decode is compared with a stored reference, within a tolerance
    "plain-learned": {"residual": "learned", "enhance": ENHANCE, "float": True},
    # version 2: lossy compact layers (the default is HEVC), a residual at 8 bits and at a fixed mapping
    "plain-hevc-c-avif": {"residual": "hevc", "compact": "avif", "compact_q": 80},
    "plain-hevc-c-jxl": {"residual": "hevc", "compact": "jxl", "compact_q": 90},
    "plain-hevc8-c-lossless": {"residual": "hevc", "compact": "jxl-lossless", "bits": 8},
    "plain-hevc-fixed": {"residual": "hevc", "quality": 30, "mapping": "fixed", "compact_q": 39},
    # a region of interest (issue 17): classes and boost in the residual layer's params
    "labels-roi-hevc": {"residual": "hevc", "labels": True, "roi": "class2,class3", "roi_boost": 6, "compact_q": 38},
    # a restoration filter named in the residual layer (issue 16): a tiny seeded random one (committed), float
    "plain-hevc-restore": {"residual": "hevc", "quality": 35, "restore": RESTORE, "float": True, "compact_q": 44},
}


def make_image() -> np.ndarray:
    """64x48 RGB: smooth gradients, a checkerboard edge pattern and seeded noise."""
    rng = np.random.default_rng(20261201)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    g = 255 * (xx + yy) / (H + W - 2)
    b = np.where((xx // 16 + yy // 16) % 2 == 0, 200.0, 40.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 4, (H, W, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_labels() -> np.ndarray:
    """48x64 label map with 4 classes: two bands, a disc and a box (regions a segmenter might give)."""
    yy, xx = np.mgrid[0:H, 0:W]
    s = (yy >= H // 2).astype(np.uint8)
    s[(yy - 20) ** 2 + (xx - 40) ** 2 < 100] = 2
    s[30:44, 4:20] = 3
    return s


def md5(a: np.ndarray | bytes) -> str:
    return hashlib.md5(a if isinstance(a, bytes) else np.ascontiguousarray(a).tobytes()).hexdigest()


def header_fields(hd) -> dict:
    """A version-1 header as plain data. If the Header class changes shape, map the new one onto these fields:
    their values for the golden files must not change."""
    return {
        "width": hd.width, "height": hd.height, "alpha": hd.alpha,
        "model_id": hd.model_id.hex(), "segmenter_id": hd.segmenter_id.hex(),
        "num_labels": hd.num_labels, "seg_factor": hd.seg_factor,
        "res_min": hd.res_min, "res_max": hd.res_max,
        "layers": [{"kind": int(la.kind), "codec_id": la.codec_id, "quality": la.quality, "bytes": len(la.data),
                    "crc": la.crc} for la in hd.layers],
    }


def fields_md5(fields: dict) -> str:
    return md5(json.dumps(fields, sort_keys=True).encode())


def make_enhance_model() -> None:
    """The tiny enhancement model of `plain-learned`, written once (seeded, untrained)."""
    import torch

    from dsslic.enhance import EnhanceConfig, EnhanceModel

    if not (GOLDEN / ENHANCE).exists():
        torch.manual_seed(0)
        EnhanceModel(EnhanceConfig(name="golden-tiny", n=8, m=8, nz=4, num_scales=16)).save(GOLDEN / ENHANCE)


def make_restore_filter() -> None:
    """The tiny filter of `plain-hevc-restore`, written once (seeded random weights: an untrained filter is the
    identity, which would pin nothing)."""
    import torch

    from dsslic.restoration import RestoreConfig
    from dsslic.training.restore import RestoreNet, save

    if not (GOLDEN / RESTORE).exists():
        torch.manual_seed(0)
        net = RestoreNet(RestoreConfig(name="golden-tiny", width=8, depth=1))
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, 0.05)
        save(net, GOLDEN / RESTORE)


def _restore(case: dict) -> str | bool:
    """The filter a case's codec holds: its committed one, else none (the defaults move)."""
    return str(GOLDEN / case["restore"]) if "restore" in case else False


def encode(case: dict, image: np.ndarray, labels: np.ndarray | None) -> bytes:
    from dsslic import segmenters
    from dsslic.codec import Codec

    seg = segmenters.FileSegmenter(labels) if case.get("labels") else "none"  # explicit: defaults move
    enh = str(GOLDEN / case["enhance"]) if "enhance" in case else None
    from dsslic.codec import ResidualCoding

    rc = ResidualCoding(**{k: case[k] for k in ("bits", "mapping") if k in case})
    codec = Codec("plain", segmenter=seg, seg_factor=case.get("seg_factor", 1), enhance=enh, residual_coding=rc,
                  restore=_restore(case))
    codec.restore_always = "restore" in case  # a random filter: named whether or not it helps
    roi = codec.roi(case["roi"], case.get("roi_boost"), case["residual"]) if "roi" in case else None
    data = codec.encode(image, residual=case["residual"], quality=case.get("quality"), compact=case.get("compact"),
                        compact_q=case.get("compact_q"), roi=roi).data
    if "seg_codec" not in case:
        return data
    from dsslic import bitstream, codecs

    hd = bitstream.parse(data)
    base = hd.layers[0]
    s = codecs.by_id(base.codec_id).decode(base.data, hd.seg_shape)
    lc = codecs.get(case["seg_codec"])
    hd.layers[0] = bitstream.Layer(base.kind, lc.id, lc.encode(s))
    return bitstream.serialize(hd)


def decode(data: bytes, layers: str, case: dict) -> np.ndarray:
    """What the public API decodes; a file with a learned layer or a restoration filter needs the (unshipped)
    model given."""
    import dsslic

    if "enhance" not in case and "restore" not in case:
        return dsslic.decompress(data, layers=layers)
    from dsslic.codec import Codec

    enh = str(GOLDEN / case["enhance"]) if "enhance" in case else None
    return Codec("plain", enhance=enh, restore=_restore(case) or None).decode(data, layers)


def decodes(data: bytes, case: dict) -> dict:
    """md5 of the decodes (full, coarse, seg rendering) and of the raw label map."""
    from dsslic import bitstream
    from dsslic.codec import decode_layers

    hd = bitstream.parse(data)
    out = {f"decode_{lay}": md5(decode(data, lay, case)) for lay in ("full", "coarse", "seg")}
    out["label_map"] = md5(decode_layers(hd, "seg").s)
    out["header"] = header_fields(hd)
    out["header_md5"] = fields_md5(out["header"])
    return out


def library_versions() -> dict:
    """Encoder libraries: re-encoding is byte-exact only with the same ones."""
    import av
    import imagecodecs
    import PIL

    return {"imagecodecs": imagecodecs.__version__, "av": av.__version__, "pillow": PIL.__version__}


def _inputs() -> tuple[np.ndarray, np.ndarray, dict[str, bytes]]:
    """The committed input PNGs (built and returned for writing when absent)."""
    from PIL import Image

    out, new = [], {}
    for png, make in (("input.png", make_image), ("labels.png", make_labels)):
        if (GOLDEN / png).exists():
            with Image.open(GOLDEN / png) as im:
                out.append(np.asarray(im))
        else:
            out.append(make())
            buf = io.BytesIO()
            Image.fromarray(out[-1]).save(buf, "PNG")
            new[png] = buf.getvalue()
    return out[0], out[1], new


def float_env() -> dict:
    """What float network outputs depend on: torch's version and the CPU kernels it picked."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def reference_name(name: str) -> str:
    return name.replace(".dsslic", ".full.png")


def build(prefix: str = "") -> dict:
    from PIL import Image

    from dsslic import bitstream

    make_enhance_model()
    make_restore_filter()
    image, labels, files = _inputs()
    expected = {"input_md5": md5(image), "labels_md5": md5(labels), "files": {}}
    for name, case in CASES.items():
        a, b = encode(case, image, labels), encode(case, image, labels)  # deterministic = same bytes twice
        files[f"{prefix}{name}.dsslic"] = a
        expected["files"][f"{prefix}{name}.dsslic"] = {
            "settings": case, "format_version": bitstream.VERSION, "libraries": library_versions(),
            "md5": md5(a), "bytes": len(a), "deterministic": a == b, **decodes(a, case)}
        if case.get("float"):
            expected["files"][f"{prefix}{name}.dsslic"]["float_env"] = float_env()
            buf = io.BytesIO()
            Image.fromarray(decode(a, "full", case)).save(buf, "PNG")
            files[reference_name(f"{prefix}{name}.dsslic")] = buf.getvalue()
    return {"files": files, "expected": expected}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    p.add_argument("--prefix", default="", help="name prefix for files of a new format version (e.g. v2-)")
    p.add_argument("--force", action="store_true", help="rewrite golden files that exist (breaks the promise)")
    a = p.parse_args()
    got = build(a.prefix)
    path = GOLDEN / "expected.json"
    old = json.loads(path.read_text()) if path.exists() else {"files": {}}
    if a.check:
        same = True
        for name, data in got["files"].items():
            ok = (GOLDEN / name).exists() and (GOLDEN / name).read_bytes() == data
            ok &= old["files"].get(name, got["expected"]["files"].get(name)) == got["expected"]["files"].get(name)
            same &= ok
            print(f"{name}: {'same' if ok else 'DIFFERS'}")
        return 0 if same else 1
    GOLDEN.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, data in got["files"].items():
        golden = name if name.endswith(".dsslic") else name.replace(".full.png", ".dsslic")
        if golden in old["files"] and not a.force:
            print(f"{name}: kept (golden files are written once)")
            continue
        (GOLDEN / name).write_bytes(data)
        if name in got["expected"]["files"]:
            written[name] = got["expected"]["files"][name]
            print(f"{name}: written, {len(data)} bytes, deterministic={written[name]['deterministic']}")
    merged = {**old, **{k: v for k, v in got["expected"].items() if k != "files"},
              "files": {**old["files"], **written}}
    path.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
