"""Closed-form predictors R1-R10 (theory.md section 3), written once for NumPy and torch.

Every function takes NumPy arrays or torch tensors (CPU or GPU, float32 or float64) and
returns the same type: the code goes through ``array_api_compat.array_namespace`` and the
namespace's ``linalg`` extension. Only the symmetric eigensolver (``eigh``) is used.

Conventions (theory.md): column vectors, f = W x (online), f_a = Wa x (target), and

- ``F`` = C_oo = E[f f^T], the online correlation (DirectPred's F_hat), symmetric PSD;
- ``C_to`` = E[f_a f^T], the target-online cross-correlation (f_a of one view, f of the other).

The predictor acts as ``Wp @ f``. [E] writes row-major latents Z (batch x d) and
predictions ``Z P``: its matrices are the transposes of ours. Translated once, here:
[E]'s Z^T Z is our F, its Sigma = Z^T Z' is our C_to^T, and its P is our Wp^T. Matrix
functions (square roots) commute with the transpose, so [E]'s P = Sigma^(1/2) reads
Wp = C_to^(1/2) in our convention; its optimum P = (Z^T Z)^-1 Z^T Z' reads
Wp = C_to C_oo^-1 (R3).

Which input each rule takes (``source`` of the registry, see ``get_rule``):

- R1 DirectPred and R2 DirectSet / DirectCopy ([T], [W]): F.
- R3 LRP and R4 Neumann ([E]): both F (= C_oo) and C_to.
- R5 Visser, R6 Newton-Schulz, R7 NS^2, R8 Stiefel ([E]): [E]'s Sigma, which we read as
  the cross-correlation C_to by default (R8 orthogonalises Sigma through Sigma^T Sigma, so
  Sigma is not symmetric: the cross term; and R4 without its second term is "DirectCopy on
  C_to"); ``source="F"`` applies the same rule to F instead (then R6 is DirectPred's
  square root computed without an eigendecomposition).

Estimates of F and C_to over training: ``RunningCorrelation``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from array_api_compat import array_namespace

__all__ = [
    "PartitionedCorrelation",
    "PartitionedRule",
    "PredictorRule",
    "RunningCorrelation",
    "available_rules",
    "directcopy",
    "directpred",
    "directset",
    "get_rule",
    "lrp",
    "needs_cross",
    "neumann",
    "newton_schulz",
    "ns2",
    "ridge",
    "spectral_radius",
    "stiefel",
    "visser",
]

Array = Any  # a NumPy array or a torch tensor

# --------------------------------------------------------------------------- input checks


def _float_matrix(name: str, M: Array, square: bool = True) -> tuple[Any, Array]:
    """(namespace, M as a floating array); one-line ValueError when M is not a finite matrix."""
    try:
        xp = array_namespace(M)
    except TypeError as err:
        raise ValueError(
            f"{name} is a {type(M).__name__}: pass a NumPy array or a torch tensor"
        ) from err
    if M.ndim != 2:
        raise ValueError(f"{name} has shape {tuple(M.shape)}: it must be a 2-D matrix")
    if square and M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} has shape {tuple(M.shape)}: it must be square")
    if not xp.isdtype(M.dtype, "real floating"):
        M = xp.astype(M, xp.float64)
    if not bool(xp.all(xp.isfinite(M))):
        raise ValueError(f"{name} has non-finite entries (nan or inf): check the estimate")
    return xp, M


def _float_vector(name: str, v: Array) -> tuple[Any, Array]:
    """(namespace, v as a floating 1-D array); one-line ValueError otherwise."""
    xp, M = _float_matrix(name, v[None, :] if getattr(v, "ndim", 0) == 1 else v, square=False)
    if M.shape[0] != 1:
        raise ValueError(f"{name} has shape {tuple(v.shape)}: it must be a 1-D array")
    return xp, M[0]


def _check_symmetric(name: str, M: Array, xp: Any) -> Array:
    """M symmetrised, after checking it is symmetric to a tolerance set by its dtype."""
    scale = float(xp.max(xp.abs(M)))
    gap = float(xp.max(xp.abs(M - M.T)))
    if gap > 1e3 * xp.finfo(M.dtype).eps * max(scale, 1e-300):
        raise ValueError(
            f"{name} is not symmetric (max |{name} - {name}^T| = {gap:.3g}, max |{name}| = "
            f"{scale:.3g}): pass a correlation matrix"
        )
    return (M + M.T) / 2


def _same_shape(name_a: str, A: Array, name_b: str, B: Array) -> None:
    if tuple(A.shape) != tuple(B.shape):
        raise ValueError(
            f"{name_a} has shape {tuple(A.shape)} but {name_b} has {tuple(B.shape)}: "
            "they must match"
        )


def _eye(xp: Any, M: Array) -> Array:
    return xp.eye(M.shape[0], dtype=M.dtype, device=M.device)


def _positive_int(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}={n!r} is invalid: it must be an integer >= 1")
    return n


def _finite(name: str, value: float, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid: it must be a finite number")
    if low is not None and value < low:
        raise ValueError(f"{name}={value!r} is invalid: it must be >= {low}")
    return float(value)


# --------------------------------------------------------------------------- shared linear algebra


def spectral_radius(M: Array, squarings: int = 20) -> Array:
    """max_j |lambda_j(M)| without a general eigensolver, by repeated squaring.

    M is squared ``squarings`` times with Frobenius renormalisation: A = M^N / ||M^N||_F,
    N = 2^squarings. Two estimates come out of it:
    - Gelfand's g = ||M^N||_F^(1/N) (accumulated in logs), always convergent, with a
      relative error ~log(C n N^(m-1)) / N (C: non-normality, m: largest Jordan block);
    - the one-step ratio r = ||M A||_F = ||M^(N+1)||_F / ||M^N||_F, exact up to
      (|lambda_2| / rho)^(2N) when M is normal (symmetric, orthogonal), or when its dominant
      eigenvalue is real and semisimple, whatever the multiplicity.
    r is returned when it agrees with g within 4 log(2n) / N (g's own accuracy), g
    otherwise (e.g. a non-normal complex dominant pair). Returns a 0-d array of M's
    namespace (no host synchronisation); 0 for M = 0 or nilpotent M.
    """
    xp, M = _float_matrix("M", M)
    tiny = xp.finfo(M.dtype).tiny
    norm = xp.maximum(xp.linalg.matrix_norm(M), tiny)
    log_g, A = xp.log(norm), M / norm
    weight = 1.0
    for _ in range(_positive_int("squarings", squarings)):
        A = A @ A
        norm = xp.maximum(xp.linalg.matrix_norm(A), tiny)
        weight /= 2.0
        log_g, A = log_g + weight * xp.log(norm), A / norm
    g = xp.exp(log_g)
    r = xp.linalg.matrix_norm(M @ A)
    tolerance = 4 * math.log(2 * M.shape[0]) * weight
    return xp.where(xp.abs(r - g) <= tolerance * g, r, g)


def _power_lambda_max(xp: Any, F: Array, iterations: int = 100, diagonal: bool = False) -> Array:
    """Rayleigh quotient after ``iterations`` power steps on symmetric PSD F (0 for F = 0).

    diagonal=True: F is the diagonal f of a diagonal matrix; then the same quotient in
    closed form, v_k = f^k v_0: sum f^(2k+1) v_0^2 / sum f^(2k) v_0^2 (scaled by max |f|).
    """
    start = np.random.default_rng(0).standard_normal(F.shape[0])
    v = xp.asarray(start, dtype=F.dtype, device=F.device)
    tiny = xp.finfo(F.dtype).tiny
    if diagonal:
        weight = v**2 * (xp.abs(F) / xp.maximum(xp.max(xp.abs(F)), tiny)) ** (2 * iterations)
        return xp.sum(weight * F) / xp.maximum(xp.sum(weight), tiny)
    for _ in range(iterations):
        v = v / xp.maximum(xp.linalg.vector_norm(v), tiny)
        v = F @ v
    v = v / xp.maximum(xp.linalg.vector_norm(v), tiny)
    return xp.sum(v * (F @ v))


def _psd_eigh(name: str, F: Array) -> tuple[Any, Array, Array]:
    """(namespace, eigenvalues ascending, eigenvectors) of the symmetric matrix F."""
    xp, F = _float_matrix(name, F)
    F = _check_symmetric(name, F, xp)
    s, U = xp.linalg.eigh(F)
    return xp, s, U


def _from_spectrum(U: Array, p: Array) -> Array:
    """U diag(p) U^T."""
    return (U * p[None, :]) @ U.T


@dataclass(frozen=True)
class _Algebra:
    """Products of square matrices, or of diagonal matrices held as their diagonals.

    The [E] iterations are written once against it: on a diagonal input every product of
    diagonal matrices is diagonal, so the same iteration runs elementwise in O(n).
    """

    mm: Callable[[Array, Array], Array]
    one: Array  # the identity
    fro: Callable[[Array], Array]  # Frobenius norm
    T: Callable[[Array], Array]  # transpose


def _matrices(xp: Any, M: Array) -> _Algebra:
    return _Algebra(lambda A, B: A @ B, _eye(xp, M), xp.linalg.matrix_norm, lambda A: A.T)


def _diagonals(xp: Any, d: Array) -> _Algebra:
    return _Algebra(lambda a, b: a * b, xp.ones_like(d), xp.linalg.vector_norm, lambda a: a)


# --------------------------------------------------------------------------- R1-R8


def directpred(
    F: Array,
    eps: float = 0.1,
    variant: Literal["code", "paper"] = "code",
    c: float | Array = 0.0,
) -> Array:
    """R1, DirectPred [T Eqs. 18-19]: Wp = U diag(p) U^T from F = U diag(s) U^T (eigh).

    variant="code" (the reference code, default): p_j = sqrt(max(s_j - c_j, 0) / s_max) + eps,
    then p_j >= 1e-4. variant="paper": p_j = sqrt(max(s_j - c_j, 0)) + eps * s_max.
    s_max = max_j s_j (taken as 1 when F has no positive eigenvalue, so F = 0 gives
    p_j = max(eps, 1e-4) in the code variant). c (default 0): the c_j variant
    p_j = sqrt(max(s_j - c_j, 0)) suggested by T8; a number, or one value per eigenvalue in
    ascending order (eigh's order).
    """
    if variant not in ("code", "paper"):
        raise ValueError(f"variant={variant!r} is invalid: use 'code' or 'paper'")
    eps = _finite("eps", eps)
    xp, s, U = _psd_eigh("F", F)
    if not isinstance(c, (int, float)):
        c = xp.asarray(c, dtype=s.dtype, device=s.device)
        if tuple(c.shape) != tuple(s.shape):
            raise ValueError(
                f"c has shape {tuple(c.shape)}: it must be a number or ({s.shape[0]},)"
            )
    return _from_spectrum(U, _directpred_p(xp, s, eps, variant, c))


def _directpred_p(xp: Any, s: Array, eps: float, variant: str, c: float | Array) -> Array:
    """R1's p_j from F's eigenvalues s_j (any order; c matched to s)."""
    s_max = xp.max(s)
    s_max = xp.where(s_max > 0, s_max, xp.ones_like(s_max))
    shifted = xp.maximum(s - c, xp.zeros_like(s))
    if variant == "code":
        return xp.maximum(xp.sqrt(shifted / s_max) + eps, xp.full_like(s, 1e-4))
    return xp.sqrt(shifted) + eps * s_max


def directset(
    F: Array,
    alpha: float = 1.0,
    eps: float = 0.1,
    norm: Literal["spectral", "fro"] = "spectral",
) -> Array:
    """R2, DirectSet(alpha) [W]: Wp = F^alpha / ||F^alpha|| + eps I.

    alpha = 1/2 is DirectPred's square root, alpha = 1 is DirectCopy. F^alpha is taken on
    eigh's eigenvalues clipped at 0, except for alpha = 1, which needs no decomposition:
    then norm="spectral" takes lambda_max from 100 power iterations (matrix-vector products
    from a fixed Gaussian start; the Rayleigh quotient, a lower bound, exact up to
    (lambda_2 / lambda_max)^200 and otherwise within the spread of the top eigenvalues).
    norm="spectral": lambda_max(F^alpha); norm="fro": ||F^alpha||_F. F = 0 gives eps I.
    """
    if norm not in ("spectral", "fro"):
        raise ValueError(f"norm={norm!r} is invalid: use 'spectral' or 'fro'")
    alpha = _finite("alpha", alpha)
    if alpha <= 0:
        raise ValueError(f"alpha={alpha!r} is invalid: it must be > 0")
    eps = _finite("eps", eps)
    if alpha == 1.0:
        xp, M = _float_matrix("F", F)
        M = _check_symmetric("F", M, xp)
        scale = xp.linalg.matrix_norm(M) if norm == "fro" else _power_lambda_max(xp, M)
    else:
        xp, s, U = _psd_eigh("F", F)
        return _from_spectrum(U, _directset_p(xp, s, alpha, eps, norm))
    scale = xp.maximum(scale, xp.asarray(xp.finfo(M.dtype).tiny, dtype=M.dtype, device=M.device))
    return M / scale + eps * _eye(xp, M)


def _directset_p(xp: Any, s: Array, alpha: float, eps: float, norm: str) -> Array:
    """R2's p_j from the eigenvalues s_j of F (for alpha = 1, F diagonal: the same
    normalisation as the matrix path, power iterations included)."""
    if alpha == 1.0:
        M = s
        scale = (
            xp.linalg.vector_norm(s) if norm == "fro" else _power_lambda_max(xp, s, diagonal=True)
        )
    else:
        M = xp.maximum(s, xp.zeros_like(s)) ** alpha
        scale = xp.max(M) if norm == "spectral" else xp.linalg.vector_norm(M)
    scale = xp.maximum(scale, xp.asarray(xp.finfo(s.dtype).tiny, dtype=s.dtype, device=s.device))
    return M / scale + eps


def directcopy(F: Array, eps: float = 0.1, norm: Literal["spectral", "fro"] = "spectral") -> Array:
    """R2 with alpha = 1, DirectCopy [W]: Wp = F / ||F|| + eps I (no eigendecomposition)."""
    return directset(F, alpha=1.0, eps=eps, norm=norm)


def lrp(C_oo: Array, C_to: Array, reg: float = 0.0) -> Array:
    """R3, the optimal linear predictor [E Prop. 1]: Wp = C_to (C_oo + reg I)^-1.

    It minimises E||Wp f - f_a||^2 (+ reg ||Wp||_F^2); [E]'s row-major (Z^T Z)^-1 Z^T Z'
    transposed. Computed by ``solve`` (never an inverse). A singular C_oo (a collapsed
    mode) raises ValueError: pass reg > 0, the ridge-regularised optimum [T] Table 1
    plugs in. A nearly singular C_oo gives a large but finite Wp.
    """
    xp, C_oo = _float_matrix("C_oo", C_oo)
    C_oo = _check_symmetric("C_oo", C_oo, xp)
    _, C_to = _float_matrix("C_to", C_to)
    _same_shape("C_oo", C_oo, "C_to", C_to)
    reg = _finite("reg", reg, low=0.0)
    A = C_oo + reg * _eye(xp, C_oo) if reg > 0 else C_oo
    try:
        Wp_T = xp.linalg.solve(A, C_to.T)  # A Wp^T = C_to^T  <=>  Wp A = C_to (A symmetric)
    except xp.linalg.LinAlgError as err:
        raise ValueError(
            "C_oo is singular (a collapsed mode): pass reg > 0 to solve with C_oo + reg I"
        ) from err
    if not bool(xp.all(xp.isfinite(Wp_T))):
        raise ValueError(
            "C_oo is singular (a collapsed mode): pass reg > 0 to solve with C_oo + reg I"
        )
    return Wp_T.T


def neumann(C_oo: Array, C_to: Array) -> Array:
    """R4, the Neumann expansion [E]: (C_oo)^-1 ~ 2I - C_oo, so Wp = 2 C_to - C_to C_oo.

    Close to R3 when C_oo is near I (the error is O(||C_oo - I||^2)); no normalisation is
    applied, so the features' scale matters.
    """
    xp, C_oo = _float_matrix("C_oo", C_oo)
    C_oo = _check_symmetric("C_oo", C_oo, xp)
    _, C_to = _float_matrix("C_to", C_to)
    _same_shape("C_oo", C_oo, "C_to", C_to)
    return 2 * C_to - C_to @ C_oo


def visser(S: Array, step: float | None = None, n: int = 50) -> Array:
    """R5, the Visser iteration [E]: P_0 = I/(2h), P_{k+1} = P_k + h (S - P_k^2) -> S^(1/2).

    step=None (default): S is first divided by c = ||S||_F (so its eigenvalues lie in
    [-1, 1]) and h = 1/2 is used; the result is rescaled by sqrt(c). For a symmetric PSD S
    this converges monotonically, eigenvalue by eigenvalue: the error of the mode s (in
    units of c) contracts by 1 - h (p_k + sqrt(s)) in [0, 1) each step, fast for large s
    and slowly (~1/k) for s -> 0. h = 1/2 is the largest step with that guarantee,
    h <= 1 / (2 sqrt(lambda_max)); past h sqrt(lambda_max) = 1 the root is unstable
    (the top mode cycles or lands on -sqrt(s)).
    step=h given: the raw iteration on S, which converges monotonically for symmetric PSD
    S when h <= 1 / (2 sqrt(lambda_max(S))).
    """
    xp, S = _float_matrix("S", S)
    return _visser(xp, S, step, _positive_int("n", n), _matrices(xp, S))


def _visser(xp: Any, S: Array, step: float | None, n: int, alg: _Algebra) -> Array:
    if step is None:
        c = alg.fro(S)
        c = xp.maximum(c, xp.asarray(xp.finfo(S.dtype).tiny, dtype=S.dtype, device=S.device))
        S_n, h = S / c, 0.5
    else:
        h = _finite("step", step)
        if h <= 0:
            raise ValueError(f"step={step!r} is invalid: it must be > 0")
        S_n, c = S, None
    P = alg.one / (2 * h)
    for _ in range(n):
        P = P + h * (S_n - alg.mm(P, P))
    return P if c is None else P * xp.sqrt(c)


def newton_schulz(S: Array, n: int = 9) -> tuple[Array, Array]:
    """R6, coupled Newton-Schulz [E]: (~S^(1/2), ~S^(-1/2)).

    A_0 = S/||S||_F, B_0 = I; A_{k+1} = A_k (3I - B_k A_k)/2, B_{k+1} = (3I - B_k A_k) B_k/2;
    returns (A_n sqrt(||S||_F), B_n / sqrt(||S||_F)). Converges quadratically for a
    symmetric PSD S (eigenvalues of A_0 in (0, 1]); an eigenvalue far below ||S||_F needs
    more iterations (it grows ~2.25x a step until it is near 1), so with few iterations
    small modes are damped: a soft projection ([E] Fig. 3).
    """
    xp, S = _float_matrix("S", S)
    return _newton_schulz(xp, S, _positive_int("n", n), _matrices(xp, S))


def _newton_schulz(xp: Any, S: Array, n: int, alg: _Algebra) -> tuple[Array, Array]:
    c = alg.fro(S)
    if not float(c) > 0:
        raise ValueError("S is zero: its square root is 0 and its inverse square root undefined")
    A, B = S / c, alg.one
    for _ in range(n):
        T = (3 * alg.one - alg.mm(B, A)) / 2
        A, B = alg.mm(A, T), alg.mm(T, B)
    root = xp.sqrt(c)
    return A * root, B / root


def ns2(S: Array, n: int = 7) -> Array:
    """R7, NS^2 [E]: Newton-Schulz applied twice (n iterations each), ~S^(1/4)."""
    root, _ = newton_schulz(S, n=n)
    return newton_schulz(root, n=n)[0]


def stiefel(S: Array, n: int = 9) -> Array:
    """R8, Stiefel [E]: the orthogonal polar factor of S, up to scale, by Newton-Schulz.

    B_n ~ (S S^T)^(-1/2) by ``newton_schulz(S S^T, n)``; Wp = B_n S / ||B_n||_F. With S =
    C_to this is [E]'s P = Sigma B_n (Sigma = Z^T Z' = C_to^T, B_n ~ (Sigma^T Sigma)^(-1/2)),
    transposed to our convention: Wp = (C_to C_to^T)^(-1/2) C_to = U V^T for C_to = U D V^T.
    Singular values far below the largest are not fully orthogonalised in n steps (soft
    projection).
    """
    xp, S = _float_matrix("S", S)
    return _stiefel(xp, S, _positive_int("n", n), _matrices(xp, S))


def _stiefel(xp: Any, S: Array, n: int, alg: _Algebra) -> Array:
    _, B = _newton_schulz(xp, alg.mm(S, alg.T(S)), n, alg)
    return alg.mm(B, S) / alg.fro(B)


def ridge(Wp: Array, alpha: float) -> Array:
    """R9, ridge [E]: Wp + alpha I ([E]'s grid: alpha in {0, .15, .3, .45, .6, .75, .9})."""
    xp, Wp = _float_matrix("Wp", Wp)
    return Wp + _finite("alpha", alpha) * _eye(xp, Wp)


# --------------------------------------------------------------------------- registry


def _newton_schulz_sqrt(S: Array, n: int = 9) -> Array:
    return newton_schulz(S, n=n)[0]


# name -> (function, which matrices it takes: "F", "both" (C_oo, C_to) or "sigma" (one of them))
_RULES: dict[str, tuple[Callable[..., Array], str]] = {
    "directpred": (directpred, "F"),
    "directset": (directset, "F"),
    "directcopy": (directcopy, "F"),
    "lrp": (lrp, "both"),
    "neumann": (neumann, "both"),
    "visser": (visser, "sigma"),
    "newton_schulz": (_newton_schulz_sqrt, "sigma"),
    "ns2": (ns2, "sigma"),
    "stiefel": (stiefel, "sigma"),
}


def _lrp_diagonal(f: Array, c: Array, reg: float = 0.0) -> Array:
    xp = array_namespace(f)
    if not bool(xp.all(f + reg != 0)):
        raise ValueError(
            "C_oo is singular (a collapsed mode): pass reg > 0 to solve with C_oo + reg I"
        )
    return c / (f + reg)


def _diagonal_rule(core: Callable[..., Array]) -> Callable[..., Array]:
    """An [E] iteration run on diagonals (``_Algebra``): f(d, **params) -> diagonal."""

    def run(d: Array, **params: Any) -> Array:
        return core(array_namespace(d), d, alg=_diagonals(array_namespace(d), d), **params)

    return run


# name -> the rule on diagonal inputs (their diagonals in, Wp's diagonal out), same params
_SPECTRA: dict[str, Callable[..., Array]] = {
    "directpred": lambda f, eps=0.1, variant="code", c=0.0: _directpred_p(
        array_namespace(f), f, eps, variant, c
    ),
    "directset": lambda f, alpha=1.0, eps=0.1, norm="spectral": _directset_p(
        array_namespace(f), f, alpha, eps, norm
    ),
    "directcopy": lambda f, eps=0.1, norm="spectral": _directset_p(
        array_namespace(f), f, 1.0, eps, norm
    ),
    "lrp": _lrp_diagonal,
    "neumann": lambda f, c: 2 * c - c * f,
    "visser": _diagonal_rule(lambda xp, d, alg, step=None, n=50: _visser(xp, d, step, n, alg)),
    "newton_schulz": _diagonal_rule(lambda xp, d, alg, n=9: _newton_schulz(xp, d, n, alg)[0]),
    "ns2": _diagonal_rule(
        lambda xp, d, alg, n=7: _newton_schulz(xp, _newton_schulz(xp, d, n, alg)[0], n, alg)[0]
    ),
    "stiefel": _diagonal_rule(lambda xp, d, alg, n=9: _stiefel(xp, d, n, alg)),
}
_ALIASES = {"ns": "newton_schulz", "ne": "neumann", "copy": "directcopy"}
_SOURCES = ("C_to", "F")


def available_rules() -> list[str]:
    """The rule names ``get_rule`` accepts (aliases: ns, ne, copy)."""
    return list(_RULES)


def _rule_parameters(name: str) -> list[str]:
    function, inputs = _RULES[name]
    names = list(inspect.signature(function).parameters)[1 if inputs != "both" else 2 :]
    if inputs == "sigma":
        names.append("source")
    return [*names, "ridge", "ema"]


class PredictorRule:
    """A configured R-rule: ``rule(F, C_to) -> Wp`` (F = C_oo; C_to may be None when unused).

    Built by ``get_rule``. ``needs_cross`` says whether the rule reads C_to (so a trainer
    accumulates it only then). ``ridge`` (R9) adds ridge * I; ``ema`` (R10, default off)
    smooths the output across calls, Wp_ema <- ema Wp_ema + (1 - ema) Wp (the first output
    stored as is). With ema the rule is stateful (``state_dict`` / ``load_state_dict``
    / ``reset``); do not use it inside an ODE solver's right-hand side.

    ``spectrum(f, c)`` is the rule on diagonal inputs F = diag(f), C_to = diag(c), without
    a decomposition: the diagonal of ``rule(diag(f), diag(c))`` (every R-rule maps
    diagonal inputs to a diagonal Wp), available when ``has_spectrum`` (no ema, and for
    R1 a scalar c: a per-eigenvalue c follows eigh's order, which ties leave undefined).
    """

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        function, inputs = _RULES[name]
        params = dict(params)
        self.name = name
        self.ridge = _finite("ridge", params.pop("ridge", 0.0))
        ema = params.pop("ema", None)
        if ema is not None:
            ema = _finite("ema", ema)
            if not 0.0 <= ema < 1.0:
                raise ValueError(f"ema={ema!r} is invalid: it must be in [0, 1), or None (off)")
        self.ema = ema or None
        source = params.pop("source", "C_to")
        if inputs == "sigma" and source not in _SOURCES:
            raise ValueError(f"source={source!r} is invalid: use 'C_to' (default) or 'F'")
        self.inputs = source if inputs == "sigma" else inputs
        self.needs_cross = self.inputs in ("both", "C_to")
        self._function = function
        self._params = params
        self.params = {**params, "ridge": self.ridge, "ema": self.ema}
        if inputs == "sigma":
            self.params["source"] = source
        self._state: Array | None = None
        self.has_spectrum = self.ema is None and isinstance(params.get("c", 0.0), (int, float))
        if all(isinstance(v, (int, float, str, type(None))) for v in params.values()):
            self._raw(np.eye(2), np.eye(2))  # a dry run validates the values at build time

    def _raw(self, F: Array, C_to: Array | None) -> Array:
        if self.inputs == "F":
            return self._function(F, **self._params)
        if self.inputs == "C_to":
            return self._function(C_to, **self._params)
        return self._function(F, C_to, **self._params)

    def __call__(self, F: Array, C_to: Array | None = None) -> Array:
        if self.needs_cross and C_to is None:
            raise ValueError(
                f"rule {self.name!r} needs the cross-correlation C_to = E[f_a f^T]: pass it"
            )
        Wp = self._raw(F, C_to)
        if self.ridge:
            Wp = ridge(Wp, self.ridge)
        if self.ema is not None:
            if self._state is not None:
                Wp = self.ema * self._state + (1.0 - self.ema) * Wp
            self._state = Wp
        return Wp

    def spectrum(self, f: Array, c: Array | None = None) -> Array:
        """p = diagonal of rule(diag(f), diag(c)) in O(n) (see the class docstring)."""
        if not self.has_spectrum:
            raise ValueError(
                f"rule {self.name!r} with {self.params} has no spectral form (ema, or an array"
                " c): call it on the matrices"
            )
        if self.needs_cross and c is None:
            raise ValueError(f"rule {self.name!r} needs the diagonal of C_to: pass c")
        xp, f = _float_vector("f", f)
        if c is not None:
            _, c = _float_vector("c", c)
            _same_shape("f", f, "c", c)
        function = _SPECTRA[self.name]
        if self.inputs == "F":
            p = function(f, **self._params)
        elif self.inputs == "C_to":
            p = function(c, **self._params)
        else:
            p = function(f, c, **self._params)
        return p + self.ridge if self.ridge else p

    def reset(self) -> None:
        """Forget the EMA state (R10)."""
        self._state = None

    def state_dict(self) -> dict[str, Array | None]:
        """The EMA state (R10) as plain arrays, for checkpoints."""
        return {"ema_state": self._state}

    def load_state_dict(self, state: dict[str, Array | None]) -> None:
        if set(state) != {"ema_state"}:
            raise ValueError(f"state has keys {sorted(state)}: expected ['ema_state']")
        self._state = state["ema_state"]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"PredictorRule({self.name!r}, {args})"


def _canonical(name: str) -> str:
    key = _ALIASES.get(name, name)
    if key not in _RULES:
        raise ValueError(
            f"unknown predictor rule {name!r}: valid ones are {', '.join(available_rules())}"
            f" (aliases {', '.join(_ALIASES)})"
        )
    return key


def get_rule(
    name: str, partitions: int | None = None, partition_seed: int = 0, **params: Any
) -> PredictorRule | PartitionedRule:
    """The R-rule ``name`` with its parameters: ``fn(F, C_to) -> Wp``.

    e.g. get_rule("directpred", eps=0.1), get_rule("stiefel", ridge=0.3),
    get_rule("newton_schulz", source="F", ema=0.9). Every rule takes ridge (R9, default 0)
    and ema (R10, default None: off); the [E] iterations (visser, newton_schulz, ns2,
    stiefel) take source="C_to" (default) or "F". An unknown name or parameter raises a
    one-line ValueError listing the valid ones. ``partitions=K`` (an F-only rule, no ema)
    returns R1's partition variant, ``PartitionedRule`` (K random hyperplanes drawn from
    ``partition_seed``).
    """
    if partitions is not None:
        return PartitionedRule(get_rule(name, **params), partitions, partition_seed)
    key = _canonical(name)
    valid = _rule_parameters(key)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"rule {key!r} has no parameter {', '.join(unknown)}: valid ones are {', '.join(valid)}"
        )
    return PredictorRule(key, params)


