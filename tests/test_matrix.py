"""The matrix flow (theory.md T1-T6) and T4's scalar system: theorems checked on trajectories."""

import numpy as np
import pytest
from scipy.linalg import expm

from linear_ssl import predictors
from linear_ssl.theory import matrix, modes
from linear_ssl.theory.params import Hyper


def _spd(rng, n, scale=1.0, floor=0.0):
    A = rng.normal(size=(n, n))
    return scale * A @ A.T / n + floor * np.eye(n)


def _sym(rng, n, scale=1.0):
    A = rng.normal(size=(n, n))
    return scale * (A + A.T) / 2


def _orthogonal(rng, n):
    return np.linalg.qr(rng.normal(size=(n, n)))[0]


@pytest.mark.parametrize("beta", [0.7, None], ids=["byol", "simsiam"])
def test_T2_balancing_holds_along_nonisotropic_trajectories(beta):
    """T2: W W^T - Wp^T Wp / alpha_p = exp(-2 eta t) C, any X, X', any Wa (and SimSiam)."""
    rng = np.random.default_rng(1)
    n1, n2 = 5, 3
    X, Xp = _spd(rng, n1), _spd(rng, n1, 0.3)
    h = Hyper(alpha_p=1.5, beta=beta, eta=0.05)
    W0, Wp0 = rng.normal(size=(n2, n1)) / 2, rng.normal(size=(n2, n2)) / 2
    Wa0 = rng.normal(size=(n2, n1)) / 2 if beta else None
    t = np.linspace(0, 10, 21)
    sol = matrix.integrate(h, W0, Wp0, Wa0, t, X, Xp, rtol=1e-10, atol=1e-12)
    B = matrix.balance(sol.W, sol.Wp, h.alpha_p)
    assert np.abs(B - B[-1]).max() > 0.1  # the balancing term really moves
    np.testing.assert_allclose(B, matrix.balance_prediction(B[0], h.eta, t), atol=1e-8)
    if beta is None:
        np.testing.assert_array_equal(sol.Wa, sol.W)
    assert sol.nfev > 0


def _gradient(J, A, eps=1e-6):
    """Central finite-difference gradient of the scalar function J at matrix A."""
    G = np.zeros_like(A)
    for idx in np.ndindex(A.shape):
        E = np.zeros_like(A)
        E[idx] = eps
        G[idx] = (J(A + E) - J(A - E)) / (2 * eps)
    return G


def test_T1_T3_vector_field_is_minus_the_loss_gradient():
    """T1 (stop-gradient on Wa) and T3 (gradient through both branches, Wa = W), with the
    weight decay eta/2 ||.||^2, against finite differences of the expected loss."""
    rng = np.random.default_rng(2)
    n1, n2 = 4, 3
    X, Xp = _spd(rng, n1), _spd(rng, n1, 0.4)
    h = Hyper(alpha_p=1.7, eta=0.1)
    W, Wp, Wa = (rng.normal(size=s) for s in [(n2, n1), (n2, n2), (n2, n1)])

    def loss(W, Wp, Wa):  # 1/2 E||Wp W x1 - Wa x2||^2 in closed form
        D = Wp @ W - Wa
        return 0.5 * np.trace(D @ X @ D.T) + 0.5 * np.trace(
            Wp @ W @ Xp @ W.T @ Wp.T + Wa @ Xp @ Wa.T
        )

    def decay(M):
        return h.eta / 2 * np.sum(M**2)

    dW, dWp, _ = matrix.vector_field(Hyper(alpha_p=1.7, beta=1.0, eta=0.1), W, Wp, Wa, X, Xp)
    np.testing.assert_allclose(-dW, _gradient(lambda A: loss(A, Wp, Wa) + decay(A), W), atol=1e-6)
    gWp = _gradient(lambda A: loss(W, A, Wa), Wp)
    np.testing.assert_allclose(-dWp, h.alpha_p * gWp + h.eta * Wp, atol=1e-6)

    dW, _, _ = matrix.vector_field(h, W, Wp, None, X, Xp, stop_grad=False)
    np.testing.assert_allclose(-dW, _gradient(lambda A: loss(A, Wp, A) + decay(A), W), atol=1e-6)
    # T3's Kronecker form, vec column-major: d vec(W)/dt = -H vec(W)
    H = matrix.no_stopgrad_operator(Wp, X, Xp, h.eta)
    np.testing.assert_allclose(dW.ravel(order="F"), -H @ W.ravel(order="F"), atol=1e-12)


