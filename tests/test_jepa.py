"""Deep linear JEPA against MAE, J1-J4 (linear_ssl.theory.jepa), theory.md section 9."""

import numpy as np
import pytest
from scipy.integrate import quad

from linear_ssl.theory import jepa
from linear_ssl.theory.solvers import solve_ivp_checked

# lambda rises while rho falls (lambda rho still rises): MAE and shallow JEPA take the
# features in the order of lambda, deep JEPA in the order of rho
LAM = np.array([1.0, 1.3, 1.6, 1.9])
RHO = np.array([1.0, 0.85, 0.7, 0.6])


def _matrix_flow(lam, rho, depth, eps, objective, t):
    """J1 on the full matrices: L encoder layers and a head, all d x d, with Sigma_xx and
    Sigma_yx diagonal in a random orthonormal basis U; gradients of the loss written out
    (not the per-feature reduction)."""
    d = lam.size
    U = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))[0]
    Sxx, Syx = (U * lam) @ U.T, (U * (lam * rho)) @ U.T
    L = depth

    def product(mats):
        out = np.eye(d)
        for M in mats:
            out = M @ out
        return out

    def fun(_t, y):
        Ws, V = list(y[: L * d * d].reshape(L, d, d)), y[L * d * d :].reshape(d, d)
        Wbar = product(Ws)
        target = Wbar @ Syx if objective == "jepa" else Syx  # E[target x^T]
        R = V @ Wbar @ Sxx - target  # E[(V Wbar x - target) x^T]
        dV = -R @ Wbar.T
        G = V.T @ R  # the gradient at Wbar (online branch only)
        dWs = [-product(Ws[l + 1 :]).T @ G @ product(Ws[:l]).T for l in range(L)]
        return np.concatenate([np.ravel(dWs), dV.ravel()])

    a0 = eps ** (1 / L)
    y0 = np.concatenate([np.tile((a0 * np.eye(d)).ravel(), L), (a0 * np.eye(d)).ravel()])
    res = solve_ivp_checked(fun, y0, t, rtol=1e-9, atol=1e-12)
    assert res.ok
    Ws = res.y[:, : L * d * d].reshape(len(t), L, d, d)
    Wbar = np.array([product(list(w)) for w in Ws])
    return np.einsum("ji,tjk,ki->ti", U, Wbar, U)  # diagonal of U^T Wbar U


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2])
def test_j2_per_feature_flow_is_the_matrix_flow(objective, depth):
    """J2: from a balanced diagonal start the matrix gradient flow of J1 stays diagonal in the
    data's eigenbasis, and each diagonal entry is J2's scalar w = a^L."""
    lam, rho = LAM[:3], RHO[:3]
    t = np.linspace(0, 60, 13)
    w_matrix = _matrix_flow(lam, rho, depth, 0.05, objective, t)
    sol = jepa.integrate(lam, rho, t, depth, eps=0.05, objective=objective)
    assert sol.all_ok
    np.testing.assert_allclose(sol.w, w_matrix, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_j3_balance_is_conserved_and_the_fixed_point_is_reached(objective):
    """J3: a^2 - v^2 is constant from an unbalanced start; J2's fixed point is reached."""
    t = np.linspace(0, 400, 9)
    v0 = np.array([0.1, 0.5, 0.9, 0.3])
    sol = jepa.integrate(LAM, RHO, t, 2, eps=0.04, objective=objective, v0=v0)
    assert sol.all_ok
    c = jepa.balance(sol.a, sol.v)
    np.testing.assert_allclose(c, np.broadcast_to(c[0], c.shape), atol=1e-7)
    balanced = jepa.integrate(LAM, RHO, t, 2, eps=0.04, objective=objective)
    w_star, v_star = jepa.fixed_point(LAM, RHO, 2, objective)
    np.testing.assert_allclose(balanced.w[-1], w_star, rtol=1e-6)
    np.testing.assert_allclose(balanced.v[-1], v_star, rtol=1e-6)
    if objective == "mae":  # the end-to-end map is the regression coefficient
        np.testing.assert_allclose(balanced.v[-1] * balanced.w[-1], RHO, rtol=1e-6)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 3])
