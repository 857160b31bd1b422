"""Orthogonality and spectral diagnostics E1-E8, collapse and rank diagnostics E9-E12
(theory.md section 4) and [T] Fig. 2.

Written once against the array API (``array_api_compat``): NumPy arrays or torch tensors
in; scalar diagnostics come back as Python floats, per-mode ones as arrays of the input's
type. Conventions as in ``linear_ssl.predictors``: column vectors, the predictor acts as
Wp @ f, and [E]'s row-major P is our Wp^T. Every function takes our Wp. E1, E2, E4, E5 are
unchanged by the transpose; E3, [E]'s ||P P^T - P||_2, reads ||Wp^T Wp - Wp||_2 here.

Scaling (E1-E5): the normalised loss is scale-invariant, so P is first divided by its
spectral radius rho(P) = max_j |lambda_j(P)| (modulus, not real part: the array API has
no general eigensolver, and rho is computed by repeated squaring, see
``predictors.spectral_radius``). For the predictors met in practice the dominant
eigenvalue is real and positive, and then "largest eigenvalue = 1" holds exactly. A P
with rho(P) = 0 (collapsed, or nilpotent) has no such scaling: its E1-E5 are nan.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from array_api_compat import to_device
from scipy.optimize import linear_sum_assignment

from linear_ssl._arrays import check_symmetric as _check_symmetric
from linear_ssl._arrays import float_matrix as _float_matrix
from linear_ssl._arrays import same_shape as _same_shape
from linear_ssl.predictors import lrp, spectral_radius

__all__ = [
    "EigenTracker",
    "alignment",
    "alignment_matrix",
    "alpha_req",
    "asymmetry",
    "commutator_norm",
    "edge_of_orthogonality",
    "krasulina",
    "l2_std",
    "lidar",
    "lrp_loss",
    "match_eigenbasis",
    "mode_loss_times",
    "normalise_predictor",
    "normalised_spectrum",
    "normalised_trace",
    "optimal_rank_k_predictor",
    "participation_ratio",
    "prediction_loss",
    "polar_distance",
    "quasi_orthogonality",
    "quasi_projection",
    "quasi_symmetry",
    "rankme",
    "rankme_spectrum",
    "spectra_record",
    "spectral_radius",
    "stable_rank",
    "subspace_distance",
]

Array = Any


def _spectral_norm(xp: Any, M: Array) -> float:
    return float(xp.linalg.matrix_norm(M, ord=2))


def normalise_predictor(P: Array) -> Array | None:
    """P / rho(P), so that its largest eigenvalue (in modulus) is 1; None when rho(P) = 0."""
    xp, P = _float_matrix("P", P)
    rho = float(spectral_radius(P))
    if not rho > 1e3 * xp.finfo(P.dtype).tiny:
        return None
    return P / rho


def _normalised(P: Array) -> tuple[Any, Array | None]:
    xp, P = _float_matrix("P", P)
    return xp, normalise_predictor(P)


def quasi_projection(P: Array) -> float:
    """E1 [E]: ||Q^2 - Q||_2 with Q = P / rho(P) (0 for any projection)."""
    xp, Q = _normalised(P)
    return math.nan if Q is None else _spectral_norm(xp, Q @ Q - Q)


def quasi_symmetry(P: Array) -> float:
    """E2 [E]: ||Q^T - Q||_2 with Q = P / rho(P) (0 for symmetric P)."""
    xp, Q = _normalised(P)
    return math.nan if Q is None else _spectral_norm(xp, Q.T - Q)


def quasi_orthogonality(P: Array) -> float:
    """E3 [E]: ||Q^T Q - Q||_2 with Q = P / rho(P) (0 exactly for orthogonal projections).

    [E]'s ||P_E P_E^T - P_E||_2 for its row-major P_E = Q^T. E3 <= E1 + ||Q||_2 E2 (from
    Q^T Q - Q = (Q^T - Q) Q + (Q^2 - Q)); ||Q||_2 can exceed 1 for non-normal P, and then
    E3 > E1 + E2 is possible.
    """
    xp, Q = _normalised(P)
    return math.nan if Q is None else _spectral_norm(xp, Q.T @ Q - Q)


def stable_rank(M: Array) -> float:
    """E4 [E]: ||M||_F^2 / ||M||_2^2 (k for a rank-k orthogonal projection; nan for M = 0)."""
    xp, M = _float_matrix("M", M, square=False)
    top = _spectral_norm(xp, M)
    if top == 0:
        return math.nan
    return float(xp.linalg.matrix_norm(M)) ** 2 / top**2


def normalised_trace(P: Array) -> float:
    """E4 [E Fig. 1]: tr(P / rho(P)) (the rank, for an orthogonal projection)."""
    xp, Q = _normalised(P)
    return math.nan if Q is None else float(xp.sum(xp.linalg.diagonal(Q)))


def polar_distance(P: Array, norm: Literal["fro", "spectral"] = "fro") -> float:
    """E5 [E Fig. 2]: distance from Q = P / rho(P) to its orthogonal polar factor U (Q = U H).

    Q - U = U (H - I), so the distance depends only on Q's singular values sigma_j:
    norm="fro" (default): ||Q - U||_F / ||U||_F = sqrt(mean_j (sigma_j - 1)^2), relative
    (||U||_F = sqrt(n)); norm="spectral": ||Q - U||_2 = max_j |sigma_j - 1|. 0 for orthogonal
    P (any scale); sqrt((n - k) / n) (fro) for a rank-k orthogonal projection.
    """
    if norm not in ("fro", "spectral"):
        raise ValueError(f"norm={norm!r} is invalid: use 'fro' or 'spectral'")
    xp, Q = _normalised(P)
    if Q is None:
        return math.nan
    gaps = xp.abs(xp.linalg.svdvals(Q) - 1)
    if norm == "spectral":
        return float(xp.max(gaps))
    return float(xp.sqrt(xp.mean(gaps**2)))


def edge_of_orthogonality(P: Array) -> dict[str, float]:
    """E1-E5 of P at once (one scaling): quasi_projection, quasi_symmetry,
    quasi_orthogonality, norm (||Q||_2), stable_rank, trace, polar_distance (fro)."""
    xp, Q = _normalised(P)
    keys = ("quasi_projection", "quasi_symmetry", "quasi_orthogonality", "norm")
    keys += ("stable_rank", "trace", "polar_distance")
    if Q is None:
        return dict.fromkeys(keys, math.nan)
    sv = xp.linalg.svdvals(Q)
    top = float(xp.max(sv))
    return {
        "quasi_projection": _spectral_norm(xp, Q @ Q - Q),
        "quasi_symmetry": _spectral_norm(xp, Q.T - Q),
        "quasi_orthogonality": _spectral_norm(xp, Q.T @ Q - Q),
        "norm": top,
        "stable_rank": float(xp.sum(sv**2)) / top**2,
        "trace": float(xp.sum(xp.linalg.diagonal(Q))),
        "polar_distance": float(xp.sqrt(xp.mean((sv - 1) ** 2))),
    }


# --------------------------------------------------------------------------- [T] Fig. 2


def _descending_eigh(name: str, F: Array) -> tuple[Any, Array, Array]:
    """(namespace, eigenvalues descending, eigenvectors as columns in that order)."""
    xp, F = _float_matrix(name, F)
    F = _check_symmetric(name, F, xp)
    s, U = xp.linalg.eigh(F)
    return xp, xp.flip(s, axis=0), xp.flip(U, axis=1)


def alignment(F: Array, Wp: Array) -> Array:
    """[T] Fig. 2: cos(u_j, Wp u_j) for F's unit eigenvectors u_j, eigenvalues descending.

    1 for every j when Wp commutes with F and is PSD (then Wp u_j = p_j u_j, p_j > 0);
    nan where Wp u_j = 0.
    """
    xp, _, U = _descending_eigh("F", F)
    _, Wp = _float_matrix("Wp", Wp)
    _same_shape("F", F, "Wp", Wp)
    V = Wp @ U
    lengths = xp.linalg.vector_norm(V, axis=0)
    safe = xp.where(lengths > 0, lengths, xp.ones_like(lengths))
    cos = xp.sum(U * V, axis=0) / safe
    return xp.where(lengths > 0, cos, xp.full_like(cos, math.nan))


def alignment_matrix(F: Array, Wp: Array) -> Array:
    """|U^T Wp U| in F's eigenbasis (eigenvalues descending): diagonal when [F, Wp] = 0."""
    xp, _, U = _descending_eigh("F", F)
    _, Wp = _float_matrix("Wp", Wp)
    _same_shape("F", F, "Wp", Wp)
    return xp.abs(U.T @ Wp @ U)