def test_T3_without_stop_gradient_W_collapses():
    """T3: lambda_min(H) >= lambda0 > 0 along the trajectory, so ||W(t)|| <= e^(-lambda0 t)
    ||W(0)|| -> 0; the same start with stop-gradient does not collapse."""
    rng = np.random.default_rng(3)
    n = 4
    h = Hyper(alpha_p=1.0, eta=0.01, sigma2=0.1)
    W0, Wp0 = rng.normal(size=(n, n)), np.eye(n) / 2 + _sym(rng, n, 0.25)
    t = np.linspace(0, 40, 401)
    sol = matrix.integrate(h, W0, Wp0, None, t, stop_grad=False)
    lam = matrix.lambda_min(matrix.no_stopgrad_operator(sol.Wp, sol.X, sol.Xp, h.eta))
    assert lam.min() > 0
    norm = np.linalg.norm(sol.W, axis=(1, 2))
    assert np.all(norm <= np.exp(-lam.min() * t) * norm[0] * (1 + 1e-6))
    assert norm[-1] < 1e-3 * norm[0]
    kept = matrix.integrate(h, W0, Wp0, None, t[[0, -1]], stop_grad=True)
    assert np.linalg.norm(kept.W[-1]) > 0.5 * norm[0]


@pytest.mark.parametrize("stop_grad", [True, False])
def test_T3_identity_predictor_decays_W_in_closed_form(stop_grad):
    """T3, no predictor (Wp = I fixed, via a callable rule): with stop-gradient
    dW/dt = -W (X' + eta I), so W(t) = W0 expm(-(X' + eta I) t). Through both branches the
    augmentation term counts twice: W(t) = W0 expm(-(2 X' + eta I) t)."""
    rng = np.random.default_rng(4)
    n1, n2 = 4, 3
    X, Xp = _spd(rng, n1), _spd(rng, n1, 0.5)
    h = Hyper(alpha_p=1.0, eta=0.05)
    W0 = rng.normal(size=(n2, n1))
    t = np.linspace(0, 3, 7)
    sol = matrix.integrate(
        h, W0, None, None, t, X, Xp, stop_grad=stop_grad, predictor=lambda F, C: np.eye(n2)
    )
    rate = (1 if stop_grad else 2) * Xp + h.eta * np.eye(n1)
    expected = np.array([W0 @ expm(-rate * s) for s in t])
    np.testing.assert_allclose(sol.W, expected, atol=1e-7)
    np.testing.assert_array_equal(sol.Wp, np.broadcast_to(np.eye(n2), sol.Wp.shape))


@pytest.mark.parametrize("beta", [0.5, None], ids=["byol", "simsiam"])
def test_T6_commutator_obeys_dL_equals_minus_LK_plus_KL(beta):
    """T6: under T5 (symmetric=True, X = I, X' = sigma2 I, Wa = tau W), L = [F, Wp] obeys
    dL/dt = -(L K + K L), from the vector field at a random state."""
    rng = np.random.default_rng(5)
    n = 4
    h = Hyper(alpha_p=1.3, beta=beta, eta=0.07, sigma2=0.3)
    tau = 0.6 if beta else 1.0
    W, Wp = rng.normal(size=(n, n)), _sym(rng, n)
    dW, dWp, _ = matrix.vector_field(h, W, Wp, tau * W, symmetric=True)
    F = W @ W.T
    dF = dW @ W.T + W @ dW.T
    L = F @ Wp - Wp @ F
    dL = dF @ Wp + F @ dWp - dWp @ F - Wp @ dF
    K = matrix.alignment_operator(h, F, Wp, tau)
    assert np.abs(dL).max() > 1
    np.testing.assert_allclose(dL, -(L @ K + K @ L), atol=1e-10)