def needs_cross(name: str, **params: Any) -> bool:
    """Whether the configured rule reads C_to (a trainer accumulates it only then)."""
    return get_rule(name, **params).needs_cross


# --------------------------------------------------------------------------- R1 partition variant


class PartitionedRule:
    """R1's partition variant: a piecewise-linear predictor from per-region F_hat.

    Read as the reference code does ([T]'s code, ``predictor_reg="partition"``): the
    *input space* of the predictor (the features f, dimension n) is cut by K random
    hyperplanes w_k ~ N(0, I_n) (drawn once from ``seed``). For each k a sample lies on
    the positive side when w_k . f >= the batch mean of w_k . f (each view thresholded
    by its own batch). F_hat is estimated separately on each side of each hyperplane
    (``PartitionedCorrelation``), the wrapped rule gives Wp[k, side] = rule(F_hat[k, side]),
    and a sample f is predicted by the mean over the K hyperplanes of the Wp of its side:
    p(f) = (1/K) sum_k Wp[k, side_k(f)] f. The rule must read F only (no C_to) and carry
    no ema (R10 state would mix the 2K matrices).
    """

    def __init__(self, rule: PredictorRule, partitions: int, seed: int = 0) -> None:
        self.partitions = _positive_int("partitions", partitions)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"partition_seed={seed!r} is invalid: it must be an integer")
        if rule.needs_cross or rule.ema is not None:
            raise ValueError(
                f"rule {rule.name!r} with partitions needs an F-only rule without ema: "
                "use directpred, directset, directcopy or source='F'"
            )
        self.rule, self.seed, self.name = rule, seed, rule.name
        self.needs_cross, self.has_spectrum = False, False
        self.params = {**rule.params, "partitions": self.partitions, "partition_seed": seed}

    def planes(self, f: Array) -> Array:
        """The (n, K) hyperplane normals, in f's namespace, dtype and device."""
        xp = array_namespace(f)
        normals = np.random.default_rng(self.seed).standard_normal((f.shape[1], self.partitions))
        return xp.asarray(normals, dtype=f.dtype, device=f.device)

    def sides(self, f: Array) -> Array:
        """(batch, K) booleans: sample b lies on the positive side of hyperplane k."""
        xp = array_namespace(f)
        projection = f @ self.planes(f)
        return projection >= xp.mean(projection, axis=0)[None, :]

    def __call__(self, F_sides: Array, C_to: Array | None = None) -> Array:
        """(K, 2, n, n) Wp from (K, 2, n, n) F_hat; [:, 0] positive sides, [:, 1] negative."""
        xp = array_namespace(F_sides)
        if tuple(F_sides.shape[:2]) != (self.partitions, 2) or F_sides.ndim != 4:
            raise ValueError(
                f"F_sides has shape {tuple(F_sides.shape)}: expected ({self.partitions}, 2, n, n)"
            )
        rows = [xp.stack([self.rule(F_sides[k, j]) for j in range(2)]) for k in range(len(F_sides))]
        return xp.stack(rows)

    def predict(self, f: Array, Wp_sides: Array) -> Array:
        """p(f) = (1/K) sum_k Wp[k, side_k(f)] f for each row f of the (batch, n) array."""
        xp = array_namespace(f, Wp_sides)
        side = xp.permute_dims(self.sides(f), (1, 0))[:, :, None]  # (K, batch, 1)
        transposed = xp.permute_dims(Wp_sides, (0, 1, 3, 2))
        positive, negative = f[None, :, :] @ transposed[:, 0], f[None, :, :] @ transposed[:, 1]
        return xp.mean(xp.where(side, positive, negative), axis=0)

    def __repr__(self) -> str:
        return f"PartitionedRule({self.rule!r}, partitions={self.partitions}, seed={self.seed})"