def asymmetry(Wp: Array) -> float:
    """[T] Fig. 2 / Fig. 8: ||Wp - Wp^T||_F / ||Wp||_F (nan for Wp = 0)."""
    xp, Wp = _float_matrix("Wp", Wp)
    size = float(xp.linalg.matrix_norm(Wp))
    return math.nan if size == 0 else float(xp.linalg.matrix_norm(Wp - Wp.T)) / size


def commutator_norm(F: Array, Wp: Array) -> float:
    """T6 / [T] Fig. 9: ||[F, Wp]||_F = ||F Wp - Wp F||_F."""
    xp, F = _float_matrix("F", F)
    _, Wp = _float_matrix("Wp", Wp)
    _same_shape("F", F, "Wp", Wp)
    return float(xp.linalg.matrix_norm(F @ Wp - Wp @ F))


# --------------------------------------------------------------------------- E6, E8


def lrp_loss(C_oo: Array, C_to: Array, C_tt: Array, reg: float = 0.0) -> float:
    """E6 [E Prop. 1]: min_Wp E||Wp f - f_a||^2 = tr(C_tt) - tr(C_to C_oo^-1 C_to^T).

    The residual of the optimal linear prediction of f_a from f (the projection of the
    target latents off the online latents' span); C_tt = E[f_a f_a^T]. reg > 0 evaluates
    the loss E||Wp f - f_a||^2 at the ridge optimum Wp = C_to (C_oo + reg I)^-1 instead.
    """
    return prediction_loss(lrp(C_oo, C_to, reg=reg), C_oo, C_to, C_tt)