def test_T6_commutator_decays_at_least_as_fast_as_the_bound():
    """T6: with lambda_min(K) >= lambda0 > 0 along the trajectory,
    ||[F, Wp]||_F <= exp(-2 lambda0 t) ||[F, Wp](0)||_F; T5 keeps Wp symmetric."""
    rng = np.random.default_rng(3)
    n = 4
    h = Hyper(alpha_p=1.0, eta=0.2, sigma2=0.2)  # 1.5 eta > 1 / (4 (1 + sigma2)): K > 0
    W0, Wp0 = rng.normal(size=(n, n)), np.eye(n) / 2 + _sym(rng, n, 0.5)
    t = np.linspace(0, 30, 601)
    sol = matrix.integrate(h, W0, Wp0, None, t, symmetric=True)
    lam0 = matrix.lambda_min(matrix.alignment_operator(h, sol.F, sol.Wp)).min()
    L = matrix.commutator_norm(sol.F, sol.Wp)
    assert lam0 > 0 and L[0] > 1
    assert np.all(L <= np.exp(-2 * lam0 * t) * L[0] * (1 + 1e-6))
    assert L[-1] < 1e-3 * L[0]
    np.testing.assert_allclose(sol.Wp, np.swapaxes(sol.Wp, 1, 2), atol=1e-12)


def test_T6_unsymmetrised_fixed_point():
    """T6: the unsymmetrised flow (eta > 0) from a non-symmetric Wp settles where
    Wp = tau Lambda[(1+sigma2) Lambda + eta/alpha_p]^-1 in F's eigenbasis (tau = 1 at rest);
    the skew part of Wp vanishes ([T] Fig. 8)."""
    rng = np.random.default_rng(3)
    n = 4
    h = Hyper(alpha_p=1.5, beta=0.5, eta=0.05, sigma2=0.2)
    W0 = rng.normal(size=(n, n))
    Wp0 = 0.6 * np.eye(n) + 0.3 * rng.normal(size=(n, n))
    sol = matrix.integrate(h, W0, Wp0, 0.5 * W0, [0.0, 300.0])
    assert np.linalg.norm(Wp0 - Wp0.T) > 0.5
    dW, dWp, dWa = matrix.vector_field(h, sol.W[-1], sol.Wp[-1], sol.Wa[-1])
    assert max(np.abs(d).max() for d in (dW, dWp, dWa)) < 1e-8  # at rest
    assert np.linalg.eigvalsh(sol.F[-1]).min() > 0.1  # not collapsed
    np.testing.assert_allclose(sol.Wp[-1], matrix.fixed_predictor(h, sol.F[-1]), atol=1e-8)


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetrised", "unsymmetrised"])
@pytest.mark.parametrize("beta", [0.4, None], ids=["byol", "simsiam"])
def test_T7_aligned_matrix_flow_reproduces_modes(symmetric, beta):
    """T5 -> T7: started aligned (X = I, X' = sigma2 I, W = U diag(sqrt s) V^T,
    Wa = U diag(tau sqrt s) V^T, Wp = U diag(p) U^T), the matrix flow reproduces
    modes.integrate mode by mode, tau per mode. Both predictor updates match: aligned, Wp F
    is symmetric, so the symmetrisation of T5 changes nothing."""
    rng = np.random.default_rng(6)
    n = 5
    h = Hyper(alpha_p=1.2, beta=beta, eta=0.03, sigma2=0.25)
    U, V = _orthogonal(rng, n), _orthogonal(rng, n)
    p0 = np.array([0.05, 0.3, 0.6, 0.9, 1.2])
    s0 = np.array([0.2, 0.5, 1.0, 0.1, 2.0])
    tau0 = np.array([0.3, 0.5, 0.8, 1.0, 0.1]) if beta else np.ones(n)
    W0 = (U * np.sqrt(s0)) @ V.T
    Wa0 = (U * (tau0 * np.sqrt(s0))) @ V.T if beta else None
    Wp0 = (U * p0) @ U.T
    t = np.linspace(0, 15, 31)
    sol = matrix.integrate(h, W0, Wp0, Wa0, t, symmetric=symmetric, rtol=1e-10, atol=1e-12)
    ref = modes.integrate(h, p0, s0, t, tau0=tau0 if beta else 1.0, rtol=1e-10, atol=1e-12)

    def diag(M):  # u_j^T M u_j for each time
        return np.einsum("ij,tik,kj->tj", U, M, U)

    s = diag(sol.F)
    np.testing.assert_allclose(diag(sol.Wp), ref.p, atol=1e-7)
    np.testing.assert_allclose(s, ref.s, atol=1e-7)
    np.testing.assert_allclose(diag(sol.Wa @ np.swapaxes(sol.W, 1, 2)) / s, ref.tau, atol=1e-6)
    assert np.abs(ref.s[-1] - s0).max() > 0.1  # the modes really move
    # still aligned: F and Wp are diagonal in U
    off = np.einsum("ij,tik,kl->tjl", U, sol.F, U) - np.einsum("tj,jl->tjl", s, np.eye(n))
    assert np.abs(off).max() < 1e-7


