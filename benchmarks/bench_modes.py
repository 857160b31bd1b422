"""Benchmark: linear_ssl.theory.modes.integrate against per-trajectory scipy solve_ivp (T7).

Why modes.integrate is its own vectorised RK45 rather than a call to scipy: on a 128 x 128
phase portrait of T7 ((p0, s0) in [0.01, 2]^2, beta = 0.4, alpha_p = 1, eta = 0.01,
sigma2 = 0, tau0 = 0, t in [0, 50], rtol 1e-6, atol 1e-9) it must be >= 500x faster than
a loop of solve_ivp(method="RK45") calls, agree with it to 1e-5, and do a 1024 x 1024 grid
in under 10 s on one core. Also timed: solve_ivp on the whole grid stacked into one system
(vectorized=True), the first thing to try; it shares one step size and one RMS error over
all 49152 components, so it is neither per-trajectory accurate nor fast.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_modes.py [--loop-sample 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
from scipy.integrate import solve_ivp

from linear_ssl.theory import Hyper, modes

H = Hyper(alpha_p=1.0, beta=0.4, eta=0.01, sigma2=0.0)
RTOL, ATOL = 1e-6, 1e-9
T_EVAL = np.linspace(0.0, 50.0, 11)


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(p0, s0) on an n x n grid of [0.01, 2]^2."""
    axis = np.linspace(0.01, 2.0, n)
    return np.meshgrid(axis, axis, indexing="ij")


def scalar_t7(_t: float, y: np.ndarray) -> list[float]:
    """T7 for one trajectory in plain floats: the leanest right-hand side for the baseline."""
    p, s, tau = y
    g = tau - (1.0 + H.sigma2) * p
    d = p * g - H.eta
    return [H.alpha_p * s * g - H.eta * p, 2.0 * s * d, H.beta * (1.0 - tau) - tau * d]


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    """Smallest wall time of `repeat` calls, and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-sample", type=int, default=256, help="trajectories timed")
    parser.add_argument("--skip-stacked", action="store_true", help="skip stacked solve_ivp")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; shared machine: times are noisy")

    # the baseline's right-hand side is T7 (modes.rhs) itself
    y = np.array([0.7, 0.3, 0.2])
    assert np.allclose(scalar_t7(0.0, y), np.array(modes.rhs(H, *y)), rtol=1e-14)

    p0, s0 = grid(128)
    t_vec, sol = best_of(lambda: modes.integrate(H, p0, s0, T_EVAL, tau0=0.0, rtol=RTOL, atol=ATOL))
    print(
        f"128x128 modes.integrate: {t_vec:.3f} s (best of 3), all ok: {sol.all_ok}, "
        f"steps per trajectory mean {sol.n_steps.mean():.1f} max {sol.n_steps.max()}"
    )

    rng = np.random.default_rng(0)
    sample = rng.choice(p0.size, size=args.loop_sample, replace=False)
    disagreement = 0.0
    start = time.perf_counter()
    for flat in sample:
        i, j = np.unravel_index(flat, p0.shape)
        ref = solve_ivp(
            scalar_t7,
            (0.0, T_EVAL[-1]),
            [p0[i, j], s0[i, j], 0.0],
            method="RK45",
            t_eval=T_EVAL,
            rtol=RTOL,
            atol=ATOL,
        )
        ours = np.stack([sol.p[:, i, j], sol.s[:, i, j], sol.tau[:, i, j]])
        disagreement = max(disagreement, float(np.max(np.abs(ref.y - ours))))
    t_loop = (time.perf_counter() - start) * p0.size / args.loop_sample
    print(
        f"128x128 solve_ivp loop: {t_loop:.1f} s (extrapolated from {args.loop_sample} "
        f"random trajectories x {p0.size / args.loop_sample:.0f})"
    )
    print(
        f"speed-up {t_loop / t_vec:.0f}x (need >= 500); max |difference| over p, s, tau at "
        f"all {T_EVAL.size} times: {disagreement:.2e} (need <= 1e-5)"
    )

    if not args.skip_stacked:
        n = p0.size

        def stacked(_t, y):
            return np.concatenate(modes.rhs(H, y[:n], y[n : 2 * n], y[2 * n :]))

        start = time.perf_counter()
        ref = solve_ivp(
            stacked,
            (0.0, T_EVAL[-1]),
            np.concatenate([p0.ravel(), s0.ravel(), np.zeros(n)]),
            method="RK45",
            t_eval=T_EVAL,
            rtol=RTOL,
            atol=ATOL,
        )
        t_stacked = time.perf_counter() - start
        ours = np.concatenate(
            [
                sol.p.reshape(T_EVAL.size, -1),
                sol.s.reshape(T_EVAL.size, -1),
                sol.tau.reshape(T_EVAL.size, -1),
            ],
            axis=1,
        ).T
        print(
            f"128x128 stacked solve_ivp (one system, shared step, RMS error): "
            f"{t_stacked:.2f} s, {ref.t.size and ref.nfev} RHS calls; max |difference| from "
            f"modes.integrate {np.max(np.abs(ref.y - ours)):.2e}"
        )

    p0, s0 = grid(1024)
    t_eval = np.array([0.0, 25.0, 50.0])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    big = modes.integrate(H, p0, s0, t_eval, tau0=0.0, rtol=RTOL, atol=ATOL)
    t_big = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result_mb = 3 * big.p.nbytes / 2**20
    print(
        f"1024x1024 modes.integrate (t = 0, 25, 50): {t_big:.2f} s (need < 10), all ok: "
        f"{big.all_ok}; peak RSS {rss_before:.0f} -> {rss_after:.0f} MiB "
        f"(the result itself: {result_mb:.0f} MiB; work is chunked, 16384 trajectories)"
    )


if __name__ == "__main__":
    main()