def normalised_spectrum(M: Array, kind: Literal["sv", "eig"] = "sv") -> Array:
    """E8 [E Fig. 3]: M's singular values (kind="sv") or, for symmetric M, eigenvalues
    (kind="eig"), sorted descending and divided by the largest (in modulus)."""
    if kind not in ("sv", "eig"):
        raise ValueError(f"kind={kind!r} is invalid: use 'sv' or 'eig'")
    if kind == "sv":
        xp, M = _float_matrix("M", M, square=False)
        values = xp.linalg.svdvals(M)
    else:
        xp, M = _float_matrix("M", M)
        values = xp.flip(xp.linalg.eigvalsh(_check_symmetric("M", M, xp)), axis=0)
    top = xp.max(xp.abs(values))
    if not float(top) > 0:
        return xp.full_like(values, math.nan)
    return values / top


def participation_ratio(M: Array) -> float:
    """(sum_j s_j)^2 / sum_j s_j^2 over the eigenvalues s_j of symmetric M = tr(M)^2 / ||M||_F^2.

    The effective number of modes of a correlation F (n for F ~ I, 1 for rank one).
    """
    xp, M = _float_matrix("M", M)
    M = _check_symmetric("M", M, xp)
    size = float(xp.linalg.matrix_norm(M))
    return math.nan if size == 0 else float(xp.sum(xp.linalg.diagonal(M))) ** 2 / size**2


# --------------------------------------------------------------------------- eigenvector tracking


def match_eigenbasis(U_prev: Array, s: Array, U: Array) -> tuple[Array, Array]:
    """Reorder and re-sign (s, U) to follow the previous basis U_prev.

    Column j of the result is the eigenvector of U with the largest total overlap
    |u_prev_j^T u| under a one-to-one matching (Hungarian, scipy's linear_sum_assignment),
    its sign flipped so that u_prev_j^T u >= 0; s is permuted alike. Lets an eigenvalue be
    followed through training across level crossings.
    """
    xp, U = _float_matrix("U", U)
    _, U_prev = _float_matrix("U_prev", U_prev)
    _same_shape("U_prev", U_prev, "U", U)
    if tuple(s.shape) != (U.shape[1],):
        raise ValueError(f"s has shape {tuple(s.shape)}: it must be ({U.shape[1]},)")
    overlap = U_prev.T @ U  # (previous j, new k)
    cost = -np.abs(np.asarray(to_device(overlap, "cpu")))
    _, columns = linear_sum_assignment(cost)
    order = xp.asarray(columns, device=U.device)
    U = xp.take(U, order, axis=1)
    signs = xp.sign(xp.sum(U_prev * U, axis=0))
    signs = xp.where(signs == 0, xp.ones_like(signs), signs)
    return xp.take(s, order), U * signs[None, :]


def _canonical_signs(xp: Any, U: Array) -> Array:
    """+-1 per column making each column's largest-modulus entry positive (reproducible)."""
    n = U.shape[0]
    rows = xp.argmax(xp.abs(U), axis=0)
    flat = xp.reshape(U.T, (-1,))
    lead = xp.take(flat, rows + n * xp.arange(U.shape[1], device=U.device))
    return xp.where(lead < 0, -xp.ones_like(lead), xp.ones_like(lead))


