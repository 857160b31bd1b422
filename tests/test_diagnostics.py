"""Orthogonality and spectral diagnostics E1-E8 and [T] Fig. 2 (theory.md section 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from linear_ssl import diagnostics as D

N = 5


def _orthogonal(seed: int, n: int = N) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return Q


def _projection(rank: int, seed: int = 0, n: int = N) -> np.ndarray:
    Q = _orthogonal(seed, n)
    return Q[:, :rank] @ Q[:, :rank].T


def _oblique(a: float) -> np.ndarray:
    """A non-normal projection (P^2 = P), eigenvalues {1, 0}, ||P||_2 = sqrt(1 + a^2)."""
    return np.array([[1.0, a], [0.0, 0.0]])


@pytest.fixture
def mats() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(N, N))
    F = A @ A.T / N + 0.1 * np.eye(N)
    Wp = F + 0.3 * rng.normal(size=(N, N))
    C_to = F + 0.1 * rng.normal(size=(N, N))
    return {"F": F, "Wp": Wp, "C_to": C_to, "C_tt": F + 0.2 * np.eye(N)}


DIAGNOSTICS = {
    "quasi_projection": lambda m: D.quasi_projection(m["Wp"]),
    "quasi_symmetry": lambda m: D.quasi_symmetry(m["Wp"]),
    "quasi_orthogonality": lambda m: D.quasi_orthogonality(m["Wp"]),
    "stable_rank": lambda m: D.stable_rank(m["Wp"]),
    "normalised_trace": lambda m: D.normalised_trace(m["Wp"]),
    "polar_distance_fro": lambda m: D.polar_distance(m["Wp"]),
    "polar_distance_spectral": lambda m: D.polar_distance(m["Wp"], norm="spectral"),
    "edge_of_orthogonality": lambda m: list(D.edge_of_orthogonality(m["Wp"]).values()),
    "spectral_radius": lambda m: D.spectral_radius(m["Wp"]),
    "alignment": lambda m: D.alignment(m["F"], m["Wp"]),
    "alignment_matrix": lambda m: D.alignment_matrix(m["F"], m["Wp"]),
    "asymmetry": lambda m: D.asymmetry(m["Wp"]),
    "commutator_norm": lambda m: D.commutator_norm(m["F"], m["Wp"]),
    "lrp_loss": lambda m: D.lrp_loss(m["F"], m["C_to"], m["C_tt"]),
    "normalised_spectrum_sv": lambda m: D.normalised_spectrum(m["Wp"]),
    "normalised_spectrum_eig": lambda m: D.normalised_spectrum(m["F"], kind="eig"),
    "participation_ratio": lambda m: D.participation_ratio(m["F"]),
    "tracker": lambda m: _track([m["F"], m["F"] + 0.1 * m["Wp"] @ m["Wp"].T]),
}


def _track(Ms):
    tracker = D.EigenTracker()
    return [tracker.update(M) for M in Ms][-1]


def _numpy(value):
    if isinstance(value, (tuple, list)):
        return np.concatenate([np.ravel(_numpy(v)) for v in value])
    if isinstance(value, torch.Tensor):
        return value.numpy()
    return np.asarray(value, dtype=float)


@pytest.mark.parametrize("name", list(DIAGNOSTICS))
def test_every_diagnostic_numpy_and_torch_float64_agree(mats, name):
    """E1-E8, [T] Fig. 2 quantities and the tracker: same values from numpy and torch (1e-10)."""
    ref = DIAGNOSTICS[name](mats)
    out = DIAGNOSTICS[name]({k: torch.tensor(v) for k, v in mats.items()})
    if isinstance(ref, np.ndarray):
        assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(_numpy(out), _numpy(ref), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- E1-E3


@pytest.mark.parametrize("rank, scale", [(1, 1.0), (2, 3.0), (4, 0.2), (N, 7.0)])
def test_orthogonal_projections_have_vanishing_E1_E2_E3(rank, scale):
    """Any orthogonal projection (at any positive scale) is an exact fixed point of E1-E3."""
    P = scale * _projection(rank, seed=rank)
    for value in (D.quasi_projection(P), D.quasi_symmetry(P), D.quasi_orthogonality(P)):
        assert value < 1e-12


def test_E1_E2_E3_detect_each_departure():
    """Closed forms: a symmetric non-projection, an oblique projection, a rotation."""
    sym = np.diag([1.0, 0.5])  # E1 = |0.25 - 0.5| = 0.25, E2 = 0, E3 = 0.25
    assert D.quasi_projection(sym) == pytest.approx(0.25, abs=1e-12)
    assert D.quasi_symmetry(sym) == pytest.approx(0.0, abs=1e-12)
    assert D.quasi_orthogonality(sym) == pytest.approx(0.25, abs=1e-12)
    a = 0.7
    oblique = _oblique(a)  # E1 = 0, E2 = a, E3 = a sqrt(1 + a^2)
    assert D.quasi_projection(oblique) == pytest.approx(0.0, abs=1e-12)
    assert D.quasi_symmetry(oblique) == pytest.approx(a, abs=1e-12)
    assert D.quasi_orthogonality(oblique) == pytest.approx(a * math.sqrt(1 + a * a), abs=1e-12)
    theta = 0.4
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    # rotation: Q^2 - Q = Q (Q - I), ||.||_2 = |e^{i theta} - 1| = 2 sin(theta / 2)
    assert D.quasi_projection(rotation) == pytest.approx(2 * math.sin(theta / 2), abs=1e-12)


def test_E3_is_the_E_formula_on_the_row_major_predictor():
    """[E]'s P is our Wp^T: E3(Wp) = ||P P^T - P||_2 at P = Wp^T / rho, computed here with a
    general eigensolver for the scale; for non-normal Wp the untransposed form differs."""
    Wp = np.array([[1.41, 1.04, -0.13], [1.37, 0.33, 0.35], [0.9, 0.09, 0.26]])
    P_E = Wp.T / np.abs(np.linalg.eigvals(Wp)).max()
    reference = np.linalg.norm(P_E @ P_E.T - P_E, 2)
    assert D.quasi_orthogonality(Wp) == pytest.approx(reference, rel=1e-10)
    assert abs(np.linalg.norm(P_E.T @ P_E - P_E.T, 2) - reference) > 0.05


def test_E3_bound_with_the_norm_factor_holds_on_random_non_normal_matrices():
    """E3 <= E1 + ||Q||_2 E2 exactly (Q^T Q - Q = (Q^T - Q) Q + (Q^2 - Q))."""
    rng = np.random.default_rng(2)
    exceed_naive = 0
    for _ in range(60):
        P = rng.normal(size=(N, N)) + 2.0 * np.eye(N)
        e = D.edge_of_orthogonality(P)
        assert e["quasi_orthogonality"] <= (
            e["quasi_projection"] + e["norm"] * e["quasi_symmetry"] + 1e-12
        )
        assert e["quasi_projection"] == pytest.approx(D.quasi_projection(P), rel=1e-12)
        exceed_naive += e["quasi_orthogonality"] > e["quasi_projection"] + e["quasi_symmetry"]
    assert exceed_naive > 0  # the ||Q||_2 factor is needed on some of them


def test_E3_exceeds_E1_plus_E2_on_an_oblique_projection():
    """[E]'s "2 eps" reading needs ||P||_2 = 1: P = [[1, a], [0, 0]] has E3 = E1 + ||P||_2 E2
    = a sqrt(1 + a^2) > E1 + E2 = a."""
    a = 2.0
    e = D.edge_of_orthogonality(_oblique(a))
    assert e["norm"] == pytest.approx(math.sqrt(1 + a * a), rel=1e-12)
    assert e["quasi_orthogonality"] > e["quasi_projection"] + e["quasi_symmetry"] + 1.0
    assert e["quasi_orthogonality"] == pytest.approx(
        e["quasi_projection"] + e["norm"] * e["quasi_symmetry"], rel=1e-12
    )


def test_diagnostics_are_scale_invariant_and_nan_when_collapsed():
    P = np.random.default_rng(3).normal(size=(N, N)) + np.eye(N)
    ref, scaled = D.edge_of_orthogonality(P), D.edge_of_orthogonality(0.01 * P)
    for key in ref:
        assert scaled[key] == pytest.approx(ref[key], rel=1e-9)
    assert all(math.isnan(v) for v in D.edge_of_orthogonality(np.zeros((3, 3))).values())
    assert math.isnan(D.polar_distance(np.array([[0.0, 1.0], [0.0, 0.0]])))  # nilpotent


# --------------------------------------------------------------------------- E4, E5


@pytest.mark.parametrize("rank", [1, 2, 3, N])
def test_rank_k_projection_has_stable_rank_and_trace_k_E4(rank):
    P = 4.0 * _projection(rank, seed=10 + rank)
    assert D.stable_rank(P) == pytest.approx(rank, rel=1e-12)
    assert D.normalised_trace(P) == pytest.approx(rank, rel=1e-12)
    e = D.edge_of_orthogonality(P)
    assert e["stable_rank"] == pytest.approx(rank, rel=1e-12)
    assert e["trace"] == pytest.approx(rank, rel=1e-12)


def test_stable_rank_closed_form_E4():
    M = np.diag([3.0, 1.0, 1.0])
    assert D.stable_rank(M) == pytest.approx(11.0 / 9.0, rel=1e-12)
    assert D.stable_rank(np.ones((2, 3))) == pytest.approx(1.0, rel=1e-12)  # rectangular


def test_polar_distance_zero_for_orthogonal_and_matches_scipy_polar_E5():
    Q = _orthogonal(4)
    for P in (Q, 3.0 * Q):
        assert D.polar_distance(P) < 1e-12
        assert D.polar_distance(P, norm="spectral") < 1e-12
    rng = np.random.default_rng(5)
    P = rng.normal(size=(N, N)) + 3 * np.eye(N)
    Qn = P / np.abs(np.linalg.eigvals(P)).max()  # the reference scaling, by a general eig
    U, _ = scipy.linalg.polar(Qn)
    assert D.polar_distance(P) == pytest.approx(np.linalg.norm(Qn - U) / math.sqrt(N), rel=1e-8)
    assert D.polar_distance(P, "spectral") == pytest.approx(np.linalg.norm(Qn - U, 2), rel=1e-8)
    k = 2
    assert D.polar_distance(_projection(k)) == pytest.approx(math.sqrt((N - k) / N), rel=1e-12)


# --------------------------------------------------------------------------- [T] Fig. 2


def test_alignment_is_one_for_commuting_F_and_Wp():
    Q = _orthogonal(6)
    F = Q @ np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) @ Q.T
    Wp = Q @ np.diag([0.1, 2.0, 0.5, 1.0, 3.0]) @ Q.T
    np.testing.assert_allclose(D.alignment(F, Wp), 1.0, atol=1e-12)
    A = D.alignment_matrix(F, Wp)
    np.testing.assert_allclose(A, np.diag([0.1, 2.0, 0.5, 1.0, 3.0]), atol=1e-12)  # descending F
    assert D.commutator_norm(F, Wp) < 1e-12


def test_alignment_of_a_rotation_is_its_cosine():
    theta = 0.3
    Wp = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    np.testing.assert_allclose(D.alignment(np.diag([2.0, 1.0]), Wp), math.cos(theta), atol=1e-12)
    collapsed = D.alignment(np.diag([2.0, 1.0]), np.diag([1.0, 0.0]))  # Wp u_2 = 0: undefined
    assert collapsed[0] == 1.0 and math.isnan(collapsed[1])


def test_asymmetry_and_commutator_closed_forms_T6():
    rng = np.random.default_rng(7)
    S = rng.normal(size=(N, N))
    S = S + S.T
    K = rng.normal(size=(N, N))
    K = K - K.T
    expected = 2 * np.linalg.norm(K) / math.sqrt(np.linalg.norm(S) ** 2 + np.linalg.norm(K) ** 2)
    assert D.asymmetry(S + K) == pytest.approx(expected, rel=1e-12)
    assert D.asymmetry(S) == 0.0
    F, Wp = np.diag([1.0, 2.0]), np.array([[0.0, 1.0], [0.0, 0.0]])
    assert D.commutator_norm(F, Wp) == pytest.approx(1.0, rel=1e-12)  # (1 - 2) * Wp


# --------------------------------------------------------------------------- E6, E8


def test_lrp_loss_is_the_residual_of_least_squares_E6():
    """E6 = E||Proj_perp(f_a)||^2: the sample residual of regressing f_a on f."""
    rng = np.random.default_rng(8)
    m = 300
    f = rng.normal(size=(m, N)) @ rng.normal(size=(N, N))
    f_a = f @ rng.normal(size=(N, N)).T + 0.5 * rng.normal(size=(m, N))
    C_oo, C_to, C_tt = f.T @ f / m, f_a.T @ f / m, f_a.T @ f_a / m
    fit, *_ = np.linalg.lstsq(f, f_a, rcond=None)
    residual = np.sum((f_a - f @ fit) ** 2) / m
    assert D.lrp_loss(C_oo, C_to, C_tt) == pytest.approx(residual, rel=1e-9)
    assert D.lrp_loss(C_oo, C_to, C_tt, reg=0.1) > D.lrp_loss(C_oo, C_to, C_tt)
    exact = f @ rng.normal(size=(N, N)).T  # f_a a linear function of f: nothing left over
    assert D.lrp_loss(C_oo, exact.T @ f / m, exact.T @ exact / m) == pytest.approx(0, abs=1e-9)


def test_normalised_spectrum_and_participation_ratio_E8():
    s = np.array([4.0, 2.0, 1.0, 0.5, 0.0])
    F = _orthogonal(9) @ np.diag(s) @ _orthogonal(9).T
    np.testing.assert_allclose(D.normalised_spectrum(F, kind="eig"), s / 4, atol=1e-12)
    np.testing.assert_allclose(D.normalised_spectrum(F), s / 4, atol=1e-12)
    M = np.random.default_rng(10).normal(size=(4, 6))
    sv = np.linalg.svd(M, compute_uv=False)
    np.testing.assert_allclose(D.normalised_spectrum(M), sv / sv[0], atol=1e-12)
    assert D.participation_ratio(F) == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-12)
    assert D.participation_ratio(np.eye(7)) == pytest.approx(7.0)
    assert D.participation_ratio(_projection(1)) == pytest.approx(1.0)


# --------------------------------------------------------------------------- tracking


def test_match_eigenbasis_recovers_a_permuted_sign_flipped_basis():
    Q = _orthogonal(11)
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    order, signs = [3, 0, 4, 1, 2], np.array([-1.0, 1.0, -1.0, -1.0, 1.0])
    s_matched, U_matched = D.match_eigenbasis(Q, s[order], Q[:, order] * signs)
    np.testing.assert_allclose(U_matched, Q, atol=1e-14)
    np.testing.assert_allclose(s_matched, s, atol=1e-14)


def test_tracker_follows_modes_through_a_level_crossing():
    """Two eigenvalues cross while the basis rotates slowly: eigh's sorted order swaps, the
    tracker keeps each mode in its column."""
    tracker, previous = D.EigenTracker(), None
    for t in np.linspace(0.0, 1.0, 11):
        d = np.array([3.0 - 2 * t, 2.0, 1.0 + 2 * t])  # mode 0 and 2 cross at t = 1/2
        R = scipy.linalg.expm(0.05 * t * np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]]))
        s, U = tracker.update(R @ np.diag(d) @ R.T)
        np.testing.assert_allclose(s, d, atol=1e-9)
        if previous is not None:
            assert np.all(np.sum(U * previous, axis=0) > 0.99)
        previous = U


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: D.quasi_projection(np.ones((2, 3))), "square"),
        (lambda: D.polar_distance(np.array([[np.inf]])), "non-finite"),
        (lambda: D.alignment(np.array([[1.0, 2.0], [0.0, 1.0]]), np.eye(2)), "not symmetric"),
        (lambda: D.commutator_norm(np.eye(2), np.eye(3)), "must match"),
        (lambda: D.polar_distance(np.eye(2), norm="nuc"), "'fro' or 'spectral'"),
    ],
)
def test_bad_input_is_a_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
