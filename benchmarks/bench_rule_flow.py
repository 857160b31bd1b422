"""bridge.rule_flow on 128 modes: the rule on the spectrum (``PredictorRule.spectrum``) vs
the matrix path (an eigendecomposition / matrix iteration of a diagonal F each RHS call).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_rule_flow.py [--modes 128] [--t 20]
Prints, per rule, the seconds of one rule_flow with each path (best of --repeat) and the
largest difference of the two trajectories.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from linear_ssl import bridge
from linear_ssl.predictors import get_rule
from linear_ssl.theory.params import Hyper

RULES = [
    ("directpred", {"eps": 0.1}),
    ("directcopy", {"eps": 0.1}),
    ("lrp", {"reg": 0.01}),
    ("newton_schulz", {"source": "F"}),
]


class MatrixOnly:
    """The rule with its spectral path hidden: rule_spectrum falls back to the matrices."""

    def __init__(self, rule):
        self.rule, self.needs_cross, self.has_spectrum = rule, rule.needs_cross, False

    def __call__(self, F, C_to=None):
        return self.rule(F, C_to)


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=128)
    parser.add_argument("--t", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    s0 = np.sort(rng.uniform(0.01, 1.0, args.modes))[::-1]
    tau0 = rng.uniform(0.5, 1.0, args.modes)
    h = Hyper(alpha_p=1.0, beta=0.3, eta=0.02, sigma2=0.1)
    t = np.linspace(0.0, args.t, 21)
    for name, params in RULES:
        rule = get_rule(name, **params)
        fast, a = best_time(lambda r=rule: bridge.rule_flow(h, r, s0, t, tau0), args.repeat)
        slow, b = best_time(
            lambda r=rule: bridge.rule_flow(h, MatrixOnly(r), s0, t, tau0), args.repeat
        )
        diff = float(np.nanmax(np.abs(a.s - b.s) / np.abs(b.s)))
        print(
            f"{name:14s} matrix {slow:8.3f} s  spectrum {fast:8.3f} s  x{slow / fast:6.1f}  "
            f"rhs calls {a.stats['nfev']}  max rel diff s {diff:.1e}"
        )


if __name__ == "__main__":
    main()
