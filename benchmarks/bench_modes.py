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


def clocks() -> np.ndarray:
    """(wall, process CPU) seconds: CPU time is less disturbed by other users' jobs."""
    return np.array([time.perf_counter(), time.process_time()])


def best_of(fn, repeat: int = 3) -> tuple[np.ndarray, object]:
    """Smallest (wall, CPU) times of `repeat` calls, and the last result."""
    times = []
    for _ in range(repeat):
        start = clocks()
        result = fn()
        times.append(clocks() - start)
    return np.min(times, axis=0), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-sample", type=int, default=1024, help="trajectories timed")
    parser.add_argument("--skip-stacked", action="store_true", help="skip stacked solve_ivp")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; shared machine: times are noisy")

    # the baseline's right-hand side is T7 (modes.rhs) itself
    y = np.array([0.7, 0.3, 0.2])
    assert np.allclose(scalar_t7(0.0, y), np.array(modes.rhs(H, *y)), rtol=1e-14)

    p0, s0 = grid(128)

    def vectorised():
        return modes.integrate(H, p0, s0, T_EVAL, tau0=0.0, rtol=RTOL, atol=ATOL)

    t_vec, sol = best_of(vectorised, repeat=5)
    print(
        f"128x128 modes.integrate: {t_vec[0]:.3f} s wall, {t_vec[1]:.3f} s CPU (best of 5), "
        f"all ok: {sol.all_ok}, "
        f"steps per trajectory mean {sol.n_steps.mean():.1f} max {sol.n_steps.max()}"
    )

    # the per-trajectory loop on a random sample; its results are the reference
    rng = np.random.default_rng(0)
    sample = rng.choice(p0.size, size=args.loop_sample, replace=False)
    refs = np.empty((args.loop_sample, 3, T_EVAL.size))
    batch_times = []  # timed in 4 batches: best batch, like best-of for modes.integrate
    for batch in np.array_split(np.arange(args.loop_sample), 4):
        start = clocks()
        for row in batch:
            y0 = [p0.flat[sample[row]], s0.flat[sample[row]], 0.0]
            refs[row] = solve_ivp(
                scalar_t7, (0.0, T_EVAL[-1]), y0, "RK45", t_eval=T_EVAL, rtol=RTOL, atol=ATOL
            ).y
        batch_times.append((clocks() - start) * p0.size / batch.size)
    t_loop = np.min(batch_times, axis=0)
    ours = np.stack([x.reshape(T_EVAL.size, -1)[:, sample].T for x in (sol.p, sol.s, sol.tau)], 1)
    print(
        f"128x128 solve_ivp loop: {t_loop[0]:.1f} s wall, {t_loop[1]:.1f} s CPU "
        f"(best of 4 batches of {args.loop_sample // 4} random trajectories, x "
        f"{4 * p0.size / args.loop_sample:.0f})"
    )
    print(
        f"speed-up {t_loop[0] / t_vec[0]:.0f}x wall, {t_loop[1] / t_vec[1]:.0f}x CPU "
        f"(need >= 500); max |difference| over p, s, tau at "
        f"all {T_EVAL.size} times: {np.max(np.abs(ours - refs)):.2e} (need <= 1e-5)"
    )

    if not args.skip_stacked:
        n = p0.size

        def stacked(_t, y):
            return np.concatenate(modes.rhs(H, y[:n], y[n : 2 * n], y[2 * n :]))

        y0 = np.concatenate([p0.ravel(), s0.ravel(), np.zeros(n)])
        mine = np.concatenate([x.reshape(T_EVAL.size, -1) for x in (sol.p, sol.s, sol.tau)], 1).T
        for rtol in (RTOL, RTOL / 10):
            start = time.perf_counter()
            big = solve_ivp(
                stacked, (0.0, T_EVAL[-1]), y0, "RK45", t_eval=T_EVAL, rtol=rtol, atol=ATOL
            )
            t_stacked = time.perf_counter() - start
            theirs = np.stack([big.y[i * n + sample] for i in range(3)], 1)
            everywhere = np.max(np.abs(big.y - mine))
            print(
                f"128x128 stacked solve_ivp (one system: shared step, RMS error over all "
                f"{3 * n} components), rtol {rtol:.0e}: {t_stacked:.2f} s wall, {big.nfev} RHS "
                f"calls; max |difference| from the loop sample {np.max(np.abs(theirs - refs)):.2e}"
                f", from modes.integrate over all {n} trajectories {everywhere:.2e}"
            )

    p0, s0 = grid(1024)
    t_eval = np.array([0.0, 25.0, 50.0])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = clocks()
    big = modes.integrate(H, p0, s0, t_eval, tau0=0.0, rtol=RTOL, atol=ATOL)
    t_big = clocks() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result_mb = 3 * big.p.nbytes / 2**20
    print(
        f"1024x1024 modes.integrate (t = 0, 25, 50): {t_big[0]:.2f} s wall, {t_big[1]:.2f} s "
        f"CPU (need < 10), all ok: "
        f"{big.all_ok}; peak RSS {rss_before:.0f} -> {rss_after:.0f} MiB "
        f"(the result itself: {result_mb:.0f} MiB; work is chunked, 16384 trajectories)"
    )


if __name__ == "__main__":
    main()
