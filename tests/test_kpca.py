"""E7 k-PCA (theory.md section 4): the optimal rank-k predictor of E6's loss, principal
subspaces and Krasulina's rank-1 update."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linear_ssl import diagnostics as D
from linear_ssl.predictors import lrp

N = 6


def _orthogonal(seed: int, n: int = N) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return Q


SPECTRUM = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.25])  # descending, distinct
Q = _orthogonal(0)
F = Q @ np.diag(SPECTRUM) @ Q.T  # tau = 1, no augmentation: C_to = C_tt = C_oo = F


def _regression_moments(seed: int = 1, m: int = 400) -> dict[str, np.ndarray]:
    """Sample moments of f (anisotropic) and f_a = A f + noise: C_to != C_oo."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(m, N)) @ np.diag([3.0, 2.0, 1.0, 0.6, 0.3, 0.1]) @ Q.T
    f_a = f @ rng.normal(size=(N, N)).T + 0.3 * rng.normal(size=(m, N))
    return {"f": f, "f_a": f_a, "C_oo": f.T @ f / m, "C_to": f_a.T @ f / m, "C_tt": f_a.T @ f_a / m}


def _random_rank_k(rng: np.random.Generator, k: int) -> np.ndarray:
    return rng.normal(size=(N, k)) @ rng.normal(size=(k, N))


# --------------------------------------------------------------------------- numpy and torch


def _calls(m: dict) -> dict:
    samples = m["samples"]
    return {
        "optimal_rank_k_predictor": D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], 2),
        "optimal_rank_k_predictor_reg": D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], 3, 0.1),
        "prediction_loss": D.prediction_loss(m["Wp"], m["C_oo"], m["C_to"], m["C_tt"]),
        "subspace_distance": D.subspace_distance(m["Wp"][:, :2], m["C_oo"][:, 3:5]),
        "krasulina": D.krasulina(samples, m["w0"], 0.05),
    }


def test_E6_E7_numpy_and_torch_float64_agree():
    """Every E7 function gives the same numbers (1e-10) from numpy arrays and torch tensors."""
    mats = {k: v for k, v in _regression_moments().items() if k.startswith("C")}
    rng = np.random.default_rng(2)
    mats |= {"Wp": rng.normal(size=(N, N)), "w0": rng.normal(size=N)}
    mats["samples"] = rng.normal(size=(50, N)) @ np.sqrt(np.diag(SPECTRUM)) @ Q.T
    ref = _calls(mats)
    out = _calls({k: torch.tensor(v) for k, v in mats.items()})
    for name, value in ref.items():
        if isinstance(value, np.ndarray):
            assert isinstance(out[name], torch.Tensor), name
            np.testing.assert_allclose(out[name].numpy(), value, rtol=0, atol=1e-10)
        else:
            assert out[name] == pytest.approx(value, abs=1e-10), name


# --------------------------------------------------------------------------- subspace distance


