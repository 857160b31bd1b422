"""README.md's Python tour runs as written (its blocks in order, one namespace), and its
numbers are what the tour says: T7 shapes, T9's fixed points, T8's invariant, R1, R6."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from linear_ssl import predictors
from linear_ssl.theory import Hyper, modes

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_tour_runs_and_says_true_things():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    tour = [b for b in blocks if "load_run(" not in b]  # that one needs a trained run
    assert len(tour) >= 3
    ns: dict = {}
    for block in tour:
        exec(compile(block, str(README), "exec"), ns)  # noqa: S102 - the README's own code
    sol = modes.integrate(
        Hyper(alpha_p=1.0, beta=0.4, eta=0.01),
        np.linspace(0.01, 1, 64),
        0.5,
        np.linspace(0, 50, 501),
        tau0=0.0,
    )
    h = ns["h"]
    p_minus, p_plus = modes.fixed_points(h, tau=1.0)
    assert np.isclose(p_plus, (1 + np.sqrt(1 - 4 * h.eta)) / 2)  # T9 closed form
    assert np.isclose(p_minus, (1 - np.sqrt(1 - 4 * h.eta)) / 2)
    c = modes.invariant(h, sol.p, sol.s, sol.t[:, None])
    assert np.ptp(c, axis=0).max() < 1e-5  # T8 along every trajectory
    F = ns["F"]
    np.testing.assert_allclose(ns["Wp"], predictors.directpred(F, eps=0.1))
    s, U = np.linalg.eigh(F)
    root = U @ np.diag(np.sqrt(np.clip(s, 0, None))) @ U.T
    assert np.linalg.norm(ns["sqrt"] - root) < 1e-2 * np.linalg.norm(root)  # R6, n = 9


def test_readme_beyond_byol_tour_says_true_things():
    """The section-9 tour: S3 (Phi^T Phi conserved for every start) and J4's claim (deep
    JEPA takes the high-rho feature first, MAE the high-lambda one)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    tour = [b for b in blocks if "load_run(" not in b]
    upto = next(i for i, b in enumerate(tour) if "rl.integrate(" in b)
    ns: dict = {}
    for block in tour[: upto + 1]:  # the blocks before it define rng and t
        exec(compile(block, str(README), "exec"), ns)  # noqa: S102 - the README's own code
    Phi = ns["sol"].Phi
    gram = np.swapaxes(Phi, -1, -2) @ Phi
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-6)
    from linear_ssl.theory import jepa

    deep = jepa.critical_times([1.0, 1.9], [1.0, 0.6], depth=5, eps=0.01, objective="jepa")
    mae = jepa.critical_times([1.0, 1.9], [1.0, 0.6], depth=5, eps=0.01, objective="mae")
    assert deep[0] < deep[1] and mae[1] < mae[0]
