"""Self-predictive RL flows S1-S10 (linear_ssl.theory.rl), theory.md section 9."""

from itertools import combinations

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from linear_ssl.diagnostics import subspace_distance
from linear_ssl.theory import rl

# an indefinite spectrum with gaps, and a PSD one
INDEFINITE = np.array([1.0, 0.8, 0.5, 0.3, 0.1, -0.2, -0.6, -0.9])
PSD = np.array([1.0, 0.7, 0.45, 0.3, 0.2, 0.1, 0.05, 0.0])


def _orthonormal(batch, n, k, seed=0):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(batch, n, k)))[0]


def _eigenbasis(T):
    w, V = np.linalg.eigh(T)
    order = np.argsort(-w)
    return w[order], V[:, order]


def _gram(Phi):
    return np.swapaxes(Phi, -1, -2) @ Phi


def test_s1_optimal_predictor_minimises_the_loss():
    """S1: P* solves the normal equations; any perturbation raises ||Phi P - T Phi||."""
    rng = np.random.default_rng(0)
    T, Phi = rng.normal(size=(7, 7)), rng.normal(size=(7, 3))
    P = rl.optimal_predictor(T, Phi)
    np.testing.assert_allclose(Phi.T @ (Phi @ P - T @ Phi), 0, atol=1e-12)
    np.testing.assert_allclose(P, np.linalg.lstsq(Phi, T @ Phi, rcond=None)[0], atol=1e-12)
    loss = np.linalg.norm(Phi @ P - T @ Phi)
    for _ in range(5):
        assert np.linalg.norm(Phi @ (P + 1e-3 * rng.normal(size=P.shape)) - T @ Phi) > loss


def test_s2_batched_flow_agrees_with_solve_ivp():
    """S2: the batched integrator agrees with scipy's solve_ivp on each initialisation."""
    T = rl.random_mdp(6, "stochastic", seed=3)
    Phi0 = _orthonormal(3, 6, 2, seed=1)
    t = np.linspace(0, 20, 9)
    sol = rl.integrate(T, Phi0, t)
    assert sol.all_ok and sol.Phi.shape == (9, 3, 6, 2) and sol.Phi_target is None
    for b in range(3):
        ref = solve_ivp(
            lambda _t, y: rl.rhs(T, y.reshape(6, 2)).ravel(),
            (0, t[-1]),
            Phi0[b].ravel(),
            t_eval=t,
            rtol=1e-10,
            atol=1e-12,
        )
        np.testing.assert_allclose(sol.Phi[:, b].reshape(9, -1), ref.y.T, atol=1e-6)
    # a single (n, k) start gives the unbatched shapes
    single = rl.integrate(T, Phi0[0], t)
    assert single.Phi.shape == (9, 6, 2) and single.ok.shape == ()
    np.testing.assert_allclose(single.Phi, sol.Phi[:, 0], atol=1e-12)


@pytest.mark.parametrize("target", ["stopgrad", "ema"])
def test_s3_gram_matrix_is_conserved(target):
    """S3: Phi^T Phi is constant (stop-gradient and EMA targets), for any T."""
    T = rl.random_mdp(8, "stochastic", seed=0)
    Phi0 = np.random.default_rng(2).normal(size=(4, 8, 3))  # not orthonormal
    beta = 0.5 if target == "ema" else None
    sol = rl.integrate(T, Phi0, np.linspace(0, 30, 7), target=target, beta=beta)
    assert sol.all_ok
    G = _gram(sol.Phi)
    np.testing.assert_allclose(G, np.broadcast_to(G[0], G.shape), atol=1e-6)
    # and it is exact in the vector field: Phi^T dPhi/dt = 0
    np.testing.assert_allclose(np.swapaxes(Phi0, -1, -2) @ rl.rhs(T, Phi0), 0, atol=1e-12)


def test_s4_trace_objective_rises_at_the_closed_form_rate():
    """S4: ||Phi^T T Phi||_F^2 never falls for symmetric T; its rate is 4 tr(G^-1 M B M)."""
    T = rl.symmetric_matrix(INDEFINITE, seed=1)
    Phi0 = np.random.default_rng(4).normal(size=(6, 8, 2))
    t = np.linspace(0, 40, 201)
    sol = rl.integrate(T, Phi0, t)
    f = rl.trace_objective(T, sol.Phi)
    assert np.all(np.diff(f, axis=0) > -1e-9)
    rate = rl.trace_objective_rate(T, sol.Phi)
    assert np.all(rate >= -1e-12)
    # the closed form against the chain rule through the vector field (finite difference)
    h = 1e-6
    Phi = sol.Phi[50]
    dPhi = rl.rhs(T, Phi)
    fd = (rl.trace_objective(T, Phi + h * dPhi) - rl.trace_objective(T, Phi - h * dPhi)) / (2 * h)
    np.testing.assert_allclose(rl.trace_objective_rate(T, Phi), fd, rtol=1e-6, atol=1e-10)