def test_subspace_distance_is_the_sine_of_the_largest_principal_angle_E7():
    """Closed form: span(e1, e2) against span(e1, cos t e2 + sin t e3) is at distance sin t."""
    e = np.eye(N)
    for t in (1e-6, 0.3, 1.2):
        tilted = np.stack([e[0], np.cos(t) * e[1] + np.sin(t) * e[2]], axis=1)
        assert D.subspace_distance(e[:, :2], tilted) == pytest.approx(np.sin(t), rel=1e-9)
    # any matrix with that span (scaled, mixed, rank-deficient square) is at distance 0
    P = Q[:, :3] @ np.random.default_rng(3).normal(size=(3, N))
    assert D.subspace_distance(P, 7 * Q[:, :3]) < 1e-13
    assert D.subspace_distance(Q[:, :2], Q[:, :3]) == pytest.approx(1.0)  # dimensions differ
    assert D.subspace_distance(Q[:, 0], -Q[:, 0]) < 1e-15  # a vector: its line
    assert D.subspace_distance(Q[:, 0], Q[:, 1]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- optimal rank-k P


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_tau_one_rank_k_optimum_projects_on_the_top_k_eigenvectors_E7(k):
    """E7: C_to = C_oo = F gives the orthogonal projection onto F's top-k eigenvectors; its
    E6 loss is the sum of the discarded eigenvalues, below any random rank-k predictor's."""
    P = D.optimal_rank_k_predictor(F, F, k)
    assert np.linalg.matrix_rank(P) == k
    assert D.subspace_distance(P, Q[:, :k]) < 1e-10
    np.testing.assert_allclose(P, Q[:, :k] @ Q[:, :k].T, atol=1e-10)
    assert D.quasi_orthogonality(P) < 1e-10  # E3: an exact orthogonal projection
    loss = D.prediction_loss(P, F, F, F)
    assert loss == pytest.approx(SPECTRUM[k:].sum(), rel=1e-10)
    rng = np.random.default_rng(k)
    for _ in range(50):
        assert D.prediction_loss(_random_rank_k(rng, k), F, F, F) > loss
        other = np.linalg.qr(rng.normal(size=(N, k)))[0]  # a random rank-k projection
        assert D.prediction_loss(other @ other.T, F, F, F) > loss


def test_rank_k_optimum_is_reduced_rank_regression_by_lstsq_and_svd_E6_E7():
    """C_to != C_oo: equals the reduced-rank regression computed from the samples (least
    squares, then the top-k right singular vectors of the fitted values), and its loss is the
    sample residual and the closed form tr(C_tt) - sum_{j<=k} lambda_j(W* C_to^T)."""
    m = _regression_moments()
    f, f_a = m["f"], m["f_a"]
    W_star = lrp(m["C_oo"], m["C_to"])
    top = np.sort(np.linalg.eigvalsh(W_star @ m["C_to"].T))[::-1]
    for k in (1, 2, 4):
        B, *_ = np.linalg.lstsq(f, f_a, rcond=None)  # f_a ~ f B
        V_k = np.linalg.svd(f @ B)[2][:k].T
        reference = (B @ V_k @ V_k.T).T  # our Wp acts on columns: the transpose
        Wp = D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], k)
        np.testing.assert_allclose(Wp, reference, atol=1e-10 * np.abs(reference).max())
        loss = D.prediction_loss(Wp, m["C_oo"], m["C_to"], m["C_tt"])
        residual = np.sum((f_a - f @ Wp.T) ** 2) / len(f)
        assert loss == pytest.approx(residual, rel=1e-10)
        assert loss == pytest.approx(np.trace(m["C_tt"]) - top[:k].sum(), rel=1e-10)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rank_k_optimum_beats_truncations_of_lrp_E6_E7(k):
    """C_to != C_oo, anisotropic C_oo: the rank-k optimum has a strictly lower E6 loss than
    the rank-k SVD truncation of LRP's W* (Eckart-Young in the wrong metric), than W*
    projected on C_oo's top-k eigenvectors (the PCA answer), and than random rank-k
    predictors."""
    m = _regression_moments()
    moments = (m["C_oo"], m["C_to"], m["C_tt"])
    best = D.prediction_loss(D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], k), *moments)
    W_star = lrp(m["C_oo"], m["C_to"])
    U, s, Vt = np.linalg.svd(W_star)
    svd_truncation = U[:, :k] @ np.diag(s[:k]) @ Vt[:k]
    U_oo = np.linalg.eigh(m["C_oo"])[1][:, ::-1][:, :k]
    for rival in (svd_truncation, U_oo @ U_oo.T @ W_star, W_star @ U_oo @ U_oo.T):
        assert D.prediction_loss(rival, *moments) > best + 1e-3 * abs(best)
    rng = np.random.default_rng(k)
    for _ in range(50):
        assert D.prediction_loss(_random_rank_k(rng, k), *moments) > best
    assert best > D.lrp_loss(*moments)  # rank k < n: above the unconstrained E6 minimum


def test_full_rank_optimum_is_lrp_and_reg_is_the_ridge_version_E6():
    """k = n gives R3's W* = C_to C_oo^-1; with reg the same construction on C_oo + reg I."""
    m = _regression_moments()
    np.testing.assert_allclose(
        D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], N), lrp(m["C_oo"], m["C_to"]), atol=1e-9
    )
    shifted = m["C_oo"] + 0.5 * np.eye(N)
    np.testing.assert_allclose(
        D.optimal_rank_k_predictor(m["C_oo"], m["C_to"], 2, reg=0.5),
        D.optimal_rank_k_predictor(shifted, m["C_to"], 2),
        atol=1e-12,
    )
    # E7 with a collapsed mode: the ridge keeps F's top-k span (eigenvalues s^2 / (s + reg))
    singular = Q @ np.diag([*SPECTRUM[:-1], 0.0]) @ Q.T
    P = D.optimal_rank_k_predictor(singular, singular, 3, reg=0.1)
    assert D.subspace_distance(P, Q[:, :3]) < 1e-10


# --------------------------------------------------------------------------- Krasulina