def test_predictor_rule_directpred_sets_Wp_commuting_with_F():
    """R1 inside the flow: with predictor="directpred", Wp = rule(C_oo, C_to) with the exact
    C_oo = W (X+X') W^T, so Wp commutes with C_oo (not with W X W^T when X' is
    anisotropic), while W and Wa follow T1 with that Wp."""
    rng = np.random.default_rng(7)
    n1, n2 = 5, 3
    X, Xp = _spd(rng, n1, floor=0.2), _spd(rng, n1, 0.5)
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01)
    W0, Wa0 = rng.normal(size=(n2, n1)), rng.normal(size=(n2, n1))
    t = np.linspace(0, 2, 5)
    sol = matrix.integrate(h, W0, None, Wa0, t, X, Xp, predictor="directpred", eps=0.1)
    assert np.all(matrix.commutator_norm(sol.C_oo, sol.Wp) < 1e-10)
    assert matrix.commutator_norm(sol.F, sol.Wp)[0] > 1e-3
    rule = predictors.get_rule("directpred", eps=0.1)
    np.testing.assert_allclose(sol.Wp[-1], rule(sol.C_oo[-1], sol.C_to[-1]), atol=1e-12)
    # W follows T1 with that Wp: the flow's derivative matches a finite difference of sol.W
    fine = matrix.integrate(h, W0, None, Wa0, [0, 1e-4], X, Xp, predictor="directpred", eps=0.1)
    dW, _, _ = matrix.vector_field(h, W0, rule(W0 @ (X + Xp) @ W0.T, Wa0 @ X @ W0.T), Wa0, X, Xp)
    np.testing.assert_allclose((fine.W[1] - fine.W[0]) / 1e-4, dW, rtol=1e-3, atol=1e-4)


def test_T4_scalar_system_reaches_its_fixed_point_and_matches_the_matrix_flow():
    """T4 ([T] Fig. 10, l_s = 1, l_d = 1/2, alpha_p = beta = 1): trajectories reach
    w_p w l_s = w_a l_d with w = w_a; the scalar system is the 1 x 1 matrix flow with
    X = l_d, X' = l_s - l_d."""
    h = Hyper(alpha_p=1.0, beta=1.0)
    l_s, l_d = 1.0, 0.5
    wp0 = np.array([0.5, 0.2, -0.6, 0.3])
    w0 = np.array([1.0, 0.9, -1.0, 0.5])
    wa0 = np.array([0.8, 0.4, -1.5, 1.0])
    sol = matrix.integrate_scalar(h, wp0, w0, wa0, np.linspace(0, 200, 3), l_s, l_d)
    wp, w, wa = sol.wp[-1], sol.w[-1], sol.wa[-1]
    assert np.all(np.abs(w) > 0.1)  # not collapsed
    np.testing.assert_allclose(wp * w * l_s, wa * l_d, atol=1e-6)
    np.testing.assert_allclose(w, wa, atol=1e-6)
    np.testing.assert_allclose(wp, matrix.scalar_fixed_predictor(l_s, l_d), atol=1e-6)
    t = np.linspace(0, 3, 4)
    one = matrix.integrate_scalar(h, wp0[0], w0[0], wa0[0], t, l_s, l_d)
    mat = matrix.integrate(h, [[w0[0]]], [[wp0[0]]], [[wa0[0]]], t, [[l_d]], [[l_s - l_d]])
    np.testing.assert_allclose(one.wp, mat.Wp[:, 0, 0], atol=1e-7)
    np.testing.assert_allclose(one.w, mat.W[:, 0, 0], atol=1e-7)
    np.testing.assert_allclose(one.wa, mat.Wa[:, 0, 0], atol=1e-7)


