"""The eigen-mode flow T7-T10 (linear_ssl.theory.modes)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from linear_ssl.theory import modes
from linear_ssl.theory.params import Hyper

BYOL = Hyper(alpha_p=1.3, beta=0.4, eta=0.02, sigma2=0.2)
SIMSIAM = Hyper(alpha_p=0.8, eta=0.05, sigma2=0.1)


def test_t7_rhs_is_the_printed_equation():
    """T7: rhs returns alpha_p s g - eta p, 2 p s g - 2 eta s, beta(1-tau) - tau(p g - eta)."""
    rng = np.random.default_rng(0)
    p, s, tau = rng.normal(size=(3, 50))
    c1 = 1 + BYOL.sigma2
    g = tau - c1 * p
    dp, ds, dtau = modes.rhs(BYOL, p, s, tau)
    np.testing.assert_allclose(dp, BYOL.alpha_p * s * g - BYOL.eta * p, rtol=1e-13)
    np.testing.assert_allclose(ds, 2 * p * s * g - 2 * BYOL.eta * s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        dtau, BYOL.beta * (1 - tau) - tau * (p * g - BYOL.eta), rtol=1e-12, atol=1e-15
    )
    # s dtau/dt = beta (1 - tau) s - tau (ds/dt) / 2
    np.testing.assert_allclose(s * dtau, BYOL.beta * (1 - tau) * s - tau * ds / 2, atol=1e-12)
    np.testing.assert_allclose(modes.tau_rhs(BYOL, p, tau), dtau, rtol=1e-13, atol=1e-15)
    # SimSiam: tau == 1 and does not move
    dp1, _, dtau1 = modes.rhs(SIMSIAM, p, s)
    np.testing.assert_allclose(dp1, modes.rhs(SIMSIAM, p, s, 1.0)[0])
    assert np.all(dtau1 == 0)


def _random_starts(h, seed, n, p_high, tau_high):
    """n random T7 starts: p0 ~ U(-0.5, p_high), s0 ~ U(0, 2), tau0 ~ U(0, tau_high)
    (1 for SimSiam)."""
    rng = np.random.default_rng(seed)
    p0, s0 = rng.uniform(-0.5, p_high, n), rng.uniform(0.0, 2.0, n)
    return p0, s0, 1.0 if h.simsiam else rng.uniform(0.0, tau_high, n)


def _reference(h, p0, s0, tau0, t):
    """Per-trajectory scipy solve_ivp(RK45) of T7."""
    n = 2 if h.simsiam else 3

    def fun(_t, y):
        return np.array(modes.rhs(h, *y))[:n]

    y0 = [p0, s0] if h.simsiam else [p0, s0, tau0]
    return solve_ivp(fun, (0, t[-1]), y0, method="RK45", t_eval=t, rtol=1e-6, atol=1e-9).y


@pytest.mark.parametrize("h", [BYOL, SIMSIAM], ids=["byol", "simsiam"])
def test_t7_vectorised_solve_agrees_with_solve_ivp(h):
    """T7: integrate agrees with per-trajectory solve_ivp (RK45, same tolerances)."""
    p0, s0, tau0 = _random_starts(h, seed=1, n=12, p_high=2.0, tau_high=1.0)
    t = np.linspace(0, 30, 16)
    sol = modes.integrate(h, p0, s0, t, tau0=tau0, rtol=1e-6, atol=1e-9)
    assert sol.all_ok and sol.p.shape == (16, 12)
    tau0 = np.broadcast_to(tau0, p0.shape)
    for j in range(12):
        ref = _reference(h, p0[j], s0[j], tau0[j], t)
        np.testing.assert_allclose(sol.p[:, j], ref[0], atol=1e-5)
        np.testing.assert_allclose(sol.s[:, j], ref[1], atol=1e-5)
        if not h.simsiam:
            np.testing.assert_allclose(sol.tau[:, j], ref[2], atol=1e-5)
    if h.simsiam:
        assert np.all(sol.tau == 1)


def test_t7_broadcasting_and_chunks_do_not_change_trajectories():
    """T7: modes are independent: shapes broadcast, and solving in chunks changes nothing.

    (Up to rounding: BLAS sums stages in an order that depends on the block length.)
    """
    p0 = np.linspace(0.05, 1.5, 6).reshape(2, 3)
    tau0 = np.array([0.0, 0.5, 1.0])
    t = np.linspace(0, 10, 5)
    whole = modes.integrate(BYOL, p0, 0.4, t, tau0=tau0)
    parts = modes.integrate(BYOL, p0, 0.4, t, tau0=tau0, chunk=4)
    assert whole.p.shape == whole.s.shape == whole.tau.shape == (5, 2, 3)
    assert whole.ok.shape == (2, 3)
    for a, b in ((whole.p, parts.p), (whole.s, parts.s), (whole.tau, parts.tau)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    one = modes.integrate(BYOL, p0[1, 2], 0.4, t, tau0=tau0[2])
    assert one.p.shape == (5,)
    np.testing.assert_allclose(one.p, whole.p[:, 1, 2], rtol=1e-13)
    np.testing.assert_array_equal(whole.p[0], p0)
    start = modes.integrate(BYOL, p0, 0.4, [0.0], tau0=tau0)
    assert start.p.shape == (1, 2, 3) and start.all_ok
    np.testing.assert_array_equal(start.tau[0], np.broadcast_to(tau0, (2, 3)))


@pytest.mark.parametrize("h", [BYOL, SIMSIAM], ids=["byol", "simsiam"])
def test_t8_invariant_is_constant_along_trajectories(h):
    """T8: c = exp(2 eta t)(s - p^2/alpha_p) stays at its initial value, any tau dynamics."""
    p0, s0, tau0 = _random_starts(h, seed=2, n=40, p_high=1.5, tau_high=1.2)
    t = np.linspace(0, 20, 21)
    sol = modes.integrate(h, p0, s0, t, tau0=tau0, rtol=1e-9, atol=1e-12)
    c = modes.invariant(h, sol.p, sol.s, t[:, None])
    np.testing.assert_allclose(c, np.broadcast_to(c[0], c.shape), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c[0], s0 - p0**2 / h.alpha_p, rtol=1e-14)
    # and the trajectories approach the parabola: s - p^2/alpha_p = exp(-2 eta t) c
    gap = sol.s[-1] - modes.parabola(h, sol.p[-1])
    np.testing.assert_allclose(gap, np.exp(-2 * h.eta * t[-1]) * c[0], atol=1e-7)


@pytest.mark.parametrize("tau", [1.0, 0.6, 1.4])
def test_t9_fixed_points_are_fixed_and_have_the_stated_stability(tau):
    """T9: p-+ are zeros of the flow on the parabola; 0 and p+ stable, p- unstable."""
    h = Hyper(alpha_p=1.5, eta=0.03, sigma2=0.25)
    p_minus, p_plus = modes.fixed_points(h, tau)
    assert 0 < p_minus < p_plus
    for pf in (0.0, p_minus, p_plus):
        assert abs(modes.parabola_flow(h, pf, tau)) < 1e-14
        dp, ds, _ = modes.rhs(h, pf, modes.parabola(h, pf), tau)
        assert abs(dp) < 1e-14 and abs(ds) < 1e-14
    # the factorised form of T9
    p = np.linspace(-1, 2, 31)
    np.testing.assert_allclose(
        modes.parabola_flow(h, p, tau),
        -(1 + h.sigma2) * p * (p - p_minus) * (p - p_plus),
        atol=1e-13,
    )
    # the flow on the parabola is T7's dp/dt restricted to s = p^2 / alpha_p
    np.testing.assert_allclose(
        modes.parabola_flow(h, p, tau), modes.rhs(h, p, modes.parabola(h, p), tau)[0], atol=1e-13
    )
    # stability: slope of the 1-D flow, and the (p, s) Jacobian at fixed tau
    assert modes.parabola_slope(h, 0.0, tau) < 0
    assert modes.parabola_slope(h, p_minus, tau) > 0
    assert modes.parabola_slope(h, p_plus, tau) < 0
    eig = {
        name: np.linalg.eigvals(modes.jacobian(h, pf, modes.parabola(h, pf), tau))
        for name, pf in (("zero", 0.0), ("minus", p_minus), ("plus", p_plus))
    }
    assert np.all(eig["zero"].real < 0) and np.all(eig["plus"].real < 0)
    assert np.sum(eig["minus"].real > 0) == 1  # a saddle: unstable along the parabola


def test_t9_jacobian_matches_finite_differences():
    """T9: jacobian is the derivative of T7's (p, s) right-hand side at fixed tau."""
    rng = np.random.default_rng(3)
    for p, s, tau in rng.uniform(-1, 2, (5, 3)):
        jac = modes.jacobian(BYOL, p, s, tau)
        eps = 1e-6
        for col, (dp_, ds_) in enumerate(((eps, 0.0), (0.0, eps))):
            hi = modes.rhs(BYOL, p + dp_, s + ds_, tau)[:2]
            lo = modes.rhs(BYOL, p - dp_, s - ds_, tau)[:2]
            np.testing.assert_allclose(jac[:, col], np.subtract(hi, lo) / (2 * eps), atol=1e-8)


