"""The eigen-mode flow of linear BYOL / SimSiam (T7-T10 of theory.md section 2).

Under assumptions A1-A3 the matrix flow splits into one scalar system per eigen-mode j:
p (eigenvalue of the predictor Wp), s (eigenvalue of F = W W^T) and tau (Wa = tau W).

- `rhs`: T7's right-hand sides; `integrate`: T7 for any number of modes at once.
- `invariant`, `parabola`: T8, the exact integral s = p^2/alpha_p + exp(-2 eta t) c.
- `parabola_flow`, `parabola_slope`, `fixed_points`, `collapse_threshold`, `jacobian`:
  T9, the 1-D flow on the parabola, its fixed points p-, p+ and their stability.
- `collapses`: which initial conditions collapse (T9's basin p < p-, or by integration).
- `tau_rhs`, `tau_steady`: the tau equation (T7's third line) and its nullcline.
- `delta`, `grows`, `k_positive`, `k_eigenvalue`: T10's conditions on Delta.

`integrate` runs SciPy's RK45 for every trajectory at once, each with its own step size
(`solvers.rk45_batched`), under a step budget, with an implicit fallback for stiff ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from linear_ssl.theory.params import Hyper
from linear_ssl.theory.solvers import (
    DEFAULT_MAX_STEPS,
    OnFailure,
    Solution,
    check_on_failure,
    check_times,
    check_tolerances,
    handle_failure,
    rk45_batched,
    solve_ivp_checked,
)

# --- T7 -----------------------------------------------------------------------------------


def _t7_reduced(h: Hyper, y: np.ndarray, out: np.ndarray, tau=1.0) -> np.ndarray:
    """T7's right-hand sides divided by (alpha_p, 2, 1), written into out.

    y stacks the states (p, s[, tau]): rows (p, s) are the system at fixed tau (SimSiam:
    tau == 1), rows (p, s, tau) BYOL's. Times `_t7_weights` this is T7 itself; leaving the
    constant factors out lets `integrate` apply them together with the step size. In-place
    ufuncs keep `integrate` fast; `rhs` is the readable entry point.
    """
    p, s = y[0], y[1]
    tau = y[2] if y.shape[0] == 3 else tau
    gd = np.empty((2, p.size))  # rows g = tau - (1 + sigma2) p and Delta = p g - eta (T10)
    g, d = gd
    if h.sigma2:
        np.multiply(p, -(1.0 + h.sigma2), out=g)
        g += tau
    else:
        np.subtract(tau, p, out=g)
    np.multiply(p, g, out=d)
    if h.eta:
        d -= h.eta
    np.multiply(gd, s, out=out[:2])  # (s g, s Delta); ds/dt / 2 = s Delta
    if h.eta_p:
        np.multiply(p, h.eta_p / h.alpha_p, out=g)
        out[0] -= g  # dp/dt / alpha_p = s g - (eta_p / alpha_p) p
    if y.shape[0] == 3:
        d += h.beta
        d *= tau
        np.subtract(h.beta, d, out=out[2])  # dtau/dt = beta (1 - tau) - tau Delta
    return out


def _t7_weights(h: Hyper, n: int) -> np.ndarray:
    """The factors (alpha_p, 2[, 1]) that turn `_t7_reduced` into T7, as a column."""
    return np.array([h.alpha_p, 2.0, 1.0][:n])[:, None]


def rhs(h: Hyper, p: ArrayLike, s: ArrayLike, tau: ArrayLike = 1.0):
    """T7: (dp/dt, ds/dt, dtau/dt) of each mode, broadcast.

    SimSiam (h.beta None): tau is held where given (1 for SimSiam proper) and dtau/dt = 0.
    """
    p, s, tau = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (p, s, tau)))
    if h.simsiam:
        y, fixed_tau = np.stack([p.ravel(), s.ravel()]), tau.ravel()
    else:
        y, fixed_tau = np.stack([p.ravel(), s.ravel(), tau.ravel()]), 1.0
    dy = _t7_reduced(h, y, np.empty_like(y), fixed_tau) * _t7_weights(h, y.shape[0])
    dtau = np.zeros(p.shape) if h.simsiam else dy[2].reshape(p.shape)
    return dy[0].reshape(p.shape), dy[1].reshape(p.shape), dtau


def tau_rhs(h: Hyper, p: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """T7's tau equation, dtau/dt = beta (1 - tau) - tau Delta; it does not involve s.

    (From s dtau/dt = beta (1 - tau) s - tau (ds/dt) / 2.) Zero for SimSiam (tau == 1).
    """
    p, tau = np.asarray(p, dtype=float), np.asarray(tau, dtype=float)
    if h.beta is None:
        return np.zeros(np.broadcast_shapes(p.shape, tau.shape))
    return h.beta * (1.0 - tau) - tau * delta(h, p, tau)


def tau_steady(h: Hyper, p: ArrayLike) -> np.ndarray:
    """The tau nullcline of T7: the tau > 0 where dtau/dt = 0 at a given p >= 0 (BYOL only).

    Solves p tau^2 + b tau - beta = 0, b = beta - eta - (1 + sigma2) p^2; at p = 0 this is
    tau = beta / (beta - eta) (nan when eta >= beta: tau grows without bound). nan for p < 0.
    """
    if h.beta is None:
        raise ValueError("tau_steady needs an EMA target: this Hyper is SimSiam (tau == 1)")
    p = np.asarray(p, dtype=float)
    b = h.beta - h.eta - (1.0 + h.sigma2) * p**2
    root = np.sqrt(b**2 + 4.0 * p * h.beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the positive root, in the form that does not cancel for either sign of b
        tau = np.where(b > 0, 2.0 * h.beta / (b + root), (root - b) / (2.0 * p))
    return np.where((p < 0) | ~(tau > 0), np.nan, tau)


# --- T8 -----------------------------------------------------------------------------------


def parabola(h: Hyper, p: ArrayLike) -> np.ndarray:
    """T8: the invariant parabola s = p^2 / alpha_p that every mode approaches when eta > 0."""
    return np.asarray(p, dtype=float) ** 2 / h.alpha_p


def invariant(h: Hyper, p: ArrayLike, s: ArrayLike, t: ArrayLike) -> np.ndarray:
    """T8: c = exp(2 eta t) (s - p^2 / alpha_p), constant along T7 for any tau dynamics.

    Exact only when h.eta_p == h.eta; otherwise d/dt (s - p^2/alpha_p) =
    -2 eta s + 2 (eta_p/alpha_p) p^2 (T2's ``matrix.balance_rate`` per mode) and c drifts.
    Broadcasts; to use with a solution, pass t[:, None, ...] against sol.p and sol.s.
    """
    return np.exp(2.0 * h.eta * np.asarray(t, dtype=float)) * (np.asarray(s) - parabola(h, p))


# --- T9 -----------------------------------------------------------------------------------


def parabola_flow(h: Hyper, p: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T9: dp/dt on the parabola at fixed tau, p^2 (tau - (1 + sigma2) p) - eta p."""
    p = np.asarray(p, dtype=float)
    return p**2 * (np.asarray(tau) - (1.0 + h.sigma2) * p) - h.eta * p


def parabola_slope(h: Hyper, p: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T9: d(dp/dt)/dp of the 1-D flow on the parabola (< 0: stable fixed point)."""
    p = np.asarray(p, dtype=float)
    return 2.0 * np.asarray(tau) * p - 3.0 * (1.0 + h.sigma2) * p**2 - h.eta


def collapse_threshold(h: Hyper, tau: ArrayLike = 1.0) -> np.ndarray:
    """T9: past eta = tau^2 / (4 (1 + sigma2)) only p = 0 is fixed: every mode collapses."""
    return h.collapse_threshold * np.asarray(tau, dtype=float) ** 2


def fixed_points(h: Hyper, tau: ArrayLike = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """T9: (p_minus, p_plus), the non-zero fixed points of the flow on the parabola.

    p+- = [tau +- sqrt(tau^2 - 4 eta (1 + sigma2))] / (2 (1 + sigma2)); nan past the
    collapse threshold. p_minus is unstable (the collapse basin is p < p_minus), p_plus
    stable; at eta = 0, p_minus = 0 and p_plus = tau / (1 + sigma2). These p hold for any
    eta_p; T7's fixed points sit at s = (eta_p / eta) p^2 / alpha_p, on T8's parabola only
    when eta_p == eta (coupled decay, eta_p = alpha_p eta: on s = p^2).
    """
    tau = np.asarray(tau, dtype=float)
    disc = tau**2 - 4.0 * h.eta * (1.0 + h.sigma2)
    root = np.sqrt(np.where(disc >= 0, disc, np.nan))
    p_plus = (tau + root) / (2.0 * (1.0 + h.sigma2))
    # p- p+ = eta / (1 + sigma2): no cancellation for small eta
    with np.errstate(divide="ignore", invalid="ignore"):
        p_minus = np.where(p_plus > 0, h.eta / ((1.0 + h.sigma2) * p_plus), np.nan)
    return p_minus, p_plus


def jacobian(h: Hyper, p: ArrayLike, s: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T9: the Jacobian of T7's (p, s) system at fixed tau, shape (*broadcast, 2, 2).

    Rows are (dp/dt, ds/dt), columns d/dp and d/ds.
    """
    p, s, tau = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (p, s, tau)))
    c1 = 1.0 + h.sigma2
    g = tau - c1 * p
    jac = np.empty((*p.shape, 2, 2))
    jac[..., 0, 0] = -h.alpha_p * c1 * s - h.eta_p
    jac[..., 0, 1] = h.alpha_p * g
    jac[..., 1, 0] = 2.0 * s * (tau - 2.0 * c1 * p)
    jac[..., 1, 1] = 2.0 * delta(h, p, tau)
    return jac