def test_krasulina_step_is_the_rank_one_constrained_gradient_step_E7():
    """One step equals -lr (w^T w / 2) grad_w mean ||x - (w w^T / w^T w) x||^2 (autograd),
    for a single sample and for a batch; the step is orthogonal to w (Pythagoras)."""
    rng = np.random.default_rng(4)
    for batch in (None, 8):
        x = rng.normal(size=(1, N) if batch is None else (1, batch, N))
        w0 = rng.normal(size=N)
        w1 = D.krasulina(x, w0, 0.1)[1]
        w = torch.tensor(w0, requires_grad=True)
        X = torch.tensor(x.reshape(-1, N))
        P = torch.outer(w, w) / (w @ w)
        torch.mean(torch.sum((X - X @ P.T) ** 2, dim=1)).backward()
        expected = w0 - 0.1 * (w0 @ w0) / 2 * w.grad.numpy()
        np.testing.assert_allclose(w1, expected, rtol=0, atol=1e-12)
        assert w1 @ w1 == pytest.approx(w0 @ w0 + (w1 - w0) @ (w1 - w0), rel=1e-12)


@pytest.mark.parametrize(
    "spectrum, batch, steps, t0",
    [(np.array([4.0, 1.0, 0.5, 0.3, 0.2, 0.1]), None, 4000, 50.0), (SPECTRUM, 10, 2000, 10.0)],
)
def test_krasulina_converges_to_the_top_eigenvector_of_samples_from_N0C_E7(
    spectrum, batch, steps, t0
):
    """Samples from N(0, C) (one a step, or batches), seeded, lr_t = 1 / (t + t0), clear gap:
    w's direction ends within 0.05 (sine of the angle) of C's top eigenvector, starting from
    near-orthogonal (0.999); the distance falls along the way."""
    rng = np.random.default_rng(5)
    shape = (steps, N) if batch is None else (steps, batch, N)
    samples = rng.normal(size=shape) @ np.diag(np.sqrt(spectrum)) @ Q.T
    path = D.krasulina(samples, Q[:, 1] + 0.05 * Q[:, 0], 1.0 / (np.arange(steps) + t0))
    assert path.shape == (steps + 1, N)
    distances = [D.subspace_distance(path[t], Q[:, 0]) for t in (0, steps // 4, steps)]
    assert distances[0] > 0.99
    assert distances[2] < 0.05
    assert distances[2] < distances[1]


def test_krasulina_on_exact_batch_covariance_converges_tightly_E7():
    """Batches whose mean x x^T is exactly F (rows of sqrt(n) F^(1/2)): the rule is then
    deterministic and w's direction reaches F's top eigenvector to 1e-8."""
    rows = np.sqrt(N) * Q @ np.diag(np.sqrt(SPECTRUM)) @ Q.T
    samples = np.broadcast_to(rows, (400, N, N))
    path = D.krasulina(samples, np.ones(N), 0.1)
    assert D.subspace_distance(path[-1], Q[:, 0]) < 1e-8


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: D.optimal_rank_k_predictor(F, F, 0), r"k=0 is invalid"),
        (lambda: D.optimal_rank_k_predictor(F, F, N + 1), r"\[1, 6\]"),
        (lambda: D.optimal_rank_k_predictor(F, F[:3, :3], 1), "must match"),
        (lambda: D.optimal_rank_k_predictor(np.zeros((N, N)), F, 1), "reg > 0"),
        (lambda: D.prediction_loss(F, F, F, np.eye(3)), "must match"),
        (lambda: D.subspace_distance(np.eye(3), np.eye(4)), "one space"),
        (lambda: D.subspace_distance(np.zeros((3, 2)), np.eye(3)), "spans no subspace"),
        (lambda: D.subspace_distance(np.eye(3), np.eye(3), rank=4), r"rank=4 is invalid"),
        (lambda: D.krasulina(np.ones(N), np.ones(N), 0.1), "dimensions"),
        (lambda: D.krasulina(np.ones((3, N)), np.ones(N - 1), 0.1), "w0 has shape"),
        (lambda: D.krasulina(np.ones((3, N)), np.zeros(N), 0.1), "w0 is zero"),
        (lambda: D.krasulina(np.ones((3, N)), np.ones(N), -0.1), "positive"),
        (lambda: D.krasulina(np.ones((3, N)), np.ones(N), [0.1, 0.1]), "3 positive"),
        (lambda: D.krasulina(np.ones((3, N)), torch.ones(N), 0.1), "different libraries"),
    ],
)
def test_bad_input_is_a_one_line_value_error_E7(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
