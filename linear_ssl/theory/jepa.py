"""Deep linear self-distillation (JEPA) against reconstruction (MAE): J1-J4 of theory.md 9.

Littwin et al.'s model: a depth-L linear encoder Wbar = W_L ... W_1 and a linear head V,
trained on two views x, y whose covariances share an eigenbasis: feature i has
covariance lambda_i = E[x_i^2] and regression coefficient rho_i = E[y_i x_i] / lambda_i.

    JEPA: 1/2 E || V Wbar x - StopGrad(Wbar y) ||^2      MAE: 1/2 E || V Wbar x - y ||^2

From a diagonal, balanced start every layer stays diagonal and each feature is a scalar
system (J2) in a (each encoder layer's entry, so w = a^L is the encoder's) and v (the
head's). a^2 - v^2 is conserved (J3), so a balanced start (v = a) stays balanced and the
critical time (J4) has a closed form.

- `rhs`, `integrate`: J2 for any number of (lambda, rho, init) at once (batched RK45).
- `fixed_point`, `balance`: J2's non-zero fixed point, J3's invariant.
- `critical_times`: J4, exact (closed form) for a balanced start; `critical_times_asymptotic`: its
  divergent terms as the initialisation eps -> 0; `crossing_times`: read off a solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import hyp2f1

from linear_ssl.theory.solvers import (
    DEFAULT_MAX_STEPS,
    OnFailure,
    Solution,
    check_on_failure,
    rk45_batched,
)

ObjectiveName = Literal["jepa", "mae"]

__all__ = [
    "DeepLinearSolution",
    "balance",
    "critical_times",
    "critical_times_asymptotic",
    "crossing_times",
    "fixed_point",
    "integrate",
    "rhs",
]


def _objective(objective: str) -> str:
    if objective not in ("jepa", "mae"):
        raise ValueError(f"objective={objective!r} is invalid: use 'jepa' or 'mae'")
    return objective


def _depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth={depth!r} is invalid: give the encoder's number of layers >= 1")
    return int(depth)


def _positive(name: str, value) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be finite and > 0 (got {value!r})")
    return a


# --------------------------------------------------------------------------- J2, J3


def rhs(a: ArrayLike, v: ArrayLike, lam: ArrayLike, rho: ArrayLike, depth: int, objective):
    """J2: (da/dt, dv/dt) of one feature per entry, broadcast.

    JEPA: da/dt = lam v a^(2L-1) (rho - v),   dv/dt = lam a^(2L) (rho - v);
    MAE:  da/dt = lam v a^(L-1) (rho - v a^L), dv/dt = lam a^L (rho - v a^L).
    """
    L = _depth(depth)
    a, v, lam, rho = (np.asarray(x, dtype=float) for x in (a, v, lam, rho))
    if _objective(objective) == "jepa":
        g = lam * a ** (2 * L - 1) * (rho - v)  # lam a^(2L-1) (rho - v)
        return v * g, a * g
    g = lam * a ** (L - 1) * (rho - v * a**L)
    return v * g, a * g


def balance(a: ArrayLike, v: ArrayLike) -> np.ndarray:
    """J3: a^2 - v^2, constant along J2 for either objective (0 for a balanced start)."""
    return np.asarray(a, dtype=float) ** 2 - np.asarray(v, dtype=float) ** 2


def fixed_point(lam: ArrayLike, rho: ArrayLike, depth: int, objective: ObjectiveName = "jepa"):
    """J2: the learned (w, v) of a balanced feature: JEPA (rho^L, rho), MAE (rho^(L/(L+1)), ...).

    JEPA's head settles at v = rho and its encoder at w = a^L = rho^L; MAE's end-to-end map
    v w settles at rho (the regression), with a = v = rho^(1/(L+1)). lam only sets the pace.
    """
    L = _depth(depth)
    rho = _positive("rho", rho) * np.ones_like(np.asarray(lam, dtype=float))
    a = rho if _objective(objective) == "jepa" else rho ** (1.0 / (L + 1))
    return a**L, a


@dataclass(frozen=True)
class DeepLinearSolution(Solution):
    """`integrate`'s result: w (encoder, = a^L), a (one layer) and v (head), (len(t), *S)."""

    w: np.ndarray
    a: np.ndarray
    v: np.ndarray


