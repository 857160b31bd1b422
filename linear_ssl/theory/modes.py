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

`integrate` is SciPy's RK45 (Dormand-Prince 5(4), its coefficients, step-size control,
first-step choice and dense output) run for every trajectory at once, each with its own
step size: benchmarks/bench_modes.py shows it agrees with a per-trajectory
`scipy.integrate.solve_ivp(method="RK45")` loop and is hundreds of times faster.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import RK45

from linear_ssl.theory.params import Hyper

OnFailure = Literal["warn", "raise", "ignore"]

# SciPy's RK45 step-size control constants (scipy/integrate/_ivp/rk.py).
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1)


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
    if h.eta:
        np.multiply(p, h.eta / h.alpha_p, out=g)
        out[0] -= g  # dp/dt / alpha_p = s g - (eta / alpha_p) p
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
    stable; at eta = 0, p_minus = 0 and p_plus = tau / (1 + sigma2).
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
    jac[..., 0, 0] = -h.alpha_p * c1 * s - h.eta
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
    """T6's K in the common eigenbasis: (1+sigma2)[(alpha_p/2) s + p^2] - tau p + (3/2) eta.

    Equal to (alpha_p (1 + sigma2) s + eta) / 2 - Delta; min over modes is lambda_min(K).
    """
    p, s = np.asarray(p, dtype=float), np.asarray(s, dtype=float)
    c1 = 1.0 + h.sigma2
    return c1 * (0.5 * h.alpha_p * s + p**2) - np.asarray(tau) * p + 1.5 * h.eta


def k_positive(h: Hyper, p: ArrayLike, s: ArrayLike, tau: ArrayLike = 1.0) -> np.ndarray:
    """T10: Delta < (alpha_p (1 + sigma2) s + eta) / 2, the mode keeps K > 0 (alignment)."""
    s = np.asarray(s, dtype=float)
    return delta(h, p, tau) < 0.5 * (h.alpha_p * (1.0 + h.sigma2) * s + h.eta)


# --- integration --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeSolution:
    """Result of `integrate`: states at the requested times, arrays (len(t), *S).

    ok: (S) False where a trajectory blew up or went non-finite (its step size fell
    below SciPy's floor); its states are nan from t_fail on (t_fail is nan where ok).
    n_steps: (S) accepted steps per trajectory.
    """

    t: np.ndarray
    p: np.ndarray
    s: np.ndarray
    tau: np.ndarray
    ok: np.ndarray
    t_fail: np.ndarray
    n_steps: np.ndarray

    @property
    def all_ok(self) -> bool:
        """True when every trajectory reached t[-1]."""
        return bool(np.all(self.ok))


def _norm(x: np.ndarray) -> np.ndarray:
    """SciPy's RMS norm over the state components (axis 0), per trajectory."""
    return np.sqrt(np.einsum("ij,ij->j", x, x) / x.shape[0])


def _first_step(h: Hyper, y, f, t_end, rtol, atol):
    """SciPy's select_initial_step (common.py), per trajectory."""
    scale = atol + np.abs(y) * rtol
    d0, d1 = _norm(y / scale), _norm(f / scale)
    h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.where(d1 > 0, d1, 1.0))
    h0 = np.minimum(h0, t_end)
    f1 = _t7_reduced(h, y + h0 * f, np.empty_like(y)) * _t7_weights(h, y.shape[0])
    d2 = _norm((f1 - f) / scale) / h0
    with np.errstate(divide="ignore"):
        h1 = np.where(
            (d1 <= 1e-15) & (d2 <= 1e-15),
            np.maximum(1e-6, h0 * 1e-3),
            (0.01 / np.maximum(d1, d2)) ** (1.0 / (RK45.error_estimator_order + 1)),
        )
    return np.minimum(np.minimum(100 * h0, h1), t_end)