class EigenTracker:
    """Follows the eigen-decomposition of a symmetric matrix (F_hat, Wp) across calls.

    ``update(M)`` returns (eigenvalues, eigenvectors as columns): on the first call sorted
    descending, each column's largest entry made positive; afterwards matched in order and
    sign to the previous call's basis (``match_eigenbasis``), so column j is the same mode
    throughout training.
    """

    def __init__(self) -> None:
        self.basis: Array | None = None

    def update(self, M: Array) -> tuple[Array, Array]:
        xp, s, U = _descending_eigh("M", M)
        if self.basis is None:
            U = U * _canonical_signs(xp, U)[None, :]
        else:
            s, U = match_eigenbasis(self.basis, s, U)
        self.basis = U
        return s, U

    def state_dict(self) -> dict[str, Array | None]:
        return {"basis": self.basis}

    def load_state_dict(self, state: dict[str, Array | None]) -> None:
        if set(state) != {"basis"}:
            raise ValueError(f"state has keys {sorted(state)}: expected ['basis']")
        self.basis = state["basis"]


def spectra_record(
    F: np.ndarray, C_to: np.ndarray, Wp: np.ndarray | None, tracker: EigenTracker
) -> dict[str, np.ndarray]:
    """One spectra record (names and shapes: docs/run_format.md), on the host in NumPy.

    From F_hat (symmetrised here), C_to = E[f_a f^T] and Wp (None: a non-linear head, then
    only F's arrays): F's spectrum, PR and E8; along ``tracker``'s modes (updated here)
    mode_s, mode_tau = u^T C_to u / s and mode_p = u^T Wp u; Wp's eigenvalues (by
    descending real part), singular values, [T] Fig. 2 alignment, asymmetry, ||[F, Wp]||
    and E1-E5. Shared by the trainer's recorder and the linear model's bridge
    (``bridge.linear_record``).
    """
    F = np.asarray(F, dtype=np.float64)
    F = (F + F.T) / 2
    C_to = np.asarray(C_to, dtype=np.float64)
    s, U = tracker.update(F)
    rec: dict[str, Any] = {
        "F_eigvals": np.linalg.eigvalsh(F)[::-1].copy(),
        "F_pr": participation_ratio(F),
        "F_spectrum_normalised": normalised_spectrum(F, kind="eig"),  # E8
        "mode_s": s,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        rec["mode_tau"] = np.einsum("ij,ik,kj->j", U, C_to, U) / s
    if Wp is not None:
        Wp = np.asarray(Wp, dtype=np.float64)
        rec["mode_p"] = np.einsum("ij,ik,kj->j", U, Wp, U)
        eig = np.linalg.eigvals(Wp)
        eig = eig[np.lexsort((-eig.imag, -eig.real))]
        rec["Wp_eigvals_real"], rec["Wp_eigvals_imag"] = eig.real, eig.imag
        rec["Wp_singvals"] = np.linalg.svd(Wp, compute_uv=False)
        rec["alignment"] = alignment(F, Wp)
        rec["alignment_matrix"] = alignment_matrix(F, Wp).astype(np.float32)
        rec["asymmetry"] = asymmetry(Wp)
        rec["commutator"] = commutator_norm(F, Wp)
        for key, value in edge_of_orthogonality(Wp).items():  # E1-E5
            rec[f"E_{key}"] = value
    return {k: np.asarray(v) for k, v in rec.items()}


# --------------------------------------------------------------------------- E7
# k-PCA [E]: with tau = 1 (target = online) and no augmentation, f_a = f, so C_to = C_tt =
# C_oo = F, and the best rank-k predictor is the orthogonal projection onto F's top-k
# eigenvectors (F is [E]'s E[Z^T Z]). Constrained to rank one, its update is Krasulina's.


def _rank(name: str, k: int, largest: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= largest:
        raise ValueError(f"{name}={k!r} is invalid: it must be an integer in [1, {largest}]")
    return k


def prediction_loss(Wp: Array, C_oo: Array, C_to: Array, C_tt: Array) -> float:
    """E6's regression loss at any predictor: E||Wp f - f_a||^2.

    = tr(Wp C_oo Wp^T) - 2 tr(Wp C_to^T) + tr(C_tt), from the second moments alone;
    ``lrp_loss`` is its minimum over all Wp, ``optimal_rank_k_predictor`` its minimiser
    over rank-k Wp (E7).
    """
    xp, Wp = _float_matrix("Wp", Wp)
    _, C_oo = _float_matrix("C_oo", C_oo)
    _, C_to = _float_matrix("C_to", C_to)
    _, C_tt = _float_matrix("C_tt", C_tt)
    for name, M in (("C_oo", C_oo), ("C_to", C_to), ("C_tt", C_tt)):
        _same_shape("Wp", Wp, name, M)
    trace_tt = xp.sum(xp.linalg.diagonal(C_tt))
    return float(xp.sum((Wp @ C_oo) * Wp) - 2 * xp.sum(Wp * C_to) + trace_tt)


def optimal_rank_k_predictor(C_oo: Array, C_to: Array, k: int, reg: float = 0.0) -> Array:
    """E7: the rank-k Wp minimising E6's loss E||Wp f - f_a||^2 (reduced-rank regression).

    With A = C_oo (+ reg I) and W* = C_to A^-1 (R3, ``lrp``), the loss is
    L(Wp) = L(W*) + ||(Wp - W*) A^(1/2)||_F^2 (+ reg ||Wp||_F^2 when reg > 0). Wp has rank k
    iff Wp A^(1/2) does, so by Eckart-Young the optimum truncates M = W* A^(1/2) =
    C_to A^(-1/2) to its top-k left singular vectors U_k, the top-k eigenvectors of
    M M^T = C_to A^-1 C_to^T = W* C_to^T:

        Wp_k = U_k U_k^T W*,   L(Wp_k) = tr(C_tt) - sum_{j <= k} lambda_j(W* C_to^T).

    It is not the rank-k truncation of W* itself (that is optimal only when A ~ I).
    E7, tau = 1 and no augmentation: C_to = C_oo = F, so W* = I, W* C_to^T = F and Wp_k is
    the orthogonal projection onto F's top-k eigenvectors ([E]'s P = Wp_k^T is the same
    symmetric matrix), with loss the sum of F's n - k smallest eigenvalues (with C_tt = F).
    Ties lambda_k = lambda_{k+1} leave the span undetermined: eigh picks one. A singular
    C_oo raises ValueError, as in ``lrp``: pass reg > 0.
    """
    xp, C_to = _float_matrix("C_to", C_to)
    k = _rank("k", k, C_to.shape[0])
    W_star = lrp(C_oo, C_to, reg=reg)  # checks C_oo (symmetric, same shape, invertible)
    G = W_star @ C_to.T
    _, U = xp.linalg.eigh((G + G.T) / 2)  # ascending: the top k are the last columns
    U_k = U[:, G.shape[0] - k :]
    return U_k @ (U_k.T @ W_star)


def _column_basis(name: str, M: Array, rank: int | None) -> tuple[Any, Array]:
    """(namespace, orthonormal basis of M's column span) from the SVD; a vector is one column.

    rank=None counts the singular values above max(shape) * eps * sigma_max (numpy's
    matrix_rank rule); rank=r keeps the top r left singular vectors.
    """
    if getattr(M, "ndim", None) == 1:
        M = M[:, None]
    xp, M = _float_matrix(name, M, square=False)
    U, s, _ = xp.linalg.svd(M, full_matrices=False)
    if not float(s[0]) > 0:
        raise ValueError(f"{name} is zero: it spans no subspace")
    if rank is None:
        rank = int(xp.sum(s > max(M.shape) * xp.finfo(M.dtype).eps * s[0]))
    return xp, U[:, : _rank("rank", rank, s.shape[0])]


def subspace_distance(A: Array, B: Array, rank: int | None = None) -> float:
    """E7: ||P_A - P_B||_2 between the orthogonal projections onto the column spans of A, B.

    For spans of equal dimension this is the sine of the largest principal angle between
    them (0 for the same span, 1 when some direction of one is orthogonal to the other);
    spans of different dimensions are at distance 1. A or B may be a vector (one column), a
    basis, or any matrix with that span (e.g. a rank-k predictor Wp). rank=None reads each
    span's dimension off the singular values; rank=r takes the top-r left singular
    directions of both (for nearly rank-deficient input).
    """
    xp, Q_A = _column_basis("A", A, rank)
    _, Q_B = _column_basis("B", B, rank)
    if Q_A.shape[0] != Q_B.shape[0]:
        raise ValueError(
            f"A has {Q_A.shape[0]} rows but B has {Q_B.shape[0]}: they must live in one space"
        )
    return _spectral_norm(xp, Q_A @ Q_A.T - Q_B @ Q_B.T)


def krasulina(samples: Array, w0: Array, lr: float | Array) -> Array:
    """E7: Krasulina's online top-eigenvector rule, the rank-1 constrained predictor update.

    For each step t, with C_t = mean_b x x^T over the batch samples[t] (one sample when
    samples is (T, n), B samples when it is (T, B, n)):

        w <- w + lr_t (C_t w - (w^T C_t w / w^T w) w).

    It is gradient descent on E6's loss with tau = 1, no augmentation and Wp = w w^T / w^T w
    (a rank-1 orthogonal projection): grad_w mean ||x - Wp x||^2 = -(2 / w^T w) (C_t w -
    (w^T C_t w / w^T w) w), so each step is -lr_t (w^T w / 2) times the gradient. The step
    is orthogonal to w, so ||w|| never decreases; w converges in direction to the top
    eigenvector of E[x x^T] for decaying lr_t (sum lr_t = inf, sum lr_t^2 < inf).

    lr: a number, or one rate per step (length T). Returns the trajectory, shape (T + 1, n),
    row 0 being w0 (of the samples' type and floating dtype).
    """
    if getattr(samples, "ndim", None) not in (2, 3):
        raise ValueError(
            f"samples has {getattr(samples, 'ndim', 'no')} dimensions: pass (T, n) or (T, B, n)"
        )
    if getattr(w0, "ndim", None) != 1 or w0.shape[0] != samples.shape[-1]:
        raise ValueError(
            f"w0 has shape {tuple(getattr(w0, 'shape', ()))}: it must be ({samples.shape[-1]},), "
            "one entry per sample coordinate"
        )
    T, n = samples.shape[0], samples.shape[-1]
    xp, X = _float_matrix("samples", samples.reshape(-1, n), square=False)
    xp_w, W = _float_matrix("w0", w0[None, :], square=False)
    if xp_w is not xp:
        raise ValueError("samples and w0 are arrays of different libraries: pass both alike")
    X = xp.reshape(X, (T, -1, n))
    w = xp.astype(W[0, :], X.dtype)
    if not float(xp.linalg.vector_norm(w)) > 0:
        raise ValueError("w0 is zero: start Krasulina's rule from a nonzero vector")
    rates = np.asarray(lr, dtype=float)
    if rates.ndim == 0:
        rates = np.full(T, float(rates))
    if rates.shape != (T,) or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"lr must be a positive number or {T} positive finite rates (one a step)")
    path = [w]
    for t in range(T):
        x = X[t, ...]
        C_w = ((x @ w) @ x) / x.shape[0]  # C_t w
        w = w + float(rates[t]) * (C_w - (xp.sum(w * C_w) / xp.sum(w * w)) * w)
        path.append(w)
    return xp.stack(path)


# --------------------------------------------------------------------------- E9-E12
# Collapse and rank diagnostics of an embedding matrix Z (N samples x d features), as
# the field computes them (theory.md section 4, E9-E12, with each paper's constants).


def _entropy_rank(xp: Any, values: Array, eps: float) -> Array:
    """E9's smooth rank over the last axis: exp(-sum_k p_k log p_k), p_k = v_k / ||v||_1 + eps.

    nan where ||v||_1 = 0 (no direction at all); values must be >= 0.
    """
    total = xp.sum(values, axis=-1, keepdims=True)
    safe = xp.where(total > 0, total, xp.ones_like(total))
    p = values / safe + eps
    plogp = xp.where(p > 0, p * xp.log(xp.where(p > 0, p, xp.ones_like(p))), xp.zeros_like(p))
    rank = xp.exp(-xp.sum(plogp, axis=-1))
    return xp.where(total[..., 0] > 0, rank, xp.full_like(rank, math.nan))


def _nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name}={value!r} is invalid: it must be a number >= 0")
    return float(value)