# --- T10 ----------------------------------------------------------------------------------


def delta(h: Hyper, p: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T10: Delta = p (tau - (1 + sigma2) p) - eta, so that ds/dt = 2 s Delta."""
    p = np.asarray(p, dtype=float)
    return p * (np.asarray(tau) - (1.0 + h.sigma2) * p) - h.eta


def grows(h: Hyper, p: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T10: Delta > 0, the mode's s grows."""
    return delta(h, p, tau) > 0


def k_eigenvalue(h: Hyper, p: ArrayLike, s: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T6's K in the common eigenbasis: (1+sigma2)[(alpha_p/2) s + p^2] - tau p + eta + eta_p/2.

    Equal to (alpha_p (1 + sigma2) s + eta_p) / 2 - Delta; min over modes is lambda_min(K).
    """
    p, s = np.asarray(p, dtype=float), np.asarray(s, dtype=float)
    c1 = 1.0 + h.sigma2
    return c1 * (0.5 * h.alpha_p * s + p**2) - np.asarray(tau) * p + h.eta + 0.5 * h.eta_p


def k_positive(h: Hyper, p: ArrayLike, s: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T10: Delta < (alpha_p (1 + sigma2) s + eta_p) / 2, the mode keeps K > 0 (alignment)."""
    s = np.asarray(s, dtype=float)
    return delta(h, p, tau) < 0.5 * (h.alpha_p * (1.0 + h.sigma2) * s + h.eta_p)


# --- integration --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeSolution(Solution):
    """Result of `integrate`: states at the requested times, arrays (len(t), *S).

    ok: (S) False where a trajectory blew up, went non-finite or exceeded its step budget;
    its states are nan from t_fail on (t_fail is nan where ok). n_steps: (S) accepted
    steps per trajectory. message: "" when all ok, else what failed and what to do.
    stats: "nfev" (rhs evaluations, all trajectories), "n_steps" (as above).
    """

    p: np.ndarray
    s: np.ndarray
    tau: np.ndarray
    t_fail: np.ndarray
    n_steps: np.ndarray


def _stiff_resolve(h: Hyper, y0, t, rtol, atol, max_steps, method, batch) -> int:
    """Re-solve the stiff trajectories of `batch` one by one with an implicit SciPy method.

    Returns the rhs evaluations it took.
    """
    weights = _t7_weights(h, y0.shape[0]).ravel()

    def one(_time, y):
        return _t7_reduced(h, y[:, None], np.empty((y.size, 1)))[:, 0] * weights

    nfev = 0
    for j in np.flatnonzero(batch.stiff):
        res = solve_ivp_checked(
            one, y0[:, j], t, method=method, rtol=rtol, atol=atol, max_steps=max_steps
        )
        batch.y[:, :, j] = res.y
        batch.ok[j], batch.t_fail[j], batch.n_steps[j] = res.ok, res.t_fail, res.n_steps
        batch.exceeded[j] = batch.stiff[j] = not res.ok
        nfev += res.nfev
    return nfev


def integrate(
    h: Hyper,
    p0: ArrayLike,
    s0: ArrayLike,
    t: ArrayLike,
    tau0: ArrayLike = 1.0,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    on_failure: OnFailure = "warn",
    chunk: int = 16384,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    stiff_method: Literal["Radau", "LSODA", "BDF"] | None = None,
) -> ModeSolution:
    """T7: integrate every mode (p0, s0, tau0 broadcast to one shape S) at the times t.

    t: 1-D, strictly increasing, t[0] == 0. SimSiam (h.beta None): tau == 1, tau0 must be
    1. Each trajectory is SciPy's RK45 with its own step size (`solvers.rk45_batched`):
    the error test RMS(err / (atol + rtol |y|)) < 1 over its own (p, s[, tau]), outputs
    from RK45's dense output, like solve_ivp(t_eval=t); `chunk` trajectories at a time.
    max_steps: each trajectory's budget of steps (None: unbounded). A trajectory that
    blows up, goes non-finite or exceeds it has nan states from then on and sol.ok False.
    stiff_method: "Radau" / "LSODA" / "BDF" re-solves the trajectories that exceeded the
    budget at RK45's stability limit (stiff: large eta, s or alpha_p) with that implicit
    SciPy method (same budget); None reports them.
    on_failure: "warn" (RuntimeWarning), "raise" (ValueError) or "ignore".
    """
    if not isinstance(h, Hyper):
        raise TypeError(f"h must be a linear_ssl.theory.Hyper, not {type(h).__name__}")
    t = check_times(t)
    check_tolerances(rtol, atol)
    check_on_failure(on_failure)
    if stiff_method not in (None, "Radau", "LSODA", "BDF"):
        raise ValueError(
            f"stiff_method={stiff_method!r} is invalid: use None, 'Radau', 'LSODA' or 'BDF'"
        )
    states = [np.asarray(x, dtype=float) for x in (p0, s0, tau0)]
    try:
        p0, s0, tau0 = np.broadcast_arrays(*states)
    except ValueError:
        shapes = ", ".join(str(x.shape) for x in states)
        raise ValueError(f"p0, s0, tau0 have shapes {shapes}: they must broadcast") from None
    for name, x in (("p0", p0), ("s0", s0), ("tau0", tau0)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} has non-finite entries: initial conditions must be finite")
    if h.simsiam and np.any(tau0 != 1):
        raise ValueError("SimSiam (beta None) has tau == 1: drop tau0 or give Hyper a beta")
    shape = p0.shape
    rows = (p0, s0) if h.simsiam else (p0, s0, tau0)
    y0 = np.stack([x.ravel() for x in rows])
    batch = rk45_batched(
        lambda y, out: _t7_reduced(h, y, out),
        y0,
        t,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        chunk=chunk,
        row_scale=_t7_weights(h, y0.shape[0]).ravel(),
    )
    nfev = batch.nfev
    if stiff_method is not None and batch.stiff.any():
        nfev += _stiff_resolve(h, y0, t, rtol, atol, max_steps, stiff_method, batch)
    out = batch.y
    p, s = out[:, 0].reshape(t.size, *shape), out[:, 1].reshape(t.size, *shape)
    tau = np.ones_like(p) if h.simsiam else out[:, 2].reshape(t.size, *shape)

    def describe(j: int) -> str:
        return f"p0={y0[0, j]:.6g}, s0={y0[1, j]:.6g}" + (
            "" if h.simsiam else f", tau0={y0[2, j]:.6g}"
        )

    message = batch.failure_message("modes.integrate", describe, "stiff_method='Radau'")
    stats = {"nfev": nfev, "n_steps": batch.n_steps.reshape(shape)}
    sol = ModeSolution(
        t=t,
        p=p,
        s=s,
        tau=tau,
        ok=batch.ok.reshape(shape),
        t_fail=batch.t_fail.reshape(shape),
        n_steps=batch.n_steps.reshape(shape),
        message=message,
        stats=stats,
    )
    handle_failure(sol.ok, message, on_failure)
    return sol


# --- the collapse basin (T9) --------------------------------------------------------------


def collapses(
    h: Hyper,
    p0: ArrayLike,
    s0: ArrayLike,
    tau0: ArrayLike = 1.0,
    method: Literal["auto", "integrate"] = "auto",
    t_max: float | None = None,
    s_tol: float = 1e-8,
) -> np.ndarray:
    """T9: True where the mode started at (p0, s0[, tau0]) collapses (s -> 0), broadcast.

    method="auto" uses the closed form where it applies: tau fixed (SimSiam) and either
    eta past the collapse threshold (everything collapses) or the start on the parabola
    s0 = p0^2 / alpha_p (collapse iff p0 < p_minus). Elsewhere (and everywhere with
    method="integrate") it integrates T7 to t_max (default 20 / min(1, eta, beta), eta and
    beta counted when > 0) and calls a mode collapsed when s(t_max) < s_tol or
    p(t_max) < p_minus(tau(t_max)), T9's basin on the parabola every trajectory approaches.
    Starts within about exp(-20) of the separatrix may need a longer t_max.
    Raises ValueError when some trajectory blows up.
    """
    p0, s0, tau0 = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (p0, s0, tau0)))
    if method not in ("auto", "integrate"):
        raise ValueError(f"method={method!r} is invalid: use 'auto' or 'integrate'")
    result = np.zeros(p0.shape, dtype=bool)
    todo = np.ones(p0.shape, dtype=bool)
    if method == "auto" and h.simsiam:
        if h.eta > collapse_threshold(h):
            return np.ones(p0.shape, dtype=bool)
        on_parabola = np.isclose(s0, parabola(h, p0), rtol=1e-12, atol=0.0)
        result[on_parabola] = p0[on_parabola] < fixed_points(h)[0]
        todo = ~on_parabola
    if np.any(todo):
        rates = [1.0] + [r for r in (h.eta, h.beta) if r]
        t_end = 20.0 / min(rates) if t_max is None else float(t_max)
        if not (np.isfinite(t_end) and t_end > 0):
            raise ValueError(f"t_max={t_max!r} is invalid: it must be finite and > 0")
        sol = integrate(h, p0[todo], s0[todo], [0.0, t_end], tau0[todo], on_failure="raise")
        p, s, tau = sol.p[-1], sol.s[-1], sol.tau[-1]
        p_minus = fixed_points(h, tau)[0]
        result[todo] = (s < s_tol) | (p < p_minus) | np.isnan(p_minus)
    return result
