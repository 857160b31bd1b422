"""Cut the embedded CIFAR-10 subset that linear_ssl ships (``load_dataset("embedded", ...)``).

Picks, with a fixed seed, 500 train and 100 test images of each of the 10 classes from
the JPEG CIFAR-10 zips and stores their original JPEG bytes (no re-encoding, ZIP_STORED,
fixed timestamps, so the output is byte-for-byte reproducible) in ImageFolder layout:

    cifar10-subset/{train,test}/<class>/NNNN.jpg  ->  linear_ssl/data/cifar10-subset.zip

Usage: python scripts/make_embedded_subset.py [--source /work/shared/data] [--seed 0]
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

PER_CLASS = {"train": 500, "test": 100}
TOP = "cifar10-subset"
OUTPUT = Path(__file__).resolve().parents[1] / "linear_ssl" / "data" / "cifar10-subset.zip"


def class_members(archive: zipfile.ZipFile, split: str) -> dict[str, list[str]]:
    """{class: sorted .jpg members} of ``<top>/<split>/<class>/*.jpg`` in ``archive``."""
    members: dict[str, list[str]] = {}
    for name in archive.namelist():
        parts = PurePosixPath(name).parts
        if len(parts) == 4 and parts[1] == split and name.lower().endswith(".jpg"):
            members.setdefault(parts[2], []).append(name)
    return {c: sorted(m) for c, m in sorted(members.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.output, "w", compression=zipfile.ZIP_STORED) as out:
        for split, count in PER_CLASS.items():
            with zipfile.ZipFile(args.source / f"cifar10-jpeg-{split}.zip") as source:
                by_class = class_members(source, split)
                if len(by_class) != 10:
                    raise SystemExit(f"expected 10 classes in {split}, found {len(by_class)}")
                for cls, members in by_class.items():
                    chosen = sorted(rng.choice(len(members), size=count, replace=False))
                    for index in chosen:
                        member = members[index]
                        info = zipfile.ZipInfo(
                            f"{TOP}/{split}/{cls}/{PurePosixPath(member).name}",
                            date_time=(1980, 1, 1, 0, 0, 0),
                        )
                        out.writestr(info, source.read(member), zipfile.ZIP_STORED)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
