"""SymPy derivations (linear_ssl.theory.symbolic) and their agreement with the numeric modes."""

import numpy as np
import pytest

from linear_ssl.theory import modes, symbolic
from linear_ssl.theory.params import Hyper


def _random_hypers(n, seed):
    """Random Hyper fields with eta below the tau = 1 threshold, and random tau near 1."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sigma2 = rng.uniform(0, 1)
        tau = rng.uniform(0.6, 1.5)
        eta = rng.uniform(0.001, 0.95) * tau**2 / (4 * (1 + sigma2))
        yield Hyper(rng.uniform(0.3, 3), rng.uniform(0.1, 1), eta, sigma2), tau


def test_t7_follows_from_t5_in_the_eigenbasis():
    """T5 -> T7: diagonal Wp, F (and Wa = tau W per mode) reduce T5 to T7 exactly."""
    assert symbolic.t7_residual() == (0, 0, 0)


def test_t8_and_t2_hold_by_differentiation():
    """T8 along T7 and T2 along T1 (generic 2x2 W, Wp, Wa, symmetric X, X'): residuals 0."""
    assert symbolic.t8_residual() == (0, 0)
    assert symbolic.t2_residual(2).is_zero_matrix


def test_t10_k_condition_and_growth_symbolically():
    """T10: K's eigenvalue = (alpha_p(1+sigma2)s + eta)/2 - Delta, and ds/dt / s = 2 Delta."""
    k = symbolic.k_eigenvalue()
    assert k.k_minus_bound == 0
    assert (k.ds_over_s - 2 * k.delta).simplify() == 0


def test_t7_symbolic_and_numeric_rhs_agree():
    """T7: the lambdified SymPy right-hand side equals modes.rhs at random points."""
    f = symbolic.rhs_function()
    rng = np.random.default_rng(0)
    for h, _ in _random_hypers(5, 1):
        p, s, tau = rng.normal(size=(3, 20))
        np.testing.assert_allclose(
            np.array(f(p, s, tau, h.alpha_p, h.beta, h.eta, h.sigma2)),
            np.array(modes.rhs(h, p, s, tau)),
            rtol=1e-12,
            atol=1e-14,
        )


def test_t9_symbolic_and_numeric_fixed_points_threshold_slopes_agree():
    """T9: fixed points, threshold, slope and Jacobian agree with modes at random points."""
    fixed, threshold = symbolic.fixed_points_function(), symbolic.threshold_function()
    slope, jac = symbolic.slope_function(), symbolic.jacobian_function()
    rng = np.random.default_rng(2)
    for h, tau in _random_hypers(8, 3):
        np.testing.assert_allclose(fixed(tau, h.eta, h.sigma2), modes.fixed_points(h, tau))
        assert threshold(tau, h.sigma2) == pytest.approx(modes.collapse_threshold(h, tau))
        p, s = rng.normal(size=(2, 10))
        np.testing.assert_allclose(
            slope(p, tau, h.eta, h.sigma2), modes.parabola_slope(h, p, tau), atol=1e-13
        )
        for pj, sj in zip(p, s, strict=True):
            np.testing.assert_allclose(
                np.array(jac(pj, sj, tau, h.alpha_p, h.eta, h.sigma2), dtype=float),
                modes.jacobian(h, pj, sj, tau),
                atol=1e-13,
            )
    # past the threshold there are no p-+
    assert np.all(np.isnan(modes.fixed_points(Hyper(eta=0.3))))
    with np.errstate(invalid="ignore"):
        assert np.all(np.isnan(fixed(1.0, 0.3, 0.0)))


def test_t9_stability_symbolically():
    """T9: Jacobian eigenvalues at 0, p-, p+ are -2 eta and the 1-D slope; signs as stated."""
    t9 = symbolic.t9()
    assert {str(e) for e in t9.eig_origin} == {"-eta", "-2*eta"}
    eigs = symbolic.stability_function()
    for h, tau in _random_hypers(8, 4):
        origin, minus, plus = (
            np.array(e, dtype=float) for e in eigs(tau, h.alpha_p, h.eta, h.sigma2)
        )
        assert np.all(origin < 0) and np.all(plus < 0)
        assert np.sum(minus > 0) == 1 and np.sum(minus < 0) == 1  # a saddle
        for value, pf in (
            (minus, modes.fixed_points(h, tau)[0]),
            (plus, modes.fixed_points(h, tau)[1]),
        ):
            numeric = np.linalg.eigvals(modes.jacobian(h, pf, modes.parabola(h, pf), tau))
            np.testing.assert_allclose(np.sort(value), np.sort(numeric.real), atol=1e-10)
            assert -2 * h.eta == pytest.approx(min(value, key=lambda e: abs(e + 2 * h.eta)))
            assert modes.parabola_slope(h, pf, tau) == pytest.approx(
                max(value, key=lambda e: abs(e + 2 * h.eta)), abs=1e-12
            )


def test_t6_k_eigenvalue_symbolic_matches_numeric():
    """T6/T10: the symbolic K eigenvalue equals modes.k_eigenvalue."""
    f = symbolic.k_eigenvalue_function()
    rng = np.random.default_rng(5)
    for h, tau in _random_hypers(4, 6):
        p, s = rng.normal(size=(2, 10))
        np.testing.assert_allclose(
            f(p, s, tau, h.alpha_p, h.eta, h.sigma2), modes.k_eigenvalue(h, p, s, tau), atol=1e-13
        )