class PartitionedCorrelation:
    """EMA of the per-side F_hat of a ``PartitionedRule``: a (K, 2, n, n) array.

    Per batch, each side's estimate is the mean of f f^T over the samples of all views on
    that side (zero when the side is empty), blended as in ``RunningCorrelation``:
    F <- rho F + (1 - rho) F_batch, the first batch stored as is.
    """

    def __init__(self, rule: PartitionedRule, rho: float = 0.3) -> None:
        rho = _finite("rho", rho)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho={rho!r} is invalid: it must be in [0, 1)")
        self.rule, self.rho, self.count = rule, rho, 0
        self._F: Array | None = None

    def batch_estimate(self, online: Array | Sequence[Array]) -> Array:
        """(K, 2, n, n) side means of f f^T over the views' samples (theory.md section 3)."""
        views = _views("online", online)
        xp = array_namespace(*views)
        total, counts = 0.0, 0.0
        for v in views:
            weight = xp.astype(self.rule.sides(v), v.dtype)  # (batch, K)
            weights = xp.stack([weight, 1.0 - weight], axis=1)  # (batch, 2, K)
            weights = xp.permute_dims(weights, (2, 1, 0))[:, :, None, :]  # (K, 2, 1, batch)
            total = total + (v.T[None, None, :, :] * weights) @ v
            counts = counts + xp.sum(weights, axis=3)[..., None]
        return total / xp.maximum(counts, xp.ones_like(counts))

    def update(self, online: Array | Sequence[Array]) -> None:
        """Add one batch (one (batch, n) array per view)."""
        new = self.batch_estimate(online)
        self._F = new if self._F is None else self.rho * self._F + (1.0 - self.rho) * new
        self.count += 1

    @property
    def F(self) -> Array:
        """The (K, 2, n, n) per-side F_hat."""
        if self._F is None:
            raise ValueError("no batch yet: call update() first")
        return self._F

    def state_dict(self) -> dict[str, Any]:
        return {"rho": self.rho, "count": self.count, "F": self._F}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"rho", "count", "F"}:
            raise ValueError(f"state has keys {sorted(state)}: expected ['F', 'count', 'rho']")
        if state["rho"] != self.rho:
            raise ValueError(
                f"state was saved with rho={state['rho']!r} but this estimate has "
                f"rho={self.rho!r}: build it with the same settings"
            )
        self.count, self._F = int(state["count"]), state["F"]


