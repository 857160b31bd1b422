"""The closed-form rules R1-R9 (theory.md section 3), each declared once for the registry.

Each rule is a function on NumPy arrays or torch tensors, followed by its ``RuleSpec``:
its name, the matrices it reads, its form on diagonal inputs (the reduced flow) and its
aliases. ``declare`` adds the spec to ``RULES``, from which ``registry`` derives
``available_rules``, ``get_rule`` and ``needs_cross``: a new rule is one function and one
``declare`` here (CONTRIBUTING.md, "Adding a closed-form rule").

Every rule checks what its theory needs (one-line ValueErrors): square, finite, and for
F / C_oo symmetric and positive semi-definite to roundoff (exactly from the eigenvalues
where the rule decomposes F, from the diagonal otherwise); eps >= 0; the iterations
R5-R8 raise when they diverge instead of returning inf or 1e145.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from array_api_compat import array_namespace

from linear_ssl._arrays import (
    Array,
    check_psd_diagonal,
    check_psd_spectrum,
    check_symmetric,
    eye,
    finite,
    float_matrix,
    float_pair,
    positive_int,
    require,
)
from linear_ssl.predictors.linalg import (
    Algebra,
    at_least,
    diagonals,
    from_spectrum,
    matrices,
    power_lambda_max,
    psd_eigh,
    require_bounded,
)

__all__ = [
    "RULES",
    "RuleSpec",
    "declare",
    "directcopy",
    "directpred",
    "directset",
    "lrp",
    "neumann",
    "newton_schulz",
    "ns2",
    "ridge",
    "stiefel",
    "visser",
]

Inputs = Literal["F", "both", "sigma"]


@dataclass(frozen=True)
class RuleSpec:
    """One R-rule as the registry knows it.

    ``function(*matrices, **params) -> Wp`` reads F ("F"), C_oo and C_to ("both"), or one
    matrix Sigma ("sigma": C_to by default, F with ``source="F"``); its keyword parameters
    and their defaults are the rule's parameters. ``diagonal(*diagonals, **params)`` is the
    same rule on diagonal inputs (diagonals in, Wp's diagonal out, every parameter passed).
    """

    name: str
    equation: str
    function: Callable[..., Array]
    inputs: Inputs
    diagonal: Callable[..., Array]
    aliases: tuple[str, ...] = ()


RULES: dict[str, RuleSpec] = {}


def declare(spec: RuleSpec) -> RuleSpec:
    """Add ``spec`` to the registry (``RULES``)."""
    RULES[spec.name] = spec
    return spec


def _iteration_on_diagonals(core: Callable[..., Array]) -> Callable[..., Array]:
    """An [E] iteration written against ``Algebra``, run on a diagonal: d -> Wp's diagonal."""

    def run(d: Array, **params: Any) -> Array:
        xp = array_namespace(d)
        return core(xp, d, alg=diagonals(xp, d), **params)

    return run


# --------------------------------------------------------------------------- R1


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
    ascending order (eigh's order). F must be symmetric PSD (to roundoff) and eps >= 0.
    """
    variant = _directpred_variant(variant)
    eps = finite("eps", eps, low=0.0)
    xp, s, U = psd_eigh("F", F)
    if not isinstance(c, (int, float)):
        c = xp.asarray(c, dtype=s.dtype, device=s.device)
        if tuple(c.shape) != tuple(s.shape):
            raise ValueError(
                f"c has shape {tuple(c.shape)}: it must be a number or ({s.shape[0]},)"
            )
    return from_spectrum(U, _directpred_p(xp, s, eps, variant, c))


def _directpred_variant(variant: str) -> str:
    if variant not in ("code", "paper"):
        raise ValueError(f"variant={variant!r} is invalid: use 'code' or 'paper'")
    return variant


def _directpred_p(xp: Any, s: Array, eps: float, variant: str, c: float | Array) -> Array:
    """R1's p_j from F's eigenvalues s_j (any order; c matched to s)."""
    s_max = xp.max(s)
    s_max = xp.where(s_max > 0, s_max, xp.ones_like(s_max))
    shifted = at_least(xp, s - c, 0.0)
    if variant == "code":
        return at_least(xp, xp.sqrt(shifted / s_max) + eps, 1e-4)
    return xp.sqrt(shifted) + eps * s_max


def _directpred_diagonal(f: Array, eps: float, variant: str, c: float) -> Array:
    xp = array_namespace(f)
    check_psd_spectrum("f", f, xp)
    return _directpred_p(xp, f, finite("eps", eps, low=0.0), _directpred_variant(variant), c)


declare(RuleSpec("directpred", "R1", directpred, "F", _directpred_diagonal))


# --------------------------------------------------------------------------- R2


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
    from a fixed start; the Rayleigh quotient, a lower bound, exact up to
    (lambda_2 / lambda_max)^200 and otherwise within the spread of the top eigenvalues).
    norm="spectral": lambda_max(F^alpha); norm="fro": ||F^alpha||_F. F = 0 gives eps I.
    F must be symmetric PSD (to roundoff; for alpha = 1 checked on its diagonal) and
    eps >= 0.
    """
    alpha, eps, norm = _directset_parameters(alpha, eps, norm)
    if alpha != 1.0:
        xp, s, U = psd_eigh("F", F)
        return from_spectrum(U, _directset_p(xp, s, alpha, eps, norm))
    xp, M = float_matrix("F", F)
    M = check_symmetric("F", M, xp)
    check_psd_diagonal("F", M, xp)
    scale = xp.linalg.matrix_norm(M) if norm == "fro" else power_lambda_max(xp, M)
    scale = at_least(xp, scale, xp.finfo(M.dtype).tiny)
    return M / scale + eps * eye(xp, M)


def _directset_parameters(alpha: float, eps: float, norm: str) -> tuple[float, float, str]:
    if norm not in ("spectral", "fro"):
        raise ValueError(f"norm={norm!r} is invalid: use 'spectral' or 'fro'")
    alpha = finite("alpha", alpha)
    if alpha <= 0:
        raise ValueError(f"alpha={alpha!r} is invalid: it must be > 0")
    return alpha, finite("eps", eps, low=0.0), norm


def _directset_p(xp: Any, s: Array, alpha: float, eps: float, norm: str) -> Array:
    """R2's p_j from the eigenvalues s_j of F (for alpha = 1, F diagonal: the same
    normalisation as the matrix path, power iterations included)."""
    if alpha == 1.0:
        M = s
        scale = (
            xp.linalg.vector_norm(s) if norm == "fro" else power_lambda_max(xp, s, diagonal=True)
        )
    else:
        M = at_least(xp, s, 0.0) ** alpha
        scale = xp.max(M) if norm == "spectral" else xp.linalg.vector_norm(M)
    scale = at_least(xp, scale, xp.finfo(s.dtype).tiny)
    return M / scale + eps


def _directset_diagonal(f: Array, alpha: float, eps: float, norm: str) -> Array:
    xp = array_namespace(f)
    check_psd_spectrum("f", f, xp)
    return _directset_p(xp, f, *_directset_parameters(alpha, eps, norm))


declare(RuleSpec("directset", "R2", directset, "F", _directset_diagonal))


def directcopy(F: Array, eps: float = 0.1, norm: Literal["spectral", "fro"] = "spectral") -> Array:
    """R2 with alpha = 1, DirectCopy [W]: Wp = F / ||F|| + eps I (no eigendecomposition)."""
    return directset(F, alpha=1.0, eps=eps, norm=norm)


declare(
    RuleSpec(
        "directcopy",
        "R2",
        directcopy,
        "F",
        lambda f, eps, norm: _directset_diagonal(f, 1.0, eps, norm),
        aliases=("copy",),
    )
)


# --------------------------------------------------------------------------- R3, R4


def _correlations(C_oo: Array, C_to: Array) -> tuple[Any, Array, Array]:
    """(namespace, C_oo, C_to): one library, device and shape; C_oo symmetric PSD."""
    xp, C_oo, C_to = float_pair("C_oo", C_oo, "C_to", C_to)
    C_oo = check_symmetric("C_oo", C_oo, xp)
    check_psd_diagonal("C_oo", C_oo, xp)
    return xp, C_oo, C_to


_SINGULAR = "C_oo is singular (a collapsed mode): pass reg > 0 to solve with C_oo + reg I"


def lrp(C_oo: Array, C_to: Array, reg: float = 0.0) -> Array:
    """R3, the optimal linear predictor [E Prop. 1]: Wp = C_to (C_oo + reg I)^-1.

    It minimises E||Wp f - f_a||^2 (+ reg ||Wp||_F^2); [E]'s row-major (Z^T Z)^-1 Z^T Z'
    transposed. Computed by ``solve`` (never an inverse). A singular C_oo (a collapsed
    mode) raises ValueError: pass reg > 0, the ridge-regularised optimum [T] Table 1
    plugs in. A nearly singular C_oo gives a large but finite Wp.
    """
    xp, C_oo, C_to = _correlations(C_oo, C_to)
    reg = finite("reg", reg, low=0.0)
    A = C_oo + reg * eye(xp, C_oo) if reg > 0 else C_oo
    try:
        Wp_T = xp.linalg.solve(A, C_to.T)  # A Wp^T = C_to^T  <=>  Wp A = C_to (A symmetric)
    except xp.linalg.LinAlgError as err:
        raise ValueError(_SINGULAR) from err
    require(xp.all(xp.isfinite(Wp_T)), _SINGULAR)
    return Wp_T.T


def _lrp_diagonal(f: Array, c: Array, reg: float) -> Array:
    xp = array_namespace(f)
    require(xp.all(f + reg != 0), _SINGULAR)
    return c / (f + reg)


declare(RuleSpec("lrp", "R3", lrp, "both", _lrp_diagonal))


def neumann(C_oo: Array, C_to: Array) -> Array:
    """R4, the Neumann expansion [E]: (C_oo)^-1 ~ 2I - C_oo, so Wp = 2 C_to - C_to C_oo.

    Close to R3 when C_oo is near I (the error is O(||C_oo - I||^2)); no normalisation is
    applied, so the features' scale matters.
    """
    _, C_oo, C_to = _correlations(C_oo, C_to)
    return 2 * C_to - C_to @ C_oo


declare(RuleSpec("neumann", "R4", neumann, "both", lambda f, c: 2 * c - c * f, aliases=("ne",)))


# --------------------------------------------------------------------------- R5-R8

_NEEDS_ROOT = "S must be symmetric positive semi-definite (or a cross-correlation close to one)"


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
    Raises ValueError when the iterate grows past twice its reach on a PSD S (every mode
    stays within max(1/(2h), sqrt(||S||_F))): S far from symmetric PSD.
    """
    xp, S = float_matrix("S", S)
    return _visser(xp, S, step, positive_int("n", n), matrices(xp, S))


def _visser(xp: Any, S: Array, step: float | None, n: int, alg: Algebra) -> Array:
    c = alg.fro(S)
    if step is None:
        c = at_least(xp, c, xp.finfo(S.dtype).tiny)
        S_n, h, reach = S / c, 0.5, 1.0
    else:
        h = finite("step", step)
        if h <= 0:
            raise ValueError(f"step={step!r} is invalid: it must be > 0")
        S_n, reach = S, at_least(xp, xp.sqrt(c), 1 / (2 * h))
    P = alg.one / (2 * h)
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is raised below
        for _ in range(n):
            P = P + h * (S_n - alg.mm(P, P))
    require_bounded("visser", P, 2 * math.sqrt(S.shape[0]) * reach, alg, _NEEDS_ROOT)
    return P if step is not None else P * xp.sqrt(c)


declare(
    RuleSpec(
        "visser",
        "R5",
        visser,
        "sigma",
        _iteration_on_diagonals(lambda xp, d, alg, step, n: _visser(xp, d, step, n, alg)),
    )
)


def newton_schulz(S: Array, n: int = 9) -> tuple[Array, Array]:
    """R6, coupled Newton-Schulz [E]: (~S^(1/2), ~S^(-1/2)).

    A_0 = S/||S||_F, B_0 = I; A_{k+1} = A_k (3I - B_k A_k)/2, B_{k+1} = (3I - B_k A_k) B_k/2;
    returns (A_n sqrt(||S||_F), B_n / sqrt(||S||_F)). Converges quadratically for a
    symmetric PSD S (eigenvalues of A_0 in (0, 1]); an eigenvalue far below ||S||_F needs
    more iterations (it grows ~2.25x a step until it is near 1), so with few iterations
    small modes are damped: a soft projection ([E] Fig. 3). On a PSD S every mode of A_k
    stays in [0, 1]; ValueError when ||A_n||_F exceeds 2 sqrt(dim) (S non-symmetric with
    eigenvalues off the positive axis, or indefinite) and when S = 0.
    """
    xp, S = float_matrix("S", S)
    return _newton_schulz(xp, S, positive_int("n", n), matrices(xp, S))


def _newton_schulz(
    xp: Any, S: Array, n: int, alg: Algebra, rule: str = "newton_schulz"
) -> tuple[Array, Array]:
    c = alg.fro(S)
    require(c > 0, "S is zero: its square root is 0 and its inverse square root undefined")
    A, B = S / c, alg.one
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is raised below
        for _ in range(n):
            T = (3 * alg.one - alg.mm(B, A)) / 2
            A, B = alg.mm(A, T), alg.mm(T, B)
    require_bounded(rule, A, 2 * math.sqrt(S.shape[0]), alg, _NEEDS_ROOT)
    root = xp.sqrt(c)
    return A * root, B / root


def _newton_schulz_root(S: Array, n: int = 9) -> Array:
    """R6 as a rule: the square root, ``newton_schulz(S, n)[0]``."""
    return newton_schulz(S, n=n)[0]


declare(
    RuleSpec(
        "newton_schulz",
        "R6",
        _newton_schulz_root,
        "sigma",
        _iteration_on_diagonals(lambda xp, d, alg, n: _newton_schulz(xp, d, n, alg)[0]),
        aliases=("ns",),
    )
)


def ns2(S: Array, n: int = 7) -> Array:
    """R7, NS^2 [E]: Newton-Schulz applied twice (n iterations each), ~S^(1/4)."""
    xp, S = float_matrix("S", S)
    return _ns2(xp, S, positive_int("n", n), matrices(xp, S))


def _ns2(xp: Any, S: Array, n: int, alg: Algebra) -> Array:
    root, _ = _newton_schulz(xp, S, n, alg, rule="ns2")
    return _newton_schulz(xp, root, n, alg, rule="ns2")[0]


declare(
    RuleSpec(
        "ns2",
        "R7",
        ns2,
        "sigma",
        _iteration_on_diagonals(lambda xp, d, alg, n: _ns2(xp, d, n, alg)),
    )
)


def stiefel(S: Array, n: int = 9) -> Array:
    """R8, Stiefel [E]: the orthogonal polar factor of S, up to scale, by Newton-Schulz.

    B_n ~ (S S^T)^(-1/2) by ``newton_schulz(S S^T, n)``; Wp = B_n S / ||B_n||_F. With S =
    C_to this is [E]'s P = Sigma B_n (Sigma = Z^T Z' = C_to^T, B_n ~ (Sigma^T Sigma)^(-1/2)),
    transposed to our convention: Wp = (C_to C_to^T)^(-1/2) C_to = U V^T for C_to = U D V^T.
    Singular values far below the largest are not fully orthogonalised in n steps (soft
    projection).
    """
    xp, S = float_matrix("S", S)
    return _stiefel(xp, S, positive_int("n", n), matrices(xp, S))


def _stiefel(xp: Any, S: Array, n: int, alg: Algebra) -> Array:
    _, B = _newton_schulz(xp, alg.mm(S, alg.T(S)), n, alg, rule="stiefel")
    return alg.mm(B, S) / alg.fro(B)


declare(
    RuleSpec(
        "stiefel",
        "R8",
        stiefel,
        "sigma",
        _iteration_on_diagonals(lambda xp, d, alg, n: _stiefel(xp, d, n, alg)),
    )
)


# --------------------------------------------------------------------------- R9


def ridge(Wp: Array, alpha: float) -> Array:
    """R9, ridge [E]: Wp + alpha I ([E]'s grid: alpha in {0, .15, .3, .45, .6, .75, .9})."""
    xp, Wp = float_matrix("Wp", Wp)
    return Wp + finite("alpha", alpha) * eye(xp, Wp)