def _embeddings(Z: Array) -> tuple[Any, Array]:
    """(namespace, Z as a floating (N, d) matrix); one-line ValueError otherwise."""
    xp, Z = _float_matrix("Z", Z, square=False)
    if Z.shape[0] < 2:
        raise ValueError(f"Z has shape {tuple(Z.shape)}: pass (N, d) with N >= 2 samples")
    return xp, Z


def rankme(Z: Array, eps: float = 1e-7, centred: bool = False) -> float:
    """E9 RankMe (Garrido et al., ICML 2023): exp of the entropy of Z's singular values.

    exp(-sum_k p_k log p_k) with p_k = sigma_k(Z) / ||sigma(Z)||_1 + eps, Z (N, d) the
    embeddings (rows samples); the paper's eps = 1e-7 and uncentred Z (centred=True removes
    the column means first, as some libraries do). k equal singular values give k; a
    constant Z gives 1 uncentred; a zero Z (or a constant one, centred) gives nan.
    """
    eps = _nonnegative("eps", eps)
    xp, raw = _embeddings(Z)
    sigma = xp.linalg.svdvals(raw - xp.mean(raw, axis=0, keepdims=True) if centred else raw)
    noise = max(raw.shape) * xp.finfo(raw.dtype).eps * float(xp.linalg.matrix_norm(raw))
    if not float(xp.max(sigma)) > noise:  # zero, or constant and centred: round-off only
        return math.nan
    return float(_entropy_rank(xp, sigma, eps))


