"""Pack the training sets into a small git-ignored folder that can travel to a GPU machine.

    python tools/pack_training_data.py --sets camvid --out .data    # segmenter and street model
    python tools/pack_training_data.py --sets photos --out .data    # general model

A device call carries at most 64 MiB, so each set is packed to stay under ~45 MiB:
``OUT/camvid/{train,val}`` (JPEG 4:4:4, re-encoded at --quality) with ``{train,val}annot`` (PNG labels)
and ``OUT/photos`` (BSDS500 train+test, Sun-Hays 80, wallpapers; JPEG 4:4:4, long side capped at
--photo-side). Test images (Kodak, CamVid test) are never copied. Prints the total size.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image, ImageOps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["camvid"], choices=["camvid", "photos"])
    ap.add_argument("--out", default=".data")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    ap.add_argument("--photo-side", type=int, default=1024)
    ap.add_argument("--quality", type=int, default=88)
    a = ap.parse_args()
    src, out = Path(a.shared), Path(a.out)
    for part in ("train", "val", "trainannot", "valannot") if "camvid" in a.sets else ():
        dst = out / "camvid" / part
        dst.mkdir(parents=True, exist_ok=True)
        for f in sorted((src / "camvid" / part).iterdir()):
            if part.endswith("annot"):
                shutil.copy2(f, dst / f.name)
            else:
                with Image.open(f) as im:
                    im.convert("RGB").save(dst / f"{f.stem}.jpg", quality=a.quality, subsampling=0)
    dst = out / "photos"
    for sub in ("bsds500-train", "bsds500-test", "sun-hays80", "wallpapers") if "photos" in a.sets else ():
        dst.mkdir(parents=True, exist_ok=True)
        for f in sorted((src / "photos" / sub).glob("*.jpg")):
            with Image.open(f) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((a.photo_side, a.photo_side), Image.LANCZOS)
                im.save(dst / f"{sub}_{f.stem}.jpg", quality=a.quality, subsampling=0)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    n = sum(1 for f in out.rglob("*") if f.is_file())
    print(f"{out}: {n} files, {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
