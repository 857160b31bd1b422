"""Host cost of the E9-E12 record (``recorder.collapse_diagnostics``) per spectra record.

The recorder computes RankMe, LiDAR, alpha-ReQ and the l2-normalised std of the backbone
and projector features of both views on the host, once every ``record.every`` steps, one
step after the record's snapshot (the device is not waiting). This times that call, in
float64 NumPy on one CPU thread, at the shapes of theory.md section 5's runs: CIFAR
ResNet-18 (batch 128: 256 rows, 512 backbone, 128 projector features) and per-rank
ImageNet ResNet-50 shapes. Prints a markdown table (milliseconds per record, best of 5).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rank_diagnostics.py

(linear_ssl must be importable: installed by scripts/setup.sh, or PYTHONPATH=.)
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from linear_ssl.train.recorder import collapse_diagnostics

SHAPES = {  # label: (batch B, backbone dim, projector dim)
    "CIFAR ResNet-18, B=128": (128, 512, 128),
    "CIFAR ResNet-18, B=512": (512, 512, 128),
    "ImageNet ResNet-50, B=256 per rank": (256, 2048, 256),
}


def _features(B: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Both views [view 1; view 2] of B images, a decaying spectrum, views 10% apart."""
    base = rng.normal(size=(B, d)) * np.linspace(1.0, 0.05, d)
    return np.concatenate([base, base + 0.1 * rng.normal(size=base.shape)])


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, OMP_NUM_THREADS=", end="")
    print(os.environ.get("OMP_NUM_THREADS", "unset"))
    print("| features | ms per record |\n|---|---|")
    for label, (B, d_h, d_z) in SHAPES.items():
        h, z = _features(B, d_h, rng), _features(B, d_z, rng)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            collapse_diagnostics(h, z)
            times.append(time.perf_counter() - t0)
        print(f"| {label} | {1e3 * min(times):.1f} |")


if __name__ == "__main__":
    main()