def test_s5_perturbation_rate_symbolic():
    """S5: tilting eigenvector 1 (lambda) towards eigenvector 2 (mu) grows at lambda (mu - lambda).

    SymPy, n = 3, k = 1, T = diag(lambda, mu, nu), Phi = e1 + x e2 + y e3 (to first order).
    """
    lam, mu, nu, x, y = sp.symbols("lambda mu nu x y", real=True)
    T = sp.diag(lam, mu, nu)
    Phi = sp.Matrix([1, x, y])
    P = (Phi.T * T * Phi)[0] / (Phi.T * Phi)[0]
    dPhi = -(Phi * P - T * Phi) * P
    linear = {x: 0, y: 0}
    assert sp.simplify(sp.diff(dPhi[1], x).subs(linear) - lam * (mu - lam)) == 0
    assert sp.simplify(sp.diff(dPhi[2], y).subs(linear) - lam * (nu - lam)) == 0
    assert sp.simplify(sp.diff(dPhi[1], y).subs(linear)) == 0


def test_s5_rates_are_the_jacobian_at_an_eigen_span():
    """S5: the finite-difference Jacobian of S2 at an orthonormal eigen-span, on its normal
    directions, has exactly the rates lambda_i (mu_j - lambda_i)."""
    T = rl.symmetric_matrix(INDEFINITE, seed=1)
    w, V = _eigenbasis(T)
    span = (1, 6)
    Phi = V[:, list(span)]
    outside = [j for j in range(8) if j not in span]
    h = 1e-6
    rates = np.empty((2, len(outside)))
    for i in range(2):
        for c, j in enumerate(outside):
            D = np.zeros_like(Phi)
            D[:, i] = V[:, j]
            dd = (rl.rhs(T, Phi + h * D) - rl.rhs(T, Phi - h * D)) / (2 * h)
            rates[i, c] = V[:, j] @ dd[:, i]
    np.testing.assert_allclose(rates, rl.eigen_span_rates(w, span), atol=1e-7)