def rankme_spectrum(s: Array, eps: float = 1e-7) -> Array:
    """E9 on predicted spectra: RankMe of embeddings whose second moment E[f f^T] has
    eigenvalues s (last axis; any leading axes, e.g. a flow's time axis).

    N such samples have singular values sqrt(N s_j), and RankMe's normalisation drops N,
    so this is the entropy rank of sqrt(s): applied to a flow's s_j(t) (T7, N2; s_j the
    eigenvalues of F = W X W^T) it predicts rankme(Z, centred=False) of the features, as
    computed from F_hat. Negative s (round-off) count as 0. Returns an array of shape
    s.shape[:-1] (a 0-d array for one spectrum).
    """
    xp, S = _float_matrix("s", s.reshape(-1, s.shape[-1]), square=False)
    root = xp.sqrt(xp.where(S > 0, S, xp.zeros_like(S)))
    return xp.reshape(_entropy_rank(xp, root, _nonnegative("eps", eps)), s.shape[:-1])


def _group_index(groups: Any, n: int) -> np.ndarray:
    """Group ids (any values, one per row) -> dense integer labels 0..G-1 on the host."""
    ids = np.asarray(to_device(groups, "cpu") if hasattr(groups, "device") else groups)
    if ids.shape != (n,):
        raise ValueError(
            f"groups has shape {ids.shape}: it must be ({n},), the source-image id of each row"
        )
    return np.unique(ids, return_inverse=True)[1].reshape(n)