def test_t9_on_the_parabola_below_p_minus_collapses_above_converges_to_p_plus():
    """T9: starting on the parabola, p < p- goes to 0, p > p- to p+ (SimSiam, tau = 1)."""
    h = Hyper(alpha_p=1.0, eta=0.1)
    p_minus, p_plus = modes.fixed_points(h)
    p0 = np.array([-0.3, 0.5 * p_minus, 0.95 * p_minus, 1.05 * p_minus, 0.5, 2.0])
    sol = modes.integrate(h, p0, modes.parabola(h, p0), [0.0, 300.0])
    below = p0 < p_minus
    assert np.all(np.abs(sol.p[-1][below]) < 1e-6) and np.all(sol.s[-1][below] < 1e-10)
    np.testing.assert_allclose(sol.p[-1][~below], p_plus, rtol=1e-5)
    np.testing.assert_allclose(sol.s[-1][~below], p_plus**2 / h.alpha_p, rtol=1e-5)
    np.testing.assert_array_equal(modes.collapses(h, p0, modes.parabola(h, p0)), below)


def test_t9_collapses_rejects_bad_arguments():
    """T9: collapses() names a bad method or t_max in a one-line ValueError."""
    with pytest.raises(ValueError, match="method"):
        modes.collapses(BYOL, 0.5, 0.1, method="guess")
    with pytest.raises(ValueError, match="t_max"):
        modes.collapses(BYOL, 0.5, 0.1, t_max=-1.0)


