"""Benchmark: the sweeps behind the theory.md section 9 figures (S- and J-flows).

Times, wall clock and process CPU (the machine is shared: CPU time is the steadier
number), best of `--repeat` runs:
- `figures.s_rl_subspace_distance.data()`: S2 (stop-gradient, EMA), S6, S7 and S8 from 8 random
  orthonormal starts each, n = 12 states, k = 3, t in [0, 2000];
- `figures.j_jepa_critical_times.data()`: J2 for a 25-point rho grid x 2 objectives x
  depths (1, 4), critical times read off the trajectories, J4's closed form on 25 x 25;
- a batch-size scan of `rl.integrate` (stop-gradient, PSD T, n = 12, k = 3, t in [0, 200]):
  one batched RK45 solve of B starts against B solves of one start each.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_beyond.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from linear_ssl.figures import j_jepa_critical_times, s_rl_subspace_distance
from linear_ssl.theory import rl


def timed(fn, repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of `repeat` calls of fn()."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"load average {os.getloadavg()[0]:.1f}; OMP_NUM_THREADS={threads}")
    print("| sweep | wall (s) | CPU (s) |\n|---|---|---|")
    for name, fn in (
        ("s_rl_subspace_distance.data() (figure)", s_rl_subspace_distance.data),
        ("j_jepa_critical_times.data() (figure)", j_jepa_critical_times.data),
    ):
        wall, cpu = timed(fn, args.repeat)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    T = rl.random_mdp(12, "symmetric_psd", seed=0)
    t = np.linspace(0.0, 200.0, 11)
    print(
        "\n| starts B | batched (CPU s) | one solve per start (CPU s) | ratio |\n|---|---|---|---|"
    )
    for B in (1, 8, 64, 256):
        Phi0 = np.linalg.qr(np.random.default_rng(0).normal(size=(B, 12, 3)))[0]
        _, batched = timed(lambda P=Phi0: rl.integrate(T, P, t, rtol=1e-6), args.repeat)
        _, loop = timed(lambda P=Phi0: [rl.integrate(T, x, t, rtol=1e-6) for x in P], 1)
        print(f"| {B} | {batched:.2f} | {loop:.2f} | {loop / batched:.1f}x |")


if __name__ == "__main__":
    main()