def lidar(Z: Array, groups: Any, delta: float = 1e-4, eps: float = 1e-8) -> float:
    """E10 LiDAR (Thilak et al., ICLR 2024): the entropy rank (E9) of the LDA matrix.

    Rows of Z (N, d) sharing a ``groups`` id are views of one source image (ids are
    matched by value, never by position in the batch). With group means mu_g (G groups),
    their mean mu = mean_g mu_g and N_g rows in group g:

        Sigma_b = sum_g (mu_g - mu)(mu_g - mu)^T / (G - 1)
        Sigma_w = sum_g sum_{i in g} (z_i - mu_g)(z_i - mu_g)^T / (N - G) + delta I
        LiDAR   = exp(-sum_k p_k log p_k),  p_k = lambda_k / ||lambda||_1 + eps,

    lambda the d eigenvalues of Sigma_w^-1/2 Sigma_b Sigma_w^-1/2 (the paper's 1/(n (q - 1))
    for n images of q views each; delta = 1e-4 and eps = 1e-8 its constants). Sigma_b has
    rank <= G - 1, so LiDAR <= min(d, G - 1) up to eps terms; nan when all group means
    coincide (a collapsed embedding).

    Computed exactly but cheaply: with Sigma_b = B B^T (B = the centred means^T / sqrt(G -
    1)), the nonzero eigenvalues are those of the G x G matrix B^T Sigma_w^-1 B, the rest
    0. LiDAR is unchanged by any rotation of feature space, so it depends on Z only through
    the Gram matrix of its centred rows: with more features than rows (d > N) the rows are
    replaced by N coordinates with the same Gram matrix (U S^1/2 from its eigh), at O(N^2 d)
    cost rather than O(d^3).
    """
    xp, Z = _embeddings(Z)
    n, d = Z.shape
    labels = _group_index(groups, n)
    G = int(labels.max()) + 1
    if not 2 <= G < n:
        raise ValueError(
            f"groups has {G} distinct ids for {n} rows: LiDAR needs at least 2 groups and "
            "one with 2 or more views"
        )
    delta = _nonnegative("delta", delta)
    Z = Z - xp.mean(Z, axis=0, keepdims=True)  # both scatters are translation-invariant
    if d > n:  # (N, N) coordinates with the same Gram matrix Z Z^T
        s, U = xp.linalg.eigh(Z @ Z.T)
        Z = U * xp.sqrt(xp.where(s > 0, s, xp.zeros_like(s)))[None, :]
    r = Z.shape[1]
    onehot = xp.asarray(np.eye(G)[labels], dtype=Z.dtype, device=Z.device)  # (N, G)
    means = (onehot.T @ Z) / xp.sum(onehot, axis=0)[:, None]  # (G, r)
    B = (means - xp.mean(means, axis=0, keepdims=True)).T / math.sqrt(G - 1)  # (r, G)
    within = Z - onehot @ means
    Sigma_w = within.T @ within / (n - G) + delta * xp.eye(r, dtype=Z.dtype, device=Z.device)
    try:
        K = B.T @ xp.linalg.solve(Sigma_w, B)  # (G, G)
    except (ValueError, RuntimeError):  # numpy's and torch's LinAlgError
        raise ValueError("Sigma_w is singular: pass delta > 0 (LiDAR's default is 1e-4)") from None
    lam = xp.flip(xp.linalg.eigvalsh((K + K.T) / 2), axis=0)[: min(G, d)]
    lam = xp.where(lam > 0, lam, xp.zeros_like(lam))  # PSD up to round-off
    lam = xp.concat([lam, xp.zeros(d - lam.shape[0], dtype=lam.dtype, device=lam.device)])
    return float(_entropy_rank(xp, lam, _nonnegative("eps", eps)))