def test_t9_basin_closed_form_agrees_with_integration():
    """T9: collapses() by the closed form (on the parabola) and by integration agree."""
    h = Hyper(alpha_p=2.0, eta=0.04, sigma2=0.5)
    p_minus, _ = modes.fixed_points(h)
    p0 = p_minus * np.array([-2.0, 0.2, 0.7, 1.3, 3.0, 20.0])
    s0 = modes.parabola(h, p0)
    closed = modes.collapses(h, p0, s0)
    np.testing.assert_array_equal(closed, p0 < p_minus)
    np.testing.assert_array_equal(modes.collapses(h, p0, s0, method="integrate"), closed)


def test_t9_byol_basin_by_integration_matches_long_run():
    """T9 with EMA: collapses() (integration + T9 at the final tau) matches a long run."""
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.01)
    p0 = np.array([0.002, 0.01, 0.05, 0.3, 1.0])
    s0 = np.array([1e-5, 1e-4, 0.01, 0.05, 0.5])
    tau0 = np.array([0.0, 0.0, 0.5, 0.0, 1.0])
    label = modes.collapses(h, p0, s0, tau0)
    sol = modes.integrate(h, p0, s0, [0.0, 5000.0], tau0=tau0)
    grown = np.isclose(sol.p[-1], modes.fixed_points(h)[1], rtol=1e-4)
    assert np.all(label == ~grown)
    assert label.any() and (~label).any()
    np.testing.assert_allclose(sol.s[-1][label], 0.0, atol=1e-12)
    np.testing.assert_allclose(sol.tau[-1][~label], 1.0, rtol=1e-6)


@pytest.mark.parametrize("h", [SIMSIAM, BYOL], ids=["simsiam", "byol"])
def test_t9_past_the_threshold_every_mode_collapses(h):
    """T9: eta > tau^2 / (4 (1 + sigma2)) (at tau = 1): no p-+, every mode collapses."""
    eta = 1.2 * float(modes.collapse_threshold(h, 1.0))
    past = Hyper(alpha_p=h.alpha_p, beta=h.beta, eta=eta, sigma2=h.sigma2)
    assert np.all(np.isnan(modes.fixed_points(past)))
    rng = np.random.default_rng(4)
    p0, s0 = rng.uniform(-1, 3, 30), rng.uniform(0, 3, 30)
    sol = modes.integrate(past, p0, s0, [0.0, 600.0])
    assert np.all(np.abs(sol.p[-1]) < 1e-6) and np.all(sol.s[-1] < 1e-6)
    assert np.all(modes.collapses(past, p0, s0))