# --------------------------------------------------------------------------- running estimates


def _views(name: str, views: Array | Sequence[Array]) -> list[Array]:
    views = [views] if hasattr(views, "ndim") else list(views)
    if not views:
        raise ValueError(f"{name} is empty: pass one (batch, n) array per view")
    shape = tuple(views[0].shape)
    for v in views:
        if v.ndim != 2 or tuple(v.shape) != shape:
            raise ValueError(
                f"{name} has views of shapes {[tuple(u.shape) for u in views]}: "
                "each must be (batch, n), all alike"
            )
    return views


class RunningCorrelation:
    """EMA estimates of F = E[f f^T] and (cross=True) C_to = E[f_a f^T] (theory.md section 3).

    F_hat <- rho F_hat + (1 - rho) mean_batch(f f^T); the first batch is stored as is. Not
    centred by default ([T] reports centring hurts); centre=True keeps EMA means too and
    returns F_hat - m m^T and C_to_hat - m_a m^T.

    Both views enter F by concatenation: the batches of the k views are stacked into one
    (k * batch, n) sample. C_to pairs each target view with the online features of the
    other views (the pairs the loss compares): for two views
    C_to_batch = (f_a2^T f_1 + f_a1^T f_2) / (2 batch) (rows are samples).
    Works on NumPy arrays or torch tensors (detach them first); ``state_dict`` holds plain
    arrays for checkpoints.
    """

    def __init__(self, rho: float = 0.3, cross: bool = False, centre: bool = False) -> None:
        rho = _finite("rho", rho)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho={rho!r} is invalid: it must be in [0, 1)")
        self.rho = rho
        self.cross = bool(cross)
        self.centre = bool(centre)
        self.count = 0
        self._F: Array | None = None
        self._C_to: Array | None = None
        self._mean: Array | None = None
        self._mean_target: Array | None = None

    def _blend(self, old: Array | None, new: Array) -> Array:
        return new if old is None else self.rho * old + (1.0 - self.rho) * new

    def update(
        self,
        online: Array | Sequence[Array],
        target: Array | Sequence[Array] | None = None,
    ) -> None:
        """Add one batch: ``online`` (and, when cross, ``target``) holds one (batch, n) per view."""
        online = _views("online", online)
        xp = array_namespace(*online)
        stacked = xp.concat(online, axis=0)
        self._F = self._blend(self._F, stacked.T @ stacked / stacked.shape[0])
        if self.centre:
            self._mean = self._blend(self._mean, xp.mean(stacked, axis=0))
        if self.cross:
            if target is None:
                raise ValueError("cross=True needs the target views: update(online, target)")
            target = _views("target", target)
            if len(target) != len(online) or len(online) < 2:
                raise ValueError(
                    f"got {len(online)} online and {len(target)} target views: C_to needs the "
                    "same number (>= 2), one per augmentation"
                )
            _same_shape("online view", online[0], "target view", target[0])
            k, batch = len(online), online[0].shape[0]
            C = sum(target[j].T @ online[i] for i in range(k) for j in range(k) if i != j)
            self._C_to = self._blend(self._C_to, C / (k * (k - 1) * batch))
            if self.centre:
                self._mean_target = self._blend(
                    self._mean_target, xp.mean(xp.concat(target, axis=0), axis=0)
                )
        self.count += 1

    @property
    def F(self) -> Array:
        """F_hat = C_oo (centred when centre=True)."""
        if self._F is None:
            raise ValueError("no batch yet: call update() first")
        if self.centre:
            return self._F - self._mean[:, None] * self._mean[None, :]
        return self._F

    @property
    def C_to(self) -> Array:
        """C_to_hat = E[f_a f^T] (cross=True only; centred when centre=True)."""
        if not self.cross:
            raise ValueError("this estimate was built with cross=False: it has no C_to")
        if self._C_to is None:
            raise ValueError("no batch yet: call update() first")
        if self.centre:
            return self._C_to - self._mean_target[:, None] * self._mean[None, :]
        return self._C_to

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays (and numbers) that ``load_state_dict`` restores."""
        return {
            "rho": self.rho,
            "cross": self.cross,
            "centre": self.centre,
            "count": self.count,
            "F": self._F,
            "C_to": self._C_to,
            "mean": self._mean,
            "mean_target": self._mean_target,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"state has keys {sorted(state)}: expected {sorted(expected)}")
        for key in ("rho", "cross", "centre"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"state was saved with {key}={state[key]!r} but this estimate has "
                    f"{key}={getattr(self, key)!r}: build it with the same settings"
                )
        self.count = int(state["count"])
        self._F, self._C_to = state["F"], state["C_to"]
        self._mean, self._mean_target = state["mean"], state["mean_target"]
