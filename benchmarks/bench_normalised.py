"""Cost of the normalised-loss flows (linear_ssl.theory.normalised, theory.md 2b) beside
the squared-error ones.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_normalised.py

1. N2 (integrate_modes) on a 128 x 128 grid of two-mode systems: mode 0 starts at
   (p0, s0) in [0.01, 2]^2, mode 1 at (0.5, 0.5) (the normalised phase portrait), BYOL
   beta = 0.4, alpha_p = 1, eta = 0.01, tau0 = 1, t in [0, 50], 11 outputs, rtol 1e-6;
   beside T7 (modes.integrate) on the same 2 x 16384 modes, which are independent there.
2. N1 (integrate) at n1 = n2 = n in {64, 256} to t = 20 (BYOL, beta = 0.5, eta = 0.01,
   X = I, X' = 0.1 I, N(0, 1/n) entries), beside T1 (matrix.integrate), both at their
   default RK45, rtol 1e-6.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from linear_ssl.theory import Hyper, matrix, modes, normalised


def _timed(fn, repeat: int = 1):
    """Best CPU seconds of `repeat` calls (the shared machine's wall time swings with load)."""
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def modes_table() -> list[str]:
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.01)
    grid = np.linspace(0.01, 2.0, 128)
    P, S = np.meshgrid(grid, grid)
    p0 = np.stack([P, np.full_like(P, 0.5)], axis=-1)
    s0 = np.stack([S, np.full_like(S, 0.5)], axis=-1)
    t = np.linspace(0.0, 50.0, 11)
    rows = ["| flow (128 x 128 x 2 modes) | CPU time (s) | rhs evals (per system, mean) |"]
    rows.append("|---|---|---|")
    runs = [
        ("N2 `normalised.integrate_modes`", lambda: normalised.integrate_modes(h, p0, s0, t, 1.0)),
        ("T7 `modes.integrate`", lambda: modes.integrate(h, p0, s0, t, 1.0)),
    ]
    for name, solve in runs:
        seconds, sol = _timed(solve, repeat=3)
        per = sol.stats["nfev"] / sol.ok.size
        rows.append(f"| {name} | {seconds:.3f} | {sol.stats['nfev']} ({per:.0f}) |")
        print(rows[-1], flush=True)
    return rows


def matrix_table() -> list[str]:
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.1)
    rows = ["| n | flow | CPU time (s) | rhs evals | ms / rhs |", "|---|---|---|---|---|"]
    for n in (64, 256):
        rng = np.random.default_rng(0)
        W0 = rng.normal(size=(n, n)) / np.sqrt(n)
        Wp0 = rng.normal(size=(n, n)) / np.sqrt(n)
        t = np.linspace(0.0, 20.0, 11)
        for name, flow in (
            ("N1 `normalised.integrate`", normalised.integrate),
            ("T1 `matrix.integrate`", matrix.integrate),
        ):
            seconds, sol = _timed(partial(flow, h, W0, Wp0, W0, t), repeat=2 if n == 64 else 1)
            nfev = sol.stats["nfev"] if hasattr(sol, "stats") else sol.nfev
            ms = 1e3 * seconds / nfev
            rows.append(f"| {n} | {name} | {seconds:.2f} | {nfev} | {ms:.2f} |")
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    print("\n".join(modes_table()))
    print("\n".join(matrix_table()))
