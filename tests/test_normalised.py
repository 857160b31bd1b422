"""The normalised (cosine) loss's flows N1, N2 (theory.md 2b) against exact properties, each
other and SGD on the cosine-loss linear model (N3); and the eta_p correction of T1, T2, T8."""

import dataclasses

import numpy as np
import pytest
from scipy.stats import ortho_group

from linear_ssl.theory import Hyper, matrix, modes, normalised, sgd


def _problem(n1=6, n2=4, seed=0):
    """Random weights and a non-isotropic X, X' (n1 x n1)."""
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(n1, n1)), rng.normal(size=(n1, n1))
    X = A @ A.T / n1 + 0.3 * np.eye(n1)
    Xp = B @ B.T / (4 * n1)
    W0 = rng.normal(size=(n2, n1)) / np.sqrt(n1)
    Wp0 = np.eye(n2) + 0.5 * rng.normal(size=(n2, n2)) / np.sqrt(n2)
    Wa0 = W0 + 0.3 * rng.normal(size=(n2, n1)) / np.sqrt(n1)
    return W0, Wp0, Wa0, X, Xp


def _unit(M):
    return M / np.linalg.norm(M, axis=(-2, -1), keepdims=True)


# --------------------------------------------------------------------------- N1


@pytest.mark.parametrize("variant", ["byol", "simsiam", "no-stopgrad"])
def test_N1_norms_are_constant_without_weight_decay(variant):
    """N1: tr(Wp^T G~ W^T) = 0, so with eta = eta_p = 0 ||W||_F and ||Wp||_F stay constant
    (to integrator tolerance) while the weights themselves move; also without stop-gradient."""
    W0, Wp0, Wa0, X, Xp = _problem()
    h = Hyper(alpha_p=1.5, beta=0.5 if variant == "byol" else None, eta=0.0)
    Wa0 = Wa0 if variant == "byol" else W0
    t = np.linspace(0.0, 5.0, 11)
    sol = normalised.integrate(
        h, W0, Wp0, Wa0, t, X, Xp, c_loss=2.0, stop_grad=variant != "no-stopgrad",
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip
    assert sol.ok and sol.message == ""
    for M, M0 in ((sol.W, W0), (sol.Wp, Wp0)):
        np.testing.assert_allclose(np.linalg.norm(M, axis=(1, 2)), np.linalg.norm(M0), rtol=1e-6)
        assert np.linalg.norm(_unit(M[-1]) - _unit(M0)) > 0.05  # it did move


def test_N1_is_homogeneous_so_fixed_points_form_rays():
    """N1: at eta = eta_p = 0, rescaling (W, Wa) by c and Wp by d divides dW/dt by c and
    dWp/dt by d (the cosine loss is scale-invariant), so fixed points form rays. A fixed
    point of N1 (derived from N2: g_j = 0 when p_j = lambda / (1 + sigma_j^2), any s_j,
    lambda) stays one rescaled; moving one p_j off that curve is not one."""
    W0, Wp0, Wa0, X, Xp = _problem()
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.0)
    dW, dWp, _ = normalised.vector_field(h, W0, Wp0, Wa0, X, Xp)
    for c, d in ((0.3, 2.0), (5.0, 0.7)):
        dWc, dWpd, _ = normalised.vector_field(h, c * W0, d * Wp0, c * Wa0, X, Xp)
        np.testing.assert_allclose(dWc, dW / c, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(dWpd, dWp / d, rtol=1e-10, atol=1e-14)
    U, (p0, s0, _, sigma2), (W, _, _, X, Xp) = _aligned(4, 1, None)
    simsiam = Hyper(alpha_p=1.0, eta=0.0)
    for p in (0.7 / (1 + sigma2), 0.7 / (1 + sigma2) * [1.0, 1.0, 1.3, 1.0]):
        Wp = (U * p) @ U.T
        for c, d in ((1.0, 1.0), (0.2, 3.0), (4.0, 0.5)):
            dW, dWp, _ = normalised.vector_field(simsiam, c * W, d * Wp, None, X, Xp)
            residual = np.linalg.norm(c * dW) + np.linalg.norm(d * dWp)
            assert residual < 1e-12 if p[2] == 0.7 / (1 + sigma2[2]) else residual > 1e-2


@pytest.mark.parametrize("eta_p", [0.05, 0.2], ids=["eta_p=eta", "eta_p=4eta"])
def test_T2_along_N1_exact_only_when_eta_p_equals_eta(eta_p):
    """T2 along N1 (the cosine loss reaches W, Wp only through q): with eta_p = eta the
    balance is exp(-2 eta t) C; otherwise its rate is matrix.balance_rate,
    -2 eta W W^T + 2 (eta_p/alpha_p) Wp^T Wp, and exp(-2 eta t) C misses it."""
    W0, Wp0, Wa0, X, Xp = _problem()
    h = Hyper(alpha_p=1.5, beta=0.5, eta=0.05, eta_p=eta_p)
    t = np.linspace(0.0, 4.0, 401)
    sol = normalised.integrate(h, W0, Wp0, Wa0, t, X, Xp, rtol=1e-10, atol=1e-12)
    B = matrix.balance(sol.W, sol.Wp, h.alpha_p)
    predicted = matrix.balance_prediction(B[0], h.eta, t)
    rate = matrix.balance_rate(h, sol.W, sol.Wp)
    np.testing.assert_allclose(np.gradient(B, t, axis=0)[1:-1], rate[1:-1], atol=1e-4)
    if eta_p == h.eta:
        np.testing.assert_allclose(B, predicted, atol=1e-8)
    else:
        assert np.abs(B - predicted).max() > 1e-2


def _aligned(n, seed, beta):
    """N1's start aligned with N2's modes (A1, A3): X = I, X' = V diag(sigma2) V^T,
    W = U diag(sqrt s) V^T, Wp = U diag(p) U^T, Wa = U diag(tau sqrt s) V^T."""
    rng = np.random.default_rng(seed)
    U, V = ortho_group.rvs(n, random_state=1 + seed), ortho_group.rvs(n, random_state=2 + seed)
    p0, s0 = rng.uniform(0.2, 1.2, n), rng.uniform(0.1, 1.0, n)
    tau0 = rng.uniform(0.3, 1.0, n) if beta else np.ones(n)
    sigma2 = rng.uniform(0.0, 0.5, n)
    W0 = (U * np.sqrt(s0)) @ V.T
    Wa0 = (U * (tau0 * np.sqrt(s0))) @ V.T
    return U, (p0, s0, tau0, sigma2), (W0, (U * p0) @ U.T, Wa0, np.eye(n), (V * sigma2) @ V.T)


@pytest.mark.parametrize("beta", [0.4, None], ids=["byol", "simsiam"])
def test_N2_matches_N1_started_aligned_mode_by_mode(beta):
    """N2 vs N1 from an aligned start (A1, A3, per-mode sigma_j^2, eta_p != eta): the
    eigenvalues of F and Wp and Wa's tau in U's basis follow N2 mode by mode."""
    n = 5
    U, (p0, s0, tau0, sigma2), (W0, Wp0, Wa0, X, Xp) = _aligned(n, 0, beta)
    h = Hyper(alpha_p=1.3, beta=beta, eta=0.03, eta_p=0.08)
    t = np.linspace(0.0, 6.0, 13)
    ref = normalised.integrate(h, W0, Wp0, Wa0, t, X, Xp, c_loss=2.0, rtol=1e-10, atol=1e-12)
    sol = normalised.integrate_modes(
        h, p0, s0, t, tau0=tau0 if beta else 1.0, sigma2=sigma2, c_loss=2.0, rtol=1e-10, atol=1e-12
    )
    rot = lambda M: np.swapaxes(U, 0, 1) @ M @ U  # noqa: E731
    s = np.diagonal(rot(ref.F), axis1=1, axis2=2)
    np.testing.assert_allclose(sol.s, s, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sol.p, np.diagonal(rot(ref.Wp), axis1=1, axis2=2), atol=1e-7)
    tau = np.diagonal(rot(ref.Wa @ np.swapaxes(ref.W, 1, 2)), axis1=1, axis2=2) / s
    np.testing.assert_allclose(sol.tau, tau, atol=1e-7)
    assert np.abs(sol.s[-1] - s0).max() > 0.05  # the modes moved
    for name in ("N_q", "N_a", "kappa", "a", "b"):
        np.testing.assert_allclose(
            getattr(sol.scalars, name), getattr(ref.scalars, name), rtol=1e-6
        )


def test_N2_batch_axes_are_independent_systems():
    """N2: leading axes are independent systems (one column each of the batched RK45) and
    per-system sigma2 is honoured: a batch equals each system integrated alone."""
    rng = np.random.default_rng(3)
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.02)
    p0, s0 = rng.uniform(0.1, 1.0, (2, 3, 4)), rng.uniform(0.1, 1.0, (2, 3, 4))
    sigma2 = rng.uniform(0.0, 0.4, (2, 3, 4))
    t = np.linspace(0.0, 3.0, 7)
    batch = normalised.integrate_modes(h, p0, s0, t, tau0=0.6, sigma2=sigma2)
    assert batch.p.shape == (7, 2, 3, 4) and batch.ok.shape == (2, 3) and np.all(batch.ok)
    for i, j in ((0, 0), (1, 2)):
        alone = normalised.integrate_modes(h, p0[i, j], s0[i, j], t, tau0=0.6, sigma2=sigma2[i, j])
        np.testing.assert_allclose(batch.s[:, i, j], alone.s, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(batch.p[:, i, j], alone.p, rtol=1e-5, atol=1e-8)


def test_N2_shape_moves_at_the_centred_rates_free_of_weight_decay():
    """N2: d log s^_j/dt = r_j - sum_k s^_k r_k with r_j = 2 c_L p_j g_j (weight decay
    drops out); checked by differentiating the integrated shape."""
    rng = np.random.default_rng(4)
    h = Hyper(alpha_p=1.0, beta=0.3, eta=0.2)
    t = np.linspace(0.0, 2.0, 2001)
    sol = normalised.integrate_modes(
        h, rng.uniform(0.1, 1, 6), rng.uniform(0.1, 1, 6), t, tau0=0.5, c_loss=2.0,
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip
    shape, r = sol.shape, sol.rates
    np.testing.assert_allclose(shape.sum(-1), 1.0)
    centred = r - np.sum(shape * r, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        np.gradient(np.log(shape), t, axis=0)[1:-1], centred[1:-1], atol=1e-5
    )
    ds = np.gradient(np.log(sol.s), t, axis=0)[1:-1]
    np.testing.assert_allclose(ds, r[1:-1] - 2 * h.eta, atol=1e-5)  # s itself feels eta


def test_N2_closed_form_predictor_sets_p_from_s():
    """N2 with an R-rule (R2 with alpha = 1/2 here): p is the rule's spectral form of
    C_oo = diag((1+sigma_j^2) s_j) at every output, and s moves at 2 s (c_L p g - eta)."""
    rng = np.random.default_rng(5)
    h = Hyper(alpha_p=1.0, eta=0.05, sigma2=0.2)
    t = np.linspace(0.0, 2.0, 401)
    sol = normalised.integrate_modes(
        h, None, rng.uniform(0.2, 1.0, (2, 5)), t, predictor="directset", alpha=0.5, eps=0.1,
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip
    s = sol.s
    p = np.sqrt(s / s.max(axis=-1, keepdims=True)) + 0.1  # R2, alpha = 1/2, spectral norm
    np.testing.assert_allclose(sol.p, p, rtol=1e-12)
    _, ds, _ = normalised.mode_field(h, p, s, 1.0, None, 1.0)
    np.testing.assert_allclose(np.gradient(s, t, axis=0)[1:-1], ds[1:-1], atol=1e-5)


def test_N2_bad_input_is_one_line():
    h = Hyper(alpha_p=1.0, eta=0.0)
    cases = [
        (dict(p0=[1.0], s0=[1.0], t=[0.0, 1.0], tau0=0.5), "SimSiam"),
        (dict(p0=[1.0, 2.0], s0=[1.0, 2.0, 3.0], t=[0.0, 1.0]), "must broadcast"),
        (dict(p0=[1.0], s0=[-1.0], t=[0.0, 1.0]), ">= 0"),
        (dict(p0=[1.0], s0=[1.0], t=[0.0, 1.0], c_loss=0.0), "c_loss"),
        (dict(p0=None, s0=[1.0], t=[0.0, 1.0], predictor="nope"), "nope"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match) as err:
            normalised.integrate_modes(h, **kwargs)
        assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- N3 against SGD


@pytest.mark.slow
def test_N3_cosine_sgd_converges_to_N1_up_to_a_floor_falling_with_dimension():
    """N3: SGD on the cosine loss (16 seeds averaged, two problems) approaches N1 as lr falls,
    to a floor (A4's error) that falls as the effective dimension grows (d = 4, 12, 36;
    measured while writing: floors about 0.45, 0.15, 0.085 of N1's own displacement); at
    d = 36 it is far below the gap to the squared-error flow T1 at its best time scale."""
    lrs, dims = (0.2, 0.1, 0.05), (4, 12, 36)
    runs = [
        [[normalised.n3_gap(d, lr, k, scales=[1.0]) for k in range(2)] for lr in lrs] for d in dims
    ]
    gaps = np.array([[np.mean([g.n1 for g in by_seed]) for by_seed in by_lr] for by_lr in runs])
    assert np.all(np.diff(gaps[-1]) < 0), gaps  # at d = 36 the lr error shows and falls
    assert np.all(gaps[:, -1] <= gaps[:, 0] + 0.02), gaps
    floors = gaps[:, -1]
    assert np.all(floors[:-1] > 1.3 * floors[1:]), floors
    assert floors[-1] < 0.12, floors
    d_eff = [runs[i][0][0].d_eff for i in range(3)]
    assert np.all(np.diff(d_eff) > 0), d_eff
    squared = normalised.n3_gap(36, 0.05, 0)
    assert squared.n1 < 0.3 * squared.squared, squared


# --------------------------------------------------------------------------- eta_p in T1, T7, T8


def test_T1_from_training_coupled_decay_gives_eta_p_alpha_p_wd():
    """T1: torch's coupled decay on a predictor at alpha_p times the lr decays it at
    eta_p = alpha_p wd in flow time; predictor_decay="single" is [T]'s single decay."""
    kwargs = dict(lr=0.01, predictor_lr=0.04, ema=None, weight_decay=1e-3, momentum=0.9)
    h = Hyper.from_training(**kwargs)
    assert h.alpha_p == pytest.approx(4.0)
    assert h.eta == pytest.approx(1e-3) and h.eta_p == pytest.approx(4e-3)
    single = Hyper.from_training(**kwargs, predictor_decay="single")
    assert single.eta_p == pytest.approx(single.eta)
    assert Hyper(alpha_p=2.0, eta=0.3).eta_p == 0.3  # None: eta
    for bad, error in ((-0.1, ValueError), (float("nan"), ValueError), ("0.1", TypeError)):
        with pytest.raises(error, match="Hyper.eta_p=") as err:
            Hyper(eta_p=bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="predictor_decay") as err:
        Hyper.from_training(**kwargs, predictor_decay="both")
    assert "\n" not in str(err.value)


def test_T8_exact_only_when_eta_p_equals_eta():
    """T8: c = exp(2 eta t)(s - p^2/alpha_p) is constant along T7 when eta_p = eta and
    drifts otherwise, at the rate -2 eta s + 2 (eta_p/alpha_p) p^2 (times exp(2 eta t))."""
    t = np.linspace(0.0, 5.0, 501)
    p0, s0 = np.array([0.3, 0.8, 1.2]), np.array([0.5, 0.2, 1.0])
    for eta_p in (0.1, 0.4):
        h = Hyper(alpha_p=4.0, eta=0.1, eta_p=eta_p)
        sol = modes.integrate(h, p0, s0, t, rtol=1e-10, atol=1e-12)
        c = modes.invariant(h, sol.p, sol.s, t[:, None])
        gap = sol.s - sol.p**2 / h.alpha_p
        rate = -2 * h.eta * sol.s + 2 * h.eta_p / h.alpha_p * sol.p**2
        np.testing.assert_allclose(np.gradient(gap, t, axis=0)[1:-1], rate[1:-1], atol=1e-4)
        if eta_p == h.eta:
            np.testing.assert_allclose(c, np.broadcast_to(c[0], c.shape), atol=1e-8)
        else:
            assert np.abs(c - c[0]).max() > 0.05


def test_T7_coupled_decay_fixed_points_sit_on_s_equals_p_squared():
    """T7 and T1's SGD with alpha_p = 4 and coupled decay (eta_p = alpha_p eta): the
    non-collapsed fixed points sit on s = p^2 (s = (eta_p/eta) p^2/alpha_p), not on T8's
    parabola p^2/alpha_p; the flow's p is T9's p+, and 4-seed SGD agrees."""
    eta = 0.05
    train = dict(lr=0.01, predictor_lr=0.04, ema=None, weight_decay=eta)
    h = Hyper.from_training(**train)
    assert h.eta_p == pytest.approx(4 * eta)
    p_plus = modes.fixed_points(h)[1]
    flow = modes.integrate(h, [0.6, 1.0], [0.5, 0.8], [0.0, 150.0])
    np.testing.assert_allclose(flow.p[-1], p_plus, rtol=1e-4)
    np.testing.assert_allclose(flow.s[-1], flow.p[-1] ** 2, rtol=1e-4)
    n = 2
    rng = np.random.default_rng(0)
    W0 = 0.8 * ortho_group.rvs(n, random_state=0)
    Wp0 = 0.8 * np.eye(n) + 0.05 * rng.normal(size=(n, n))
    run = sgd.simulate(None, W0, Wp0, None, steps=8000, batch=128, seeds=4, record_every=8000,
                       **train)  # fmt: skip
    assert run.h == dataclasses.replace(h, dt=run.h.dt)
    s = np.linalg.eigvalsh(run.W[-1] @ np.swapaxes(run.W[-1], 1, 2))
    p = np.linalg.eigvalsh((run.Wp[-1] + np.swapaxes(run.Wp[-1], 1, 2)) / 2)
    np.testing.assert_allclose(p, p_plus, rtol=0.05)
    np.testing.assert_allclose(s, p**2, rtol=0.05)
    assert np.all(np.abs(s - p**2 / 4) > 0.5)


# --------------------------------------------------------------------------- SymPy


@pytest.mark.slow
def test_N1_trace_identity_and_N2_from_N1_symbolically():
    """N1: tr(Wp^T G~ W^T) = 0 for generic 2 x 2 matrices and symmetric X, X'; N2 follows
    from N1 in the eigenbasis (diagonal W, Wp, Wa = tau W, per-mode sigma_j^2), 2 modes."""
    from linear_ssl.theory import symbolic

    assert symbolic.n1_trace_identity(2) == 0
    assert symbolic.n2_residual(2) == ([0, 0], [0, 0], [0, 0])


def test_N2_lambdified_sympy_matches_mode_field():
    """N2: the lambdified SymPy right-hand side equals normalised.mode_field (3 modes)."""
    from linear_ssl.theory import symbolic

    f = symbolic.n2_rhs_function(3)
    rng = np.random.default_rng(6)
    h = Hyper(alpha_p=1.7, beta=0.3, eta=0.02, eta_p=0.09)
    p, s, tau, sigma2 = rng.uniform(0.1, 1.5, (4, 10, 3))
    expected = normalised.mode_field(h, p, s, tau, sigma2, c_loss=2.0)
    got = f(p.T, s.T, tau.T, sigma2.T, h.alpha_p, h.beta, h.eta, h.eta_p, 2.0)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.array(g).T, e, rtol=1e-12)
