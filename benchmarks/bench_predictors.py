"""Cost per call of every closed-form predictor rule (R1-R8), NumPy and torch.

Compares the eigendecomposition rules (DirectPred, DirectSet(1/2)) with the matmul-only
iterations of [E] (Newton-Schulz, NS^2, Stiefel, Visser) and with LRP / Neumann /
DirectCopy, at n = 128, 256, 512: NumPy float64 and torch float32 on CPU, torch float32 on
CUDA when available. Prints a markdown table (milliseconds per call, best of repeats).

A second table compares the two routes to DirectPred's square root on torch float32
(issue 15): R1 through eigh, and R6 (Newton-Schulz on F, matmul only), each checked (the
default: the input checks read on the host) and trusted (inside ``DeferredChecks``: the
checks stay on the device), with R6's error against eigh's root.

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


# label -> (rule, params, trusted); the square-root routes of the second table
ROUTES: dict[str, tuple[str, dict, bool]] = {
    "R1 directpred (eigh), checked": ("directpred", {}, False),
    "R1 directpred (eigh), trusted": ("directpred", {}, True),
    "R6 newton_schulz on F n=9, checked": ("newton_schulz", {"source": "F"}, False),
    "R6 newton_schulz on F n=9, trusted": ("newton_schulz", {"source": "F"}, True),
    "R6 newton_schulz on F n=15, trusted": ("newton_schulz", {"source": "F", "n": 15}, True),
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
    _routes(args, [b for b in backends if b[0] != "numpy f64"], data)


def _root_error(F: np.ndarray, rule: str, params: dict) -> str:
    """R6's ||root - F^(1/2)||_F / ||F^(1/2)||_F in float64 (eigh's root as reference)."""
    if rule != "newton_schulz":
        return "-"
    s, U = np.linalg.eigh(F)
    root = (U * np.sqrt(np.maximum(s, 0))) @ U.T
    error = np.linalg.norm(P.get_rule(rule, **params)(F) - root) / np.linalg.norm(root)
    return f"{error:.1e}"


def _routes(args, backends, data) -> None:
    """The second table: eigh R1 against the matmul-only R6, checked and trusted."""
    columns = [(b, n) for n in args.sizes for b in backends]
    headers = [f"{b[0]} n={n}" for b, n in columns] + [f"R6 root error n={n}" for n in args.sizes]
    print("\n| square-root route (ms/call) | " + " | ".join(headers) + " |")
    print("|---" * (len(columns) + len(args.sizes) + 1) + "|")
    checks = P.DeferredChecks()
    for label, (name, params, trusted) in ROUTES.items():
        rule = P.get_rule(name, **params)
        cells = []
        for (_, convert, sync), n in columns:
            F = convert(data[n][0])

            def call(F=F, rule=rule, trusted=trusted):
                if not trusted:
                    return rule(F)
                with checks.collect(0):
                    return rule(F)

            cells.append(f"{_best_ms(call, sync, args.budget):.2f}")
        errors = [_root_error(data[n][0], name, params) for n in args.sizes]
        print(f"| {label} | " + " | ".join(cells + errors) + " |")
    checks.raise_if_failed()


if __name__ == "__main__":
    main()