def integrate(
    lam: ArrayLike,
    rho: ArrayLike,
    t: ArrayLike,
    depth: int,
    eps: ArrayLike = 1e-3,
    objective: ObjectiveName = "jepa",
    *,
    v0: ArrayLike | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> DeepLinearSolution:
    """J2 for every feature at once: lam, rho, eps (and v0) broadcast to one shape S.

    The encoder starts at w(0) = eps (each layer at a(0) = eps^(1/L)); the head at
    v0, by default eps^(1/L) (balanced, J3). t: 1-D, increasing, from 0.
    """
    L = _depth(depth)
    _objective(objective)
    check_on_failure(on_failure)
    lam, rho, eps = np.broadcast_arrays(
        _positive("lam", lam), _positive("rho", rho), _positive("eps", eps)
    )
    a0 = eps ** (1.0 / L)
    v0 = a0 if v0 is None else np.broadcast_to(np.asarray(v0, dtype=float), a0.shape)
    if not np.all(np.isfinite(v0)):
        raise ValueError("v0 must be finite")
    shape = a0.shape

    def fun(y: np.ndarray, out: np.ndarray) -> np.ndarray:
        out[0], out[1] = rhs(y[0], y[1], y[2], y[3], L, objective)
        out[2:] = 0.0
        return out

    # rows (a, v, lam, rho): each column carries its own constants (rk45_batched drops
    # finished columns). The constant rows have zero error, so the RMS error test over 4
    # rows is sqrt(2) looser than over (a, v); tighter tolerances undo that.
    y0 = np.stack([a0.ravel(), np.asarray(v0, float).ravel(), lam.ravel(), rho.ravel()])
    tol = np.sqrt(2.0)
    res = rk45_batched(fun, y0, t, rtol=rtol / tol, atol=atol / tol, max_steps=max_steps)
    a = res.y[:, 0].reshape(-1, *shape)
    v = res.y[:, 1].reshape(-1, *shape)
    ok, message, stats = res.outcome(
        shape, f"jepa.integrate(objective={objective!r}, depth={L})", on_failure
    )
    return DeepLinearSolution(
        t=np.asarray(t, float), w=a**L, a=a, v=v, ok=ok, message=message, stats=stats
    )


# --------------------------------------------------------------------------- J4


def _jepa_antiderivative(a: np.ndarray, rho: np.ndarray, L: int) -> np.ndarray:
    """J4: F with dF/da = 1 / (a^(2L) (rho - a)), for 0 < a < rho (closed form, derived).

    F(a) = -sum_{n=1}^{2L-1} a^-n / (n rho^(2L-n)) + rho^-2L log(a / (rho - a)).
    """
    terms = sum(a ** (-n) / (n * rho ** (2 * L - n)) for n in range(1, 2 * L))
    return -terms + rho ** (-2.0 * L) * np.log(a / (rho - a))


def _mae_antiderivative(a: np.ndarray, rho: np.ndarray, L: int) -> np.ndarray:
    """J4: F with dF/da = 1 / (a^L (rho - a^(L+1))), for 0 < a^(L+1) < rho (derived).

    1 / (a^L (rho - a^(L+1))) = 1 / (rho a^L) + a / (rho (rho - a^(L+1))), and
    int a / (rho - a^(L+1)) da = a^2 / (2 rho) 2F1(1, c; 1 + c; a^(L+1) / rho), c = 2/(L+1).
    """
    head = np.log(a) if L == 1 else a ** (1 - L) / (1 - L)
    c = 2.0 / (L + 1)
    tail = a**2 / (2.0 * rho) * hyp2f1(1.0, c, 1.0 + c, a ** (L + 1) / rho)
    return (head + tail) / rho


def critical_times(
    lam: ArrayLike,
    rho: ArrayLike,
    depth: int,
    eps: ArrayLike = 1e-3,
    objective: ObjectiveName = "jepa",
    fraction: float = 0.5,
) -> np.ndarray:
    """J4: the time at which a balanced feature's encoder w reaches `fraction` of its w*.

    Exact, in closed form: t* = (1/lam) int_{a0}^{a1} da / (a^(2L) (rho - a)) for JEPA and
    (1/lam) int da / (a^L (rho - a^(L+1))) for MAE, from a0 = eps^(1/L) to
    a1 = (fraction w*)^(1/L). nan where the start is already past the level.
    """
    L = _depth(depth)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} is invalid: it must lie in (0, 1)")
    lam, rho, eps = np.broadcast_arrays(
        _positive("lam", lam), _positive("rho", rho), _positive("eps", eps)
    )
    w_star, _ = fixed_point(lam, rho, L, objective)
    a0, a1 = eps ** (1.0 / L), (fraction * w_star) ** (1.0 / L)
    F = _jepa_antiderivative if objective == "jepa" else _mae_antiderivative
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (F(a1, rho, L) - F(a0, rho, L)) / lam
    return np.where(a0 < a1, t, np.nan)


def critical_times_asymptotic(
    lam: ArrayLike, rho: ArrayLike, depth: int, eps: ArrayLike = 1e-3, objective="jepa"
) -> np.ndarray:
    """J4 as eps -> 0: the terms of t* that diverge (derived; the shape of [J]'s formula).

    JEPA: (1/lam) sum_{n=1}^{2L-1} 1 / (n rho^(2L-n) eps^(n/L)), plus the logarithm
    log(1/eps) / (L lam rho^(2L)); MAE: eps^(-(L-1)/L) / ((L-1) lam rho) for L >= 2 and
    log(1/eps) / (lam rho) for L = 1. Their ratio to `critical_times` tends to 1.
    """
    L = _depth(depth)
    lam, rho, eps = np.broadcast_arrays(
        _positive("lam", lam), _positive("rho", rho), _positive("eps", eps)
    )
    log_term = np.log(1.0 / eps) / L  # log(1 / a0)
    if _objective(objective) == "jepa":
        terms = sum(1.0 / (n * rho ** (2 * L - n) * eps ** (n / L)) for n in range(1, 2 * L))
        return (terms + log_term / rho ** (2 * L)) / lam
    if L == 1:
        return log_term / (lam * rho)
    return eps ** (-(L - 1) / L) / ((L - 1) * lam * rho)


def crossing_times(sol: DeepLinearSolution, level: ArrayLike) -> np.ndarray:
    """The first time each feature's w reaches `level` (broadcast to S), interpolated
    linearly between the solution's time points; nan where it never does."""
    w = sol.w
    level = np.broadcast_to(np.asarray(level, dtype=float), w.shape[1:])
    above = w >= level
    first = np.argmax(above, axis=0)
    reached = above.any(axis=0) & (first > 0)
    i = np.maximum(first, 1)
    take = np.take_along_axis
    w_hi, w_lo = take(w, i[None], 0)[0], take(w, i[None] - 1, 0)[0]
    t_hi, t_lo = sol.t[i], sol.t[i - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = t_lo + (level - w_lo) / (w_hi - w_lo) * (t_hi - t_lo)
    return np.where(reached, t, np.nan)