def test_t9_threshold_is_where_p_minus_meets_p_plus():
    """T9: at eta = tau^2 / (4 (1 + sigma2)) p- = p+ = tau / (2 (1 + sigma2)); past it, nan."""
    for tau in (0.5, 1.0, 2.0):
        base = Hyper(sigma2=0.3)
        eta = float(modes.collapse_threshold(base, tau))
        assert eta == pytest.approx(tau**2 / (4 * 1.3))
        pm, pp = modes.fixed_points(Hyper(sigma2=0.3, eta=eta), tau)
        assert pm == pytest.approx(pp) == pytest.approx(tau / 2.6)
        assert np.all(np.isnan(modes.fixed_points(Hyper(sigma2=0.3, eta=eta * 1.001), tau)))


def test_t9_eta_zero_branches():
    """T9, eta = 0: p = 0 a saddle; s = 0 and p = tau/(1+sigma2) are lines of fixed points."""
    h = Hyper(alpha_p=1.0, eta=0.0, sigma2=0.5)
    p_minus, p_plus = modes.fixed_points(h, 0.9)
    assert p_minus == 0 and p_plus == pytest.approx(0.9 / 1.5)
    rng = np.random.default_rng(5)
    anything = rng.uniform(-2, 2, 20)
    for dp, ds in (modes.rhs(h, anything, 0.0, 0.9)[:2], modes.rhs(h, p_plus, anything, 0.9)[:2]):
        assert np.all(np.abs(dp) < 1e-14) and np.all(np.abs(ds) < 1e-14)
    # p = 0 is a saddle: zero Jacobian eigenvalues, p > 0 grows and p < 0 returns on the parabola
    np.testing.assert_allclose(np.linalg.eigvals(modes.jacobian(h, 0.0, 0.0)), 0.0)
    assert modes.parabola_flow(h, 0.1) > 0 and modes.parabola_flow(h, -0.1) > 0
    # s(0) > p(0)^2 / alpha_p is enough to avoid collapse, even from p0 <= 0
    p0 = np.array([-1.0, -0.2, 0.0, 0.01])
    s0 = modes.parabola(h, p0) + 0.05
    sol = modes.integrate(h, p0, s0, [0.0, 400.0])
    np.testing.assert_allclose(sol.p[-1], 1 / 1.5, rtol=1e-5)
    np.testing.assert_allclose(sol.s[-1], (1 / 1.5) ** 2 + 0.05, rtol=1e-5)
    assert not modes.collapses(h, p0, s0).any()


def test_t9_p_minus_grows_with_eta_and_shrinks_with_tau():
    """T9 / T11: p- increases with eta and decreases with tau (below the threshold)."""
    etas = np.linspace(0.0, 0.24, 25)
    p_minus = [float(modes.fixed_points(Hyper(eta=e))[0]) for e in etas]
    assert np.all(np.diff(p_minus) > 0)
    taus = np.linspace(0.5, 3.0, 26)
    p_minus_tau, _ = modes.fixed_points(Hyper(eta=0.05), taus)
    assert np.all(np.diff(p_minus_tau) < 0)


def test_t7_tau_nullcline():
    """T7's tau equation: tau_steady(p) zeroes dtau/dt; at p = 0 it is beta / (beta - eta)."""
    p = np.linspace(0.0, 3.0, 31)
    tau = modes.tau_steady(BYOL, p)
    assert np.all(tau > 0)
    np.testing.assert_allclose(modes.tau_rhs(BYOL, p, tau), 0.0, atol=1e-13)
    assert tau[0] == pytest.approx(BYOL.beta / (BYOL.beta - BYOL.eta))
    # at p+ (tau = 1) the mode and its target agree: tau = 1
    p_plus = modes.fixed_points(BYOL, 1.0)[1]
    assert modes.tau_steady(BYOL, p_plus) == pytest.approx(1.0)


