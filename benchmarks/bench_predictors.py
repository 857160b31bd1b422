"""Cost per call of every closed-form predictor rule (R1-R8), NumPy and torch.

Compares the eigendecomposition rules (DirectPred, DirectSet(1/2)) with the matmul-only
iterations of [E] (Newton-Schulz, NS^2, Stiefel, Visser) and with LRP / Neumann /
DirectCopy, at n = 128, 256, 512: NumPy float64 and torch float32 on CPU, torch float32 on
CUDA when available. Prints a markdown table (milliseconds per call, best of repeats).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_predictors.py [--sizes 128 256 512]

(linear_ssl must be importable: installed by scripts/setup.sh, or PYTHONPATH=.)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from linear_ssl import predictors as P

RULES: dict[str, dict] = {
    "directpred (eigh)": {"name": "directpred"},
    "directset a=1/2 (eigh)": {"name": "directset", "alpha": 0.5},
    "directcopy": {"name": "directcopy"},
    "lrp (solve)": {"name": "lrp"},
    "neumann": {"name": "neumann"},
    "visser n=50": {"name": "visser"},
    "newton_schulz n=9": {"name": "newton_schulz"},
    "ns2 n=7+7": {"name": "ns2"},
    "stiefel n=9": {"name": "stiefel"},
}


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """F and C_to of 4n correlated features, the shape a trainer's estimates have."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(4 * n, n)) * np.linspace(1.0, 0.05, n)
    f_a = f + 0.1 * rng.normal(size=f.shape)
    return f.T @ f / len(f), f_a.T @ f / len(f)


def _best_ms(call: Callable[[], object], sync: Callable[[], None], budget_s: float) -> float:
    call()
    sync()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 50):
        t0 = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per measurement")
    args = parser.parse_args()

    backends: list[tuple[str, Callable[[np.ndarray], object], Callable[[], None]]] = [
        ("numpy f64", lambda a: a, lambda: None),
        ("torch f32 cpu", lambda a: torch.tensor(a, dtype=torch.float32), lambda: None),
    ]
    if torch.cuda.is_available():
        backends.append(
            (
                "torch f32 cuda",
                lambda a: torch.tensor(a, dtype=torch.float32, device="cuda"),
                torch.cuda.synchronize,
            )
        )
    columns = [(b, n) for n in args.sizes for b in backends]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"torch threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}\n"
    )
    print("| rule (ms/call) | " + " | ".join(f"{b[0]} n={n}" for b, n in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    data = {n: _inputs(n) for n in args.sizes}
    for label, params in RULES.items():
        rule = P.get_rule(**params)
        cells = []
        for (_, convert, sync), n in columns:
            F, C_to = (convert(a) for a in data[n])
            cells.append(f"{_best_ms(lambda r=rule, F=F, C=C_to: r(F, C), sync, args.budget):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