def alpha_req(eigvals: Array, k_min: int = 6, k_max: int = 100) -> float:
    """E11 alpha-ReQ (Agrawal et al., NeurIPS 2022): the power-law exponent alpha of an
    eigenspectrum lambda_k ~ k^-alpha (k = 1, 2, ... in descending order).

    Least squares of log lambda_k on -alpha log k + c over ranks k_min <= k <= k_max
    (1-based, inclusive; clipped to the spectrum's length), weighted by 1/k, as the
    authors' reference code (reptrix: indices 5..99, i.e. k = 6..100, the defaults here).
    Non-positive eigenvalues in the range are left out of the fit; nan when fewer than two
    remain. Pass the eigenvalues of the centred feature covariance.
    """
    if getattr(eigvals, "ndim", None) != 1:
        raise ValueError("eigvals must be a 1-D array of eigenvalues (e.g. of a covariance)")
    for name, k in (("k_min", k_min), ("k_max", k_max)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"{name}={k!r} is invalid: it must be an integer rank >= 1")
    if k_max <= k_min:
        raise ValueError(f"k_max={k_max} must exceed k_min={k_min}: the fit needs two ranks")
    values = -np.sort(-np.asarray(to_device(eigvals, "cpu"), dtype=np.float64))
    if not np.all(np.isfinite(values)):
        raise ValueError("eigvals has non-finite entries (nan or inf): check the spectrum")
    k = np.arange(1, values.shape[0] + 1)
    keep = (k >= k_min) & (k <= k_max) & (values > 0)
    if keep.sum() < 2:
        return math.nan
    x, y, w = np.log(k[keep]), np.log(values[keep]), 1.0 / k[keep]
    slope = np.polyfit(x, y, 1, w=np.sqrt(w))[0]  # polyfit squares its weights
    return float(-slope)


def l2_std(Z: Array) -> float:
    """E12 SimSiam's collapse measure (Chen & He, CVPR 2021): the std over samples of the
    l2-normalised rows z / ||z||, averaged over the d coordinates (unbiased std, as torch).

    0 for a collapsed (constant-direction) Z; ~1/sqrt(d) for isotropic Gaussian rows
    (each coordinate of a uniform unit vector has variance 1/d). Zero rows count as 0.
    """
    xp, Z = _embeddings(Z)
    lengths = xp.linalg.vector_norm(Z, axis=1, keepdims=True)
    U = Z / xp.where(lengths > 0, lengths, xp.ones_like(lengths))
    return float(xp.mean(xp.std(U, axis=0, correction=1)))


def mode_loss_times(t: Array, s: Array, floor: float = 1e-3) -> np.ndarray:
    """The predicted time each mode is lost (E9 on a flow): for a flow's spectrum s (len(t),
    ..., d) (T7, N2: s_j(t) of ``sol.s``), the first time from which s_j / max_k s_k stays
    below ``floor`` to the end of t, per mode (shape s.shape[1:]); nan for a mode never lost.
    A lost mode's share of RankMe is ~sqrt(floor) of the top mode's.
    """
    t = np.asarray(t, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if t.ndim != 1 or s.ndim < 2 or s.shape[0] != t.shape[0]:
        raise ValueError(
            f"t has shape {t.shape} and s {s.shape}: pass t (T,) and s (T, ..., d), "
            "e.g. a solution's sol.t and sol.s"
        )
    if not 0 < floor < 1:
        raise ValueError(f"floor={floor!r} is invalid: it must be in (0, 1)")
    top = np.max(s, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        above = s / top >= floor  # nan (a zero or blown-up spectrum) counts as lost
    # the last time a mode was above the floor; lost from the next sample on
    ever_above = np.flip(np.logical_or.accumulate(np.flip(above, 0), 0), 0)
    last_above = np.sum(ever_above, axis=0)  # number of leading samples up to the last one
    times = np.full(s.shape[1:], math.nan)
    lost = last_above < t.shape[0]
    times[lost] = t[last_above[lost]]
    return times