def _solve_chunk(h: Hyper, y0: np.ndarray, t: np.ndarray, rtol, atol, out, lo, t_fail, n_steps):
    """RK45 for a block of trajectories y0 (n, N), each with its own step.

    Fills out[:, :, lo : lo + N] (out: the whole C-contiguous result), t_fail and n_steps.

    Mirrors scipy.integrate.RK45._step_impl with arrays of trajectories in place of
    scalars; finished and failed trajectories leave the block. The stages are kept
    multiplied by each trajectory's step, next to the state, so that every stage's input
    y + sum_j a_ij step k_j is a single matrix-vector product.
    """
    n, t_end = y0.shape[0], t[-1]
    stages = RK45.n_stages
    out[0, :, lo : lo + y0.shape[1]] = y0
    if t.size == 1:
        return
    # with_y[i] multiplies (y, step k_0, ..., step k_{i-1}) into the stage-i input
    with_y = [np.concatenate(([1.0], RK45.A[i, :i])) for i in range(1, stages)]
    with_y.append(np.concatenate(([1.0], RK45.B)))
    live = np.arange(y0.shape[1])  # chunk indices of unfinished trajectories
    hk = np.empty((stages + 2, n, live.size))  # rows: y, step k_0, ..., step k_6
    hk[0] = y0
    weights = _t7_weights(h, n)
    f = _t7_reduced(h, hk[0], np.empty((n, live.size)))  # k_0 / weights (first same as last)
    h_abs = _first_step(h, y0, f * weights, t_end, rtol, atol)
    tt = np.zeros(live.size)
    rejected = np.zeros(live.size, dtype=bool)
    next_out = np.ones(live.size, dtype=np.intp)  # index in t of the next output
    t_next = np.full(live.size, t[1] if t.size > 1 else np.inf)
    steps = np.zeros(live.size, dtype=np.intp)
    t_pad = np.append(t, np.inf)
    n_total, out_flat = out.shape[2], out.reshape(-1)  # flat indices: one scatter per output
    row_offsets = (np.arange(n) * n_total)[:, None]
    min_step_bound = 10.0 * np.spacing(t_end)  # >= every trajectory's min_step
    y_stage, y_new, f_new, abs_new = (np.empty((n, live.size)) for _ in range(4))
    abs_y = np.abs(y0)
    idle = 0  # finished trajectories still in the block
    while live.size:
        m = live.size
        y = hk[0]
        hk_flat = hk.reshape(stages + 2, n * m)
        # SciPy's floor on the step, 10 ulp of t (computed only where it can matter)
        small = np.flatnonzero(h_abs < min_step_bound)
        failed = None
        if small.size:
            min_step = 10.0 * (np.nextafter(tt[small], np.inf) - tt[small])
            failed = np.zeros(m, dtype=bool)
            failed[small] = rejected[small] & (h_abs[small] < min_step)
            h_abs[small] = np.maximum(h_abs[small], min_step)
        t_new = np.minimum(tt + h_abs, t_end)
        step = t_new - tt
        step_weights = weights * step
        np.multiply(f, step_weights, out=hk[1])
        for i in range(1, stages):
            np.dot(with_y[i - 1], hk_flat[: i + 1], out=y_stage.reshape(-1))
            _t7_reduced(h, y_stage, hk[i + 1])
            hk[i + 1] *= step_weights
        np.dot(with_y[-1], hk_flat[: stages + 1], out=y_new.reshape(-1))
        _t7_reduced(h, y_new, f_new)
        np.multiply(f_new, step_weights, out=hk[-1])
        # err / (atol + rtol max(|y|, |y_new|)) = (err / rtol) / (max(...) + atol / rtol)
        np.abs(y_new, out=abs_new)
        scale = np.maximum(abs_y, abs_new)
        scale += atol / rtol
        err = np.dot(RK45.E, hk_flat[1:]).reshape(n, m)
        err /= scale
        np.square(err, out=err)
        err_norm2 = np.add.reduce(err, axis=0)  # n rtol^2 (RMS error norm)^2
        accept = err_norm2 < n * rtol**2
        if failed is not None:
            accept &= ~failed
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = err_norm2 ** (0.5 * _ERROR_EXPONENT)  # SAFETY * RMS norm^(-1/5)
        factor *= _SAFETY * (n * rtol**2) ** (-0.5 * _ERROR_EXPONENT)
        # accepted: min(10, factor), capped at 1 after a rejection; rejected: max(0.2, factor)
        factor = np.fmax(_MIN_FACTOR, np.minimum(np.where(rejected, 1.0, _MAX_FACTOR), factor))
        h_abs *= factor
        rejected = ~accept
        # dense output at the requested times in (tt, t_new], as solve_ivp(t_eval=...) does
        due = np.flatnonzero(accept & (t_next <= t_new))
        if due.size:
            # RK45's quartic interpolant y + sum_j (step K^T P)_j x^(j+1), one per step
            q = np.dot(RK45.P.T, np.take(hk[1:], due, axis=2).reshape(stages + 1, -1))
            q = q.reshape(4, n, due.size)
            y_due = np.take(y, due, axis=1)
        sub = np.arange(due.size)  # the due trajectories with an output left in this step
        while sub.size:
            now = due[sub]
            x = (t_next[now] - tt[now]) / step[now]
            qs = q if sub.size == due.size else np.take(q, sub, axis=2)
            ys = qs[3] * x  # Horner
            for j in (2, 1, 0):
                ys += qs[j]
                ys *= x
            ys += y_due if sub.size == due.size else np.take(y_due, sub, axis=1)
            rows = next_out[now]
            out_flat[(rows * (n * n_total) + lo + live[now]) + row_offsets] = ys
            next_out[now] = rows + 1
            t_following = t_pad[rows + 1]
            t_next[now] = t_following
            sub = sub[t_following <= t_new[now]]
        # advance the accepted trajectories (most of them: swap buffers, undo the rest)
        stay = np.flatnonzero(~accept)
        if stay.size:  # (np.take: much faster than 2-D fancy indexing)
            y_new[:, stay] = np.take(y, stay, axis=1)
            f_new[:, stay] = np.take(f, stay, axis=1)
            t_new[stay] = tt[stay]
            abs_new[:, stay] = np.take(abs_y, stay, axis=1)
        hk[0] = y_new
        f, f_new, tt, abs_y, abs_new = f_new, f, t_new, abs_new, abs_y
        steps += accept if idle == 0 else accept & (step > 0)
        done = tt >= t_end
        if failed is not None and failed.any():
            for j in np.flatnonzero(failed):
                out[next_out[j] :, :, lo + live[j]] = np.nan
                t_fail[live[j]] = tt[j]
            done |= failed
        # finished trajectories idle harmlessly (step 0) until an eighth of the block is done
        idle = np.count_nonzero(done)
        if idle and (failed is not None or idle == m or 8 * idle >= m):
            idle = 0
            n_steps[live[done]] = steps[done]
            keep = np.flatnonzero(~done)
            live, tt, steps = live[keep], tt[keep], steps[keep]
            h_abs, rejected = h_abs[keep], rejected[keep]
            next_out, t_next = next_out[keep], t_next[keep]
            y_keep, f = np.take(hk[0], keep, axis=1), np.take(f, keep, axis=1)
            hk = np.empty((stages + 2, n, keep.size))
            hk[0] = y_keep
            y_stage, y_new, f_new, abs_new = (np.empty((n, keep.size)) for _ in range(4))
            abs_y = np.abs(y_keep)


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
) -> ModeSolution:
    """T7: integrate every mode (p0, s0, tau0 broadcast to one shape S) at the times t.

    t: 1-D, strictly increasing, t[0] == 0. SimSiam (h.beta None): tau == 1, tau0 must be
    1. Each trajectory is SciPy's RK45 with its own step size and the error test
    RMS(err / (atol + rtol |y|)) < 1 over its own (p, s[, tau]); outputs come from RK45's
    dense output, like solve_ivp(t_eval=t). Trajectories are solved `chunk` at a time, so
    working memory is bounded apart from the result itself.
    on_failure: what to do when a trajectory blows up or goes non-finite (its states are
    nan from then on and sol.ok is False): "warn" (RuntimeWarning), "raise" (ValueError)
    or "ignore".
    """
    if not isinstance(h, Hyper):
        raise TypeError(f"h must be a linear_ssl.theory.Hyper, not {type(h).__name__}")
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size == 0 or t[0] != 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a 1-D array of strictly increasing times starting at 0")
    if not np.all(np.isfinite(t)):
        raise ValueError("t must be finite")
    if not (np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol={rtol!r} is invalid: it must be finite and > 0")
    if not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol={atol!r} is invalid: it must be finite and >= 0")
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure={on_failure!r} is invalid: use 'warn', 'raise' or 'ignore'")
    if int(chunk) < 1:
        raise ValueError(f"chunk={chunk!r} is invalid: it must be a positive integer")
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
    out = np.empty((t.size, y0.shape[0], y0.shape[1]))
    t_fail = np.full(y0.shape[1], np.nan)
    n_steps = np.zeros(y0.shape[1], dtype=np.intp)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for lo in range(0, y0.shape[1], int(chunk)):
            sl = slice(lo, lo + int(chunk))
            _solve_chunk(h, y0[:, sl], t, rtol, atol, out, lo, t_fail[sl], n_steps[sl])
    p, s = out[:, 0].reshape(t.size, *shape), out[:, 1].reshape(t.size, *shape)
    tau = np.ones_like(p) if h.simsiam else out[:, 2].reshape(t.size, *shape)
    ok = np.isnan(t_fail).reshape(shape)
    sol = ModeSolution(t, p, s, tau, ok, t_fail.reshape(shape), n_steps.reshape(shape))
    if not sol.all_ok and on_failure != "ignore":
        first = np.unravel_index(np.argmin(ok), shape) if shape else ()
        msg = (
            f"modes.integrate: {np.count_nonzero(~ok)} of {ok.size} trajectories blew up or "
            f"went non-finite (e.g. index {tuple(int(i) for i in first)}: p0={p0[first]:.6g}, "
            f"s0={s0[first]:.6g}, tau0={tau0[first]:.6g}, at t={sol.t_fail[first]:.6g}); "
            "their states are nan from then on (sol.ok is False)"
        )
        if on_failure == "raise":
            raise ValueError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
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