def test_j4_closed_form_critical_times(objective, depth):
    """J4: the closed-form t* equals (a) quadrature of its integral and (b) the time the
    integrated flow crosses half its fixed point."""
    eps = 0.01
    tc = jepa.critical_times(LAM, RHO, depth, eps, objective)
    w_star, _ = jepa.fixed_point(LAM, RHO, depth, objective)
    L, a0 = depth, eps ** (1 / depth)
    for i in range(LAM.size):
        a1 = (0.5 * w_star[i]) ** (1 / L)
        if objective == "jepa":
            f = lambda a, r=RHO[i]: 1 / (a ** (2 * L) * (r - a))  # noqa: E731
        else:
            f = lambda a, r=RHO[i]: 1 / (a**L * (r - a ** (L + 1)))  # noqa: E731
        ref = quad(f, a0, a1, epsabs=0, epsrel=1e-12, limit=200)[0] / LAM[i]
        np.testing.assert_allclose(tc[i], ref, rtol=1e-9)
    t = np.concatenate([[0.0], np.linspace(0.2, 1.0, 4001) * 1.5 * tc.max()])
    sol = jepa.integrate(LAM, RHO, t, depth, eps, objective)
    np.testing.assert_allclose(jepa.crossing_times(sol, 0.5 * w_star), tc, rtol=1e-4)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_j4_asymptotic_form_as_init_goes_to_zero(objective, depth):
    """J4: t* over [J]'s divergent terms tends to 1 as eps -> 0, and monotonically so."""
    eps = np.geomspace(1e-2, 1e-8, 4)
    ratio = jepa.critical_times(1.3, 0.8, depth, eps, objective) / (
        jepa.critical_times_asymptotic(1.3, 0.8, depth, eps, objective)
    )
    err = np.abs(ratio - 1)
    # MAE at L = 1 converges like 1 / log(1/eps), the others like a power of eps
    assert np.all(np.diff(err) < 0) and err[-1] < (
        0.05 if (objective, depth) == ("mae", 1) else 0.01
    )


def _rho_elasticity(objective, depth, eps, rho=0.7, h=1e-4):
    """-d log t* / d log rho at fixed lambda rho (the same cross-covariance E[y_i x_i])."""
    r = rho * np.exp([-h, h])
    t = jepa.critical_times(1.0 / r, r, depth, eps, objective)
    return -np.diff(np.log(t))[0] / (2 * h)


def test_j4_jepa_bias_towards_rho_grows_with_depth():
    """J4: at a fixed cross-covariance lambda rho, a higher rho speeds JEPA up more the
    deeper the encoder (none at L = 1), while MAE never prefers it."""
    jepa_bias = [_rho_elasticity("jepa", L, 1e-3) for L in (1, 2, 3, 4, 5)]
    mae_bias = [_rho_elasticity("mae", L, 1e-3) for L in (1, 2, 3, 4, 5)]
    assert np.all(np.diff(jepa_bias) > 0)
    assert abs(jepa_bias[0]) < 0.01 and jepa_bias[-1] > 0.5
    assert np.all(np.array(mae_bias) <= 0)


def test_j4_learning_order_from_the_integrated_flow():
    """J4, read off the integrated flows: MAE (any depth) and JEPA at L = 1 learn the
    features in the order of lambda, JEPA at L = 5 in the order of rho."""
    eps = 0.01
    order = {}
    for objective, depth, horizon in (
        ("mae", 1, 6),
        ("mae", 5, 12),
        ("jepa", 1, 120),
        ("jepa", 5, 1500),
    ):
        t = np.linspace(0, horizon, 3001)
        sol = jepa.integrate(LAM, RHO, t, depth, eps, objective)
        w_star, _ = jepa.fixed_point(LAM, RHO, depth, objective)
        order[objective, depth] = np.argsort(jepa.crossing_times(sol, 0.5 * w_star)).tolist()
    by_lambda, by_rho = np.argsort(-LAM).tolist(), np.argsort(-RHO).tolist()
    assert order["mae", 1] == order["mae", 5] == order["jepa", 1] == by_lambda
    assert order["jepa", 5] == by_rho


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: jepa.integrate(1.0, 0.5, [0, 1], depth=0), "depth=0"),
        (lambda: jepa.integrate(1.0, 0.5, [0, 1], 2, objective="byol"), "objective="),
        (lambda: jepa.integrate(-1.0, 0.5, [0, 1], 2), "lam must be"),
        (lambda: jepa.integrate(1.0, 0.5, [0, 1], 2, eps=0.0), "eps must be"),
        (lambda: jepa.critical_times(1.0, 0.5, 2, fraction=1.0), "fraction="),
    ],
)
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