def _k_matrix(h, p, s, tau):
    """T6's K = (1+sigma2)[(alpha_p/2) F + Wp^2 - tau/(1+sigma2) Wp] + (3/2) eta I."""
    c1 = 1 + h.sigma2
    rng = np.random.default_rng(6)
    u, _ = np.linalg.qr(rng.normal(size=(p.size, p.size)))  # a common eigenbasis
    f, wp = u @ np.diag(s) @ u.T, u @ np.diag(p) @ u.T
    return c1 * (h.alpha_p / 2 * f + wp @ wp - tau / c1 * wp) + 1.5 * h.eta * np.eye(p.size)


def test_t10_conditions_match_k_and_ds():
    """T10: Delta > 0 iff s grows; Delta < (alpha_p(1+sigma2)s + eta)/2 iff K's eigenvalue > 0."""
    rng = np.random.default_rng(7)
    p, s = rng.uniform(-0.5, 1.0, 8), rng.uniform(0.0, 0.3, 8)
    p[0], s[0] = 0.375, 0.01  # near the top of Delta: K < 0 there
    tau = 0.9
    k_eig = np.sort(np.linalg.eigvalsh(_k_matrix(BYOL, p, s, tau)))
    ours = modes.k_eigenvalue(BYOL, p, s, tau)
    np.testing.assert_allclose(np.sort(ours), k_eig, atol=1e-12)
    np.testing.assert_array_equal(modes.k_positive(BYOL, p, s, tau), ours > 0)
    np.testing.assert_allclose(
        ours, (BYOL.alpha_p * (1 + BYOL.sigma2) * s + BYOL.eta) / 2 - modes.delta(BYOL, p, tau)
    )
    assert (ours > 0).any() and (ours < 0).any()
    ds = modes.rhs(BYOL, p, s, tau)[1]
    np.testing.assert_array_equal(modes.grows(BYOL, p, tau), ds > 0)
    np.testing.assert_allclose(ds, 2 * s * modes.delta(BYOL, p, tau), atol=1e-15)


def test_t7_blow_up_is_reported():
    """T7: a trajectory that blows up is flagged (ok False, nan after t_fail), not returned."""
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.01)
    t = np.linspace(0, 2, 5)
    # s = 0, tau < 0: dtau/dt ~ -p tau^2 blows up in finite time
    with pytest.warns(RuntimeWarning, match="1 of 2 trajectories blew up"):
        sol = modes.integrate(h, [1.0, 0.5], [0.0, 0.3], t, tau0=[-5.0, 0.2])
    assert sol.ok.tolist() == [False, True]
    ref = solve_ivp(
        lambda _t, y: np.array(modes.rhs(h, *y)), (0, 2), [1.0, 0.0, -5.0], rtol=1e-6, atol=1e-9
    )
    assert ref.status == -1  # solve_ivp fails at the same time
    assert sol.t_fail[0] == pytest.approx(ref.t[-1], rel=1e-6)
    late = t > sol.t_fail[0]
    assert np.all(np.isnan(sol.tau[late, 0])) and np.all(np.isfinite(sol.tau[:, 1]))
    assert np.isnan(sol.t_fail[1]) and not sol.all_ok
    with pytest.raises(ValueError, match="blew up") as err:
        modes.integrate(h, 1.0, 0.0, t, tau0=-5.0, on_failure="raise")
    assert "\n" not in str(err.value)
    assert not modes.integrate(h, 1.0, 0.0, t, tau0=-5.0, on_failure="ignore").all_ok


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t": [0.0, 2.0, 1.0]}, "increasing"),
        ({"t": [1.0, 2.0]}, "starting at 0"),
        ({"t": [[0.0, 1.0]]}, "1-D"),
        ({"p0": np.nan}, "p0 has non-finite"),
        ({"s0": [1.0, 2.0, 3.0], "p0": [1.0, 2.0]}, "broadcast"),
        ({"rtol": 0.0}, "rtol"),
        ({"atol": -1.0}, "atol"),
        ({"on_failure": "maybe"}, "on_failure"),
        ({"h": SIMSIAM, "tau0": 0.5}, "SimSiam"),
    ],
)
def test_t7_integrate_rejects_bad_input(kwargs, match):
    """T7: bad arguments to integrate are one-line ValueErrors saying what to fix."""
    args = {"h": BYOL, "p0": 0.5, "s0": 0.5, "t": [0.0, 1.0]} | kwargs
    with pytest.raises(ValueError, match=match) as err:
        modes.integrate(**args)
    assert "\n" not in str(err.value)