def test_s5_stable_spans_match_brute_force():
    """S5: the a largest (> 0) with the b most negative eigenvalues, a + b = k, are exactly
    the k-subsets whose rates are all negative (checked by enumeration)."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        w = np.sort(rng.normal(size=7))[::-1]
        for k in (1, 2, 3):
            brute = [
                idx for idx in combinations(range(7), k) if np.all(rl.eigen_span_rates(w, idx) < 0)
            ]
            assert rl.stable_spans(w, k) == brute
    assert rl.stable_spans(PSD[:-1], 3) == [(0, 1, 2)]  # PSD: the top k only
    assert len(rl.stable_spans(INDEFINITE, 2)) == 3  # k + 1 for an indefinite T


def test_s5_flow_converges_to_a_stable_span():
    """S5: from random starts, PSD T -> its top-k eigen-subspace; indefinite T -> one of the
    k + 1 stable spans, and the start decides which (more than one is reached)."""
    t = np.array([0.0, 100.0, 400.0])
    Phi0 = _orthonormal(16, 8, 2, seed=0)
    for spectrum, expect in ((PSD, 1), (INDEFINITE, 2)):
        T = rl.symmetric_matrix(spectrum, seed=2)
        w, V = _eigenbasis(T)
        spans = rl.stable_spans(w, 2)
        sol = rl.integrate(T, Phi0, t)
        assert sol.all_ok
        reached = set()
        for b in range(16):
            d = [subspace_distance(sol.Phi[-1, b], V[:, list(s)]) for s in spans]
            assert min(d) < 1e-3
            reached.add(int(np.argmin(d)))
        assert len(reached) >= expect


def test_s2_ema_target_reaches_the_stopgrad_span():
    """S2 (EMA): a fast EMA tracks stop-gradient (O(1/beta)); a slow one reaches the same
    top-k eigen-subspace of a PSD T."""
    T = rl.symmetric_matrix(PSD, seed=2)
    _, V = _eigenbasis(T)
    Phi0 = _orthonormal(4, 8, 2, seed=3)
    t = np.linspace(0, 5, 6)
    stop = rl.integrate(T, Phi0, t)
    gaps = [
        np.abs(rl.integrate(T, Phi0, t, "ema", beta=beta).Phi - stop.Phi).max()
        for beta in (20.0, 200.0)
    ]
    assert gaps[1] < gaps[0] / 5
    slow = rl.integrate(T, Phi0, np.array([0.0, 600.0]), "ema", beta=0.5)
    for b in range(4):
        assert subspace_distance(slow.Phi[-1, b], V[:, :2]) < 1e-3


def test_s6_without_stop_gradient_the_representation_shrinks():
    """S6: with the gradient through the target, d(Phi^T Phi)/dt = -2 E^T E (<= 0) and
    d||Phi||^2/dt = -2 ||E||^2 for E = Phi P* - T Phi: the scale S3 conserves shrinks."""
    T = rl.random_mdp(8, "stochastic", seed=1)
    Phi0 = _orthonormal(5, 8, 2, seed=4)
    dPhi = rl.rhs(T, Phi0, "none")
    residual = Phi0 @ rl.optimal_predictor(T, Phi0) - T @ Phi0
    dG = np.swapaxes(Phi0, -1, -2) @ dPhi
    # (T Phi)^T (I - Pi) T Phi = E^T E for the residual E = Phi P* - T Phi = -(I - Pi) T Phi
    EtE = np.swapaxes(residual, -1, -2) @ residual
    np.testing.assert_allclose(dG + np.swapaxes(dG, -1, -2), -2 * EtE, atol=1e-12)
    np.testing.assert_allclose(
        2 * np.sum(Phi0 * dPhi, axis=(-2, -1)),
        -2 * np.sum(residual**2, axis=(-2, -1)),
        atol=1e-12,
    )
    t = np.linspace(0, 50, 11)
    sol = rl.integrate(T, Phi0, t, "none")
    G = _gram(sol.Phi)
    assert np.all(np.linalg.eigvalsh(np.diff(G, axis=0)) < 1e-9)  # PSD-order decrease
    norms = np.linalg.norm(sol.Phi, axis=(-2, -1))
    assert np.all(norms[-1] < 0.95 * norms[0])


def test_s7_bidirectional_recovers_singular_subspaces():
    """S7: both Gram matrices are conserved, ||Phi^T T Psi||^2 rises, and Phi, Psi reach
    the top-k left and right singular subspaces of a non-symmetric T."""
    rng = np.random.default_rng(6)
    U, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    W, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    T = (U * np.array([1.0, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02])) @ W.T
    assert not np.allclose(T, T.T)
    Phi0, Psi0 = _orthonormal(6, 8, 2, seed=7), _orthonormal(6, 8, 2, seed=8)
    t = np.array([0.0, 1.0, 5.0, 20.0, 300.0])
    sol = rl.integrate_bidirectional(T, Phi0, Psi0, t)
    assert sol.all_ok
    for X in (sol.Phi, sol.Psi):
        np.testing.assert_allclose(_gram(X), np.broadcast_to(np.eye(2), _gram(X).shape), atol=1e-6)
    f = rl.trace_objective(T, sol.Phi, sol.Psi)
    assert np.all(np.diff(f, axis=0) > -1e-9)
    for b in range(6):
        assert subspace_distance(sol.Phi[-1, b], U[:, :2]) < 1e-3
        assert subspace_distance(sol.Psi[-1, b], W[:, :2]) < 1e-3


def _actions(seed=0, n=6, A=3):
    Ts = np.stack([rl.random_mdp(n, "stochastic", seed=seed + a) for a in range(A)])
    pi = np.random.default_rng(seed).dirichlet(np.ones(A))
    return Ts, pi


def test_s9_variance_identity():
    """S9: sum_a pi_a ||Phi^T T_a Phi||^2 = ||Phi^T T_pi Phi||^2 + sum_a pi_a ||Phi^T (T_a -
    T_pi) Phi||^2, and the same split of the vector fields, AC = Pi + VAR (any Phi)."""
    Ts, pi = _actions()
    Phi = np.random.default_rng(1).normal(size=(5, 6, 2))
    obj = rl.action_objectives(Ts, pi, Phi)
    np.testing.assert_allclose(obj["ac"], obj["pi"] + obj["var"], rtol=1e-13)
    assert np.all(obj["var"] > 0)
    ac, pi_flow, var = (rl.action_rhs(Ts, pi, Phi, o) for o in ("ac", "pi", "var"))
    np.testing.assert_allclose(ac, pi_flow + var, atol=1e-13)
    # BYOL-Pi is S2 on T_pi; with one action all three reduce to S2 (VAR to zero)
    np.testing.assert_allclose(pi_flow, rl.rhs(np.tensordot(pi, Ts, axes=1), Phi), atol=1e-14)
    one = rl.action_rhs(Ts[:1], [1.0], Phi, "ac")
    np.testing.assert_allclose(one, rl.rhs(Ts[0], Phi), atol=1e-14)
    np.testing.assert_allclose(rl.action_rhs(Ts[:1], [1.0], Phi, "var"), 0, atol=1e-14)


def test_s8_action_flows_conserve_the_gram_and_raise_their_objectives():
    """S8: every action-conditional flow conserves Phi^T Phi (S3's argument per action),
    and with orthonormal Phi its own trace objective does not fall over time for
    symmetric T_a."""
    Ts = np.stack([rl.symmetric_matrix(INDEFINITE * s, seed=a) for a, s in enumerate((1, 0.7))])
    pi = np.array([0.4, 0.6])
    Phi0 = _orthonormal(3, 8, 2, seed=9)
    t = np.linspace(0, 30, 16)
    for objective in ("pi", "ac", "var"):
        sol = rl.integrate_actions(Ts, pi, Phi0, t, objective)
        assert sol.all_ok and sol.objective == objective
        np.testing.assert_allclose(
            _gram(sol.Phi), np.broadcast_to(np.eye(2), (16, 3, 2, 2)), atol=1e-6
        )
        f = rl.action_objectives(Ts, pi, sol.Phi)[objective]
        assert np.all(np.diff(f, axis=0) > -1e-9)


def test_s10_generators():
    """S10: the generators give what they promise."""
    for seed in range(3):
        sym = rl.random_mdp(9, "symmetric", seed=seed)
        np.testing.assert_allclose(sym, sym.T)
        np.testing.assert_allclose(sym.sum(axis=1), 1)
        assert sym.min() >= 0 and np.linalg.eigvalsh(sym).min() < 0  # indefinite
        psd = rl.random_mdp(9, "symmetric_psd", seed=seed)
        assert np.linalg.eigvalsh(psd).min() >= -1e-12
        P = rl.random_mdp(9, "stochastic", seed=seed)
        np.testing.assert_allclose(P.sum(axis=1), 1)
        assert not np.allclose(P, P.T)
        R = rl.random_mdp(9, "reversible", seed=seed)
        d = rl.stationary(R)
        np.testing.assert_allclose(d @ R, d, atol=1e-12)
        np.testing.assert_allclose(d[:, None] * R, (d[:, None] * R).T, atol=1e-12)  # balance
    T = rl.symmetric_matrix([2.0, -1.0, 0.5], seed=0)
    np.testing.assert_allclose(np.linalg.eigvalsh(T), [-1.0, 0.5, 2.0], atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: rl.integrate(np.eye(3), np.ones((3, 2)), [0, 1]), "full column rank"),
        (lambda: rl.integrate(np.eye(3), np.eye(4)[:, :2], [0, 1]), r"must be \(3, k\)"),
        (lambda: rl.integrate(np.ones((3, 2)), np.eye(3)[:, :1], [0, 1]), "square"),
        (lambda: rl.integrate(np.eye(3), np.eye(3)[:, :1], [0, 1], "ema"), "beta > 0"),
        (lambda: rl.integrate(np.eye(3), np.eye(3)[:, :1], [0, 1], beta=1.0), "only used"),
        (lambda: rl.integrate(np.eye(3), np.eye(3)[:, :1], [0, 1], "online"), "target="),
        (lambda: rl.integrate(np.eye(3), np.eye(3)[:, :1], [1, 0]), "increasing"),
        (lambda: rl.integrate_actions(np.eye(3)[None], [0.5], np.eye(3)[:, :1], [0, 1]), "pi"),
        (lambda: rl.random_mdp(1), "n=1"),
        (lambda: rl.random_mdp(4, "ergodic"), "kind="),
    ],
)
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
