"""Throughput of the streamed ImageFolder path (linear_ssl.train.stream) on ImageNet-like JPEGs.

Writes ``--images`` random-texture JPEGs of 500 x 375 px (ImageNet's typical size) into a
temporary ImageFolder, then times, for each worker count: the DataLoader half (Pillow
decode + two random-resized crops to ``--size`` px per image, collate) over two epochs
(the first includes the workers' start), and the device half (the byol recipe's
remaining stages on the (2B, 3, S, S) batch) on this machine's CPU.

Usage: python benchmarks/bench_stream.py [--images 512] [--size 224] [--batch 64]
       [--workers 0 2]
Prints images a second (each source image counted once, two crops each).

Measured once on the shared 2-core AMD EPYC (load average about 2.4 from other jobs: noisy),
512 images, 224 px, batch 64: loader 229 / 265 img/s with 0 workers (epochs 0 / 1), 233 / 238
with 2 workers (no gain: the 2 cores were busy); the device half on one CPU thread 38 img/s
(on a GPU it is one batched kornia pass). About 250 images a second per core: a GPU that
trains a ResNet-50 at N img/s needs about N / 250 loader workers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from linear_ssl.train.config import load_config
from linear_ssl.train.stream import Stream


def make_folder(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / "train" / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)  # smooth texture, JPEG-like
        image = Image.fromarray(low).resize((500, 375), Image.Resampling.BICUBIC)
        image.save(folder / f"{i}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp), args.images)
        for workers in args.workers:
            cfg = load_config(
                None,
                [
                    "data.name=imagefolder",
                    f"data.root={tmp}",
                    "data.stream=true",
                    f"data.workers={workers}",
                    "augment.recipe=byol",
                    f"augment.image_size={args.size}",
                    f"batch_size={args.batch}",
                ],
            )
            stream = Stream(cfg, torch.device("cpu"))
            for epoch in range(2):
                t0, seen, device_s = time.perf_counter(), 0, 0.0
                for batch in stream.batches(epoch):
                    seen += batch.shape[0] // 2
                    if workers == args.workers[0] and epoch == 1:
                        t1 = time.perf_counter()
                        stream.augment.two_views(batch)
                        device_s += time.perf_counter() - t1
                load_s = time.perf_counter() - t0 - device_s
                print(
                    f"workers={workers} epoch {epoch}: loader {seen / load_s:,.0f} img/s"
                    + (f", device half (CPU) {seen / device_s:,.0f} img/s" if device_s else "")
                )


if __name__ == "__main__":
    main()
