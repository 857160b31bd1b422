"""The shared integrators (theory/solvers.py): batched RK45, the checked solve_ivp loop, the
step budget, the stiffness report and the on_failure policy, on problems with closed forms."""

from __future__ import annotations

import dis
import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from linear_ssl.theory import Hyper, jepa, matrix, modes, normalised, rl, solvers


def _decay_and_rotation(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows (x, u, v): dx/dt = -k x with k in each column's 4th row held fixed, (u, v) a
    rotation at unit speed: closed forms x0 e^(-k t), (cos t, -sin t)-rotated."""
    out[0] = -y[3] * y[0]
    out[1] = y[2]
    out[2] = -y[1]
    out[3] = 0.0
    return out


def test_rk45_batched_matches_closed_forms_per_column():
    """Each column reaches its own closed form to the tolerance, whatever its neighbours."""
    t = np.linspace(0.0, 5.0, 21)
    k = np.array([0.1, 1.0, 5.0])
    y0 = np.stack([np.ones(3), np.ones(3), np.zeros(3), k])
    res = solvers.rk45_batched(_decay_and_rotation, y0, t, rtol=1e-9, atol=1e-12)
    assert res.ok.all() and res.y.shape == (t.size, 4, 3)
    np.testing.assert_allclose(res.y[:, 0], np.exp(-np.outer(t, k)), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(res.y[:, 1], np.cos(t)[:, None] * np.ones(3), atol=1e-7)
    np.testing.assert_allclose(res.y[:, 2], -np.sin(t)[:, None] * np.ones(3), atol=1e-7)
    alone = solvers.rk45_batched(_decay_and_rotation, y0[:, 1:2], t, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(alone.y[:, :, 0], res.y[:, :, 1])
    assert res.nfev >= 6 * res.n_steps.sum()


def test_rk45_batched_matches_scipy_rk45():
    """Same tableau and step control as SciPy: agreement far below the tolerance."""
    t = np.linspace(0.0, 3.0, 7)
    y0 = np.array([[2.0], [1.0], [0.0], [0.7]])
    res = solvers.rk45_batched(_decay_and_rotation, y0, t, rtol=1e-6, atol=1e-9)
    ref = solve_ivp(
        lambda _t, y: _decay_and_rotation(y[:, None], np.empty((4, 1)))[:, 0],
        (0.0, 3.0),
        y0[:, 0],
        t_eval=t,
        rtol=1e-6,
        atol=1e-9,
    )
    np.testing.assert_allclose(res.y[:, :, 0], ref.y.T, rtol=1e-10, atol=1e-12)
    assert res.nfev == ref.nfev  # SciPy counts 2 to start and 6 per attempted step


def test_step_budget_stops_a_trajectory_with_nan_and_a_message():
    """max_steps: past the budget a trajectory is nan from its t_fail on, ok False."""
    t = np.linspace(0.0, 5.0, 11)
    y0 = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.1, 2000.0]])
    res = solvers.rk45_batched(_decay_and_rotation, y0, t, max_steps=200)
    assert res.ok.tolist() == [True, False] and res.exceeded.tolist() == [False, True]
    assert res.stiff[1]  # a decay held at RK45's stability limit: stiff, not a blow-up
    late = t > res.t_fail[1]
    assert late.any() and np.isnan(res.y[late, :, 1]).all()
    assert np.isfinite(res.y[:, :, 0]).all()
    assert "1 of 2 exceeded the step budget" in res.failure_message("demo")


def test_blow_up_is_not_called_stiff():
    """dx/dt = x^2 from 1 blows up at t = 1: non-finite, ok False, not stiff."""

    def square(y, out):
        np.square(y, out=out)
        return out

    res = solvers.rk45_batched(square, np.ones((1, 1)), np.linspace(0.0, 2.0, 5))
    assert not res.ok[0] and not res.stiff[0]
    assert res.t_fail[0] == pytest.approx(1.0, abs=1e-3)


def test_issue_cases_return_within_the_default_budget():
    """[issue 9] eta = 1e6, p0 = 1e3, s0 = 1e6 ran > 10 min: now it stops and says so."""
    h = Hyper(alpha_p=1.0, beta=0.4, eta=1e6, sigma2=0.0)
    with pytest.warns(RuntimeWarning, match="step budget"):
        sol = modes.integrate(h, 1e3, 1e6, np.linspace(0, 50, 11), tau0=0.5)
    assert not sol.ok and "max_steps" in sol.message
    assert sol.stats["nfev"] <= 7 * solvers.DEFAULT_MAX_STEPS + 10


def test_t7_stiff_trajectory_resolved_by_radau():
    """T7 at eta = 1e4 (SimSiam) is stiff for RK45; stiff_method='Radau' re-solves it, and
    the result matches SciPy's Radau run on T7 directly."""
    h = Hyper(alpha_p=1.0, beta=None, eta=1e4, sigma2=0.0)
    t = np.linspace(0.0, 5.0, 6)
    with pytest.warns(RuntimeWarning, match="stiff"):
        plain = modes.integrate(h, 0.5, 0.5, t, max_steps=2000)
    assert not plain.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = modes.integrate(h, 0.5, 0.5, t, max_steps=2000, stiff_method="Radau")
    assert sol.ok and sol.message == ""

    def t7(_t, y):
        dp, ds, _ = modes.rhs(h, y[0], y[1])
        return [dp, ds]

    ref = solve_ivp(t7, (0, 5.0), [0.5, 0.5], method="Radau", t_eval=t, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sol.p, ref.y[0], atol=1e-9)
    np.testing.assert_allclose(sol.s, ref.y[1], atol=1e-9)


def test_solve_ivp_checked_agrees_and_reports_blow_up_and_budget():
    """The checked loop equals solve_ivp; a blow-up and a budget stop are ok False + nan."""
    t = np.linspace(0.0, 2.0, 9)

    def rotation(_t, y):
        return np.array([y[1], -y[0]])

    res = solvers.solve_ivp_checked(rotation, [1.0, 0.0], t, rtol=1e-8, atol=1e-10)
    ref = solve_ivp(rotation, (0, 2.0), [1.0, 0.0], t_eval=t, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.y, ref.y.T, rtol=1e-12, atol=1e-14)
    assert res.ok and res.nfev == ref.nfev

    blow = solvers.solve_ivp_checked(lambda _t, y: y**2, [1.0], t, name="demo")
    assert not blow.ok and blow.t_fail == pytest.approx(1.0, abs=1e-2)
    assert np.isnan(blow.y[t > 1.01]).all() and blow.message.startswith("demo: stopped")

    stiff = solvers.solve_ivp_checked(lambda _t, y: -1e5 * y, [1.0], t, max_steps=50)
    assert not stiff.ok and "Radau" in stiff.message
    fine = solvers.solve_ivp_checked(lambda _t, y: -1e5 * y, [1.0], t, method="Radau")
    assert fine.ok and abs(fine.y[-1, 0]) < 1e-8


def test_on_failure_policy():
    """raise -> ValueError, warn -> RuntimeWarning, ignore -> silent; bad names refused."""
    with pytest.raises(ValueError, match="boom"):
        solvers.handle_failure(np.array([True, False]), "boom", "raise")
    with pytest.warns(RuntimeWarning, match="boom"):
        solvers.handle_failure(np.array([False]), "boom", "warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solvers.handle_failure(np.array([False]), "boom", "ignore")
        solvers.handle_failure(np.array([True]), "", "raise")
    with pytest.raises(ValueError, match="on_failure='loud' is invalid"):
        solvers.handle_failure(np.array([False]), "boom", "loud")
    with pytest.raises(ValueError, match="max_steps=0 is invalid"):
        solvers.rk45_batched(_decay_and_rotation, np.ones((4, 1)), [0.0, 1.0], max_steps=0)


def test_matrix_flow_budget_and_identity_fast_path():
    """[issue 9] matrix.integrate with W0 x 1e4 stops at its budget and says so; T1's fast
    path for X, X' multiples of I equals T1 written out with the full products."""
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.01, sigma2=0.3)
    rng = np.random.default_rng(0)
    W0, Wp0 = rng.normal(size=(4, 6)) * 1e4, np.eye(4) * 0.5
    with pytest.raises(ValueError, match="exceeded max_steps=50"):
        matrix.integrate(h, W0, Wp0, W0.copy(), [0.0, 1.0], max_steps=50)
    sol = matrix.integrate(h, W0, Wp0, W0.copy(), [0.0, 1.0], max_steps=50, on_failure="ignore")
    assert not sol.ok and np.isnan(sol.W[-1]).all() and "max_steps" in sol.message

    W, Wp, Wa = rng.normal(size=(4, 6)), rng.normal(size=(4, 4)), rng.normal(size=(4, 6))
    X, Xp = 1.7 * np.eye(6), 0.3 * np.eye(6)
    fast = matrix.vector_field(h, W, Wp, Wa, X, Xp)
    E = Wa @ X - Wp @ W @ (X + Xp)  # T1's residual written out
    slow = (Wp.T @ E - h.eta * W, h.alpha_p * E @ W.T - h.eta * Wp, h.beta * (W - Wa))
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "flow",
    [
        lambda t: modes.integrate(Hyper(beta=0.4), [0.5, 1.0], 0.5, t, max_steps=2),
        lambda t: normalised.integrate_modes(
            Hyper(beta=0.4), [0.5, 1.0], [0.5, 1.0], t, max_steps=2
        ),
        lambda t: matrix.integrate_scalar(Hyper(beta=0.4), 0.5, 1.0, 1.0, t, max_steps=2),
        lambda t: rl.integrate(np.diag([0.9, 0.5, 0.1]), np.eye(3)[:, :2], t, max_steps=2),
        lambda t: jepa.integrate([1.0, 2.0], [0.5, 1.0], t, depth=2, max_steps=2),
    ],
    ids=["modes", "normalised_modes", "matrix_scalar", "rl", "jepa"],
)
def test_budget_warning_points_at_the_callers_line(flow):
    """on_failure="warn" (every batched flow's default): the RuntimeWarning names the line
    that called the flow (here the lambda), not the solver's (BatchResult.outcome's
    stacklevel), and the solution's ok and stats have the trajectories' shape."""
    with pytest.warns(RuntimeWarning, match="max_steps") as caught:
        sol = flow(np.linspace(0.0, 50.0, 11))
    lines = {line for _, line in dis.findlinestarts(flow.__code__)}  # the lambda's own
    assert [(w.filename, w.lineno in lines) for w in caught] == [(__file__, True)]
    assert not sol.all_ok and sol.message
    assert sol.stats["n_steps"].shape == sol.ok.shape
    assert np.all(sol.stats["n_steps"] <= 2)
