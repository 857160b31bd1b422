"""Cost of the matrix flow T1 (linear_ssl.theory.matrix) and of its SGD twin (theory.sgd).

Run: OMP_NUM_THREADS=1 python benchmarks/bench_matrix.py

1. matrix.integrate at n1 = n2 = n in {64, 256} to t = 20 (BYOL, X = I, X' = 0.1 I), with
   SciPy's RK45 (the default) and DOP853 at two tolerances: wall time, rhs evaluations and
   the error at t = 20 against a DOP853 rtol 1e-11 reference.
2. The right-hand side alone, with the fast path for X, X' multiples of I (3 products) and
   with the general products (5), at n = 64 and 256.
3. The same small non-isotropic trajectory (n = 8, t = 2) computed by minibatch SGD
   (128 seeds x batch 64, seed-averaged, torch convention) and by matrix.integrate: error at
   t = 2 against a tight-tolerance reference and wall time, to compare cost at equal accuracy.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from linear_ssl.theory import matrix, sgd
from linear_ssl.theory.params import Hyper


def _timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def flow_table() -> list[str]:
    rows = [
        "| n | method | rtol | time (s) | rhs evals | ms / rhs | max abs error at t = 20 |",
        "|---|---|---|---|---|---|---|",
    ]
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.1)
    for n in (64, 256):
        rng = np.random.default_rng(0)
        W0 = rng.normal(size=(n, n)) / np.sqrt(n)
        Wp0 = rng.normal(size=(n, n)) / np.sqrt(n)
        t = np.linspace(0, 20, 11)
        ref = matrix.integrate(h, W0, Wp0, W0, t, rtol=1e-11, atol=1e-14, method="DOP853")
        for method, rtol in (("RK45", 1e-6), ("RK45", 1e-8), ("DOP853", 1e-6), ("DOP853", 1e-8)):
            solve = partial(
                matrix.integrate, h, W0, Wp0, W0, t, rtol=rtol, atol=1e-3 * rtol, method=method
            )
            seconds, sol = _timed(solve, repeat=2 if n == 64 else 1)
            ms = 1e3 * seconds / sol.nfev
            err = max(
                np.abs(getattr(sol, k)[-1] - getattr(ref, k)[-1]).max() for k in "W Wp Wa".split()
            )
            rows.append(
                f"| {n} | {method} | {rtol:g} | {seconds:.2f} | {sol.nfev} | {ms:.2f} | {err:.1e} |"
            )
            print(rows[-1], flush=True)
    return rows


def _repeat_rhs(h, W, Wp, Wa, cov, times: int = 20) -> None:
    for _ in range(times):
        matrix._derivatives(h, W, Wp, Wa, cov, True, False)


def rhs_table() -> list[str]:
    """T1's rhs with the identity fast path against the general products, one state."""
    rows = ["| n | fast path (ms) | general (ms) | speed-up |", "|---|---|---|---|"]
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.1)
    for n in (64, 256):
        rng = np.random.default_rng(0)
        W, Wp, Wa = (rng.normal(size=(n, n)) / np.sqrt(n) for _ in range(3))
        X, Xp = np.eye(n), 0.1 * np.eye(n)
        fast = matrix._Covariances.of(X, Xp)
        general = matrix._Covariances(X, Xp, X + Xp, None, None)
        times = []
        for cov in (fast, general):
            call = partial(_repeat_rhs, h, W, Wp, Wa, cov)
            seconds, _ = _timed(call, repeat=5)
            times.append(1e3 * seconds / 20)
        rows.append(f"| {n} | {times[0]:.3f} | {times[1]:.3f} | {times[1] / times[0]:.2f}x |")
        print(rows[-1], flush=True)
    return rows


def sgd_table() -> list[str]:
    n, flow_time = 8, 2.0
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    X, Xp = A @ A.T / n + 0.2 * np.eye(n), B @ B.T / (4 * n)
    W0, Wp0, Wa0 = (0.5 * rng.normal(size=(n, n)) for _ in range(3))
    h = Hyper(alpha_p=1.5, beta=0.5, eta=0.05)
    t = np.array([0.0, flow_time])
    ref = matrix.integrate(h, W0, Wp0, Wa0, t, X, Xp, rtol=1e-12, atol=1e-14)

    def error(W, Wp, Wa) -> float:  # at the final time
        pairs = ((W, ref.W), (Wp, ref.Wp), (Wa, ref.Wa))
        return max(np.abs(a[-1] - b[-1]).max() for a, b in pairs)

    rows = ["| engine | setting | error (max abs) | time (s) |", "|---|---|---|---|"]
    for dt in (0.04, 0.01):
        steps = int(round(flow_time / dt))
        simulate = partial(
            sgd.simulate, h, W0, Wp0, Wa0, lr=dt, steps=steps, batch=64, X=X, Xp=Xp, seeds=128
        )
        seconds, run = _timed(partial(simulate, record_every=steps))
        err = error(run.W.mean(1), run.Wp.mean(1), run.Wa.mean(1))
        rows.append(f"| sgd | lr {dt}, {steps} steps, 128 seeds x 64 | {err:.1e} | {seconds:.3f} |")
        print(rows[-1], flush=True)
    for rtol in (1e-3, 1e-6, 1e-9):
        solve = partial(matrix.integrate, h, W0, Wp0, Wa0, t, X, Xp, rtol=rtol, atol=1e-3 * rtol)
        seconds, sol = _timed(solve, repeat=5)
        err = error(sol.W, sol.Wp, sol.Wa)
        setting = f"RK45 rtol {rtol:g}, {sol.nfev} rhs"
        rows.append(f"| matrix | {setting} | {err:.1e} | {seconds:.4f} |")
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    print("\n".join(flow_table()))
    print()
    print("\n".join(rhs_table()))
    print()
    print("\n".join(sgd_table()))