def test_spectrum_is_descending_and_reconstructs():
    """Helper: eigh of F(t), eigenvalues descending, over the time axis."""
    rng = np.random.default_rng(8)
    F = np.array([_spd(rng, 4) for _ in range(3)])
    values, vectors = matrix.spectrum(F)
    assert np.all(np.diff(values, axis=-1) <= 0)
    np.testing.assert_allclose((vectors * values[:, None, :]) @ np.swapaxes(vectors, 1, 2), F)


def test_random_rotation_is_orthogonal_seeded_and_haar_distributed():
    """Helper of the notebooks' aligned starts: Q Q^T = I, the same seed gives the same Q,
    and over many draws the entries have the Haar moments E[Q_ij] = 0, E[Q_ij^2] = 1/n."""
    n, draws = 4, 4000
    Q = matrix.random_rotation(n, 0)
    np.testing.assert_allclose(Q @ Q.T, np.eye(n), atol=1e-12)
    np.testing.assert_array_equal(Q, matrix.random_rotation(n, np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    sample = np.array([matrix.random_rotation(n, rng) for _ in range(draws)])
    assert np.abs(sample.mean(axis=0)).max() < 4 / np.sqrt(n * draws)  # 4 standard errors
    np.testing.assert_allclose((sample**2).mean(axis=0), 1 / n, atol=0.03)
    for bad in (0, 2.5, "3"):
        with pytest.raises(ValueError, match="positive integer") as err:
            matrix.random_rotation(bad)
        assert "\n" not in str(err.value)


def test_bad_inputs_raise_one_line_errors():
    h = Hyper(alpha_p=1.0, beta=0.5)
    W0, Wp0, t = np.ones((3, 4)), np.eye(3), [0.0, 1.0]
    cases = [
        (dict(Wa0=np.ones((3, 5))), "Wa0 has shape"),
        (dict(Wa0=np.ones((3, 4)), X=np.ones((4, 4)) - 2 * np.eye(4)), "negative eigenvalue"),
        (dict(Wa0=np.full((3, 4), np.nan)), "non-finite"),
        (dict(Wa0=np.ones((3, 4)), stop_grad=False), "stop_grad=False needs h.beta=None"),
        (dict(Wa0=np.ones((3, 4)), predictor="nope"), "unknown predictor rule"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            matrix.integrate(h, W0, Wp0, kwargs.pop("Wa0"), t, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="symmetric Wp0"):
        matrix.integrate(h, W0, np.triu(np.ones((3, 3))), W0, t, symmetric=True)
    with pytest.raises(ValueError, match="non-finite.*diverged"):
        matrix.integrate(h, W0, None, W0, t, predictor=lambda F, C: np.full((3, 3), np.nan))


@pytest.mark.parametrize(
    "beta, with_wp", [(0.5, True), (None, True), (0.5, False)], ids=["byol", "simsiam", "rule"]
)
def test_start_packing_round_trips_over_leading_axes(beta, with_wp):
    """T1's flat state (matrix._Start, shared with N1): unpack(pack(W, Wp, Wa)) gives them
    back, per row of a stacked trajectory too; SimSiam's Wa is W, a rule's Wp is absent."""
    rng = np.random.default_rng(0)
    h = Hyper(alpha_p=1.0, beta=beta)
    W0, Wp0, Wa0 = rng.normal(size=(3, 4)), rng.normal(size=(3, 3)), rng.normal(size=(3, 4))
    start = matrix._Start.check(
        h, W0, Wp0, Wa0 if beta else None, None, None, stop_grad=True, with_wp=with_wp
    )
    assert start.y0.size == 12 + 9 * with_wp + 12 * (beta is not None)
    W, Wp, Wa = start.unpack(start.y0)
    np.testing.assert_array_equal(W, W0)
    assert (Wp is None) != with_wp and (Wa is W) == (beta is None)
    if with_wp:
        np.testing.assert_array_equal(Wp, Wp0)
    if beta is not None:
        np.testing.assert_array_equal(Wa, Wa0)
    path = np.stack([start.y0, 2 * start.y0])  # (len(t), size), as a solver returns it
    W2, Wp2, Wa2 = start.unpack(path)
    assert W2.shape == (2, 3, 4)
    np.testing.assert_array_equal(start.pack(W2[1], Wp2[1] if with_wp else None, Wa2[1]), path[1])
