"""The integrators every flow of theory/ shares: one solution type, one failure policy.

- `Solution`: what every integrator returns: `t`, its named states, `ok` (per
  trajectory), `message` ("" when all went well) and `stats` (rhs evaluations, steps).
- `handle_failure`: the one `on_failure=` policy, "raise" | "warn" | "ignore".
- `rk45_batched`: SciPy's RK45 (Dormand-Prince 5(4): its tableau, step-size control,
  first-step choice and dense output) for many small systems at once, each with its own
  step size. It is how T7, N2 and the rule flows stay fast over phase-portrait sweeps:
  benchmarks/bench_modes.py shows it agrees with a per-trajectory
  `scipy.integrate.solve_ivp(method="RK45")` loop and is hundreds of times faster.
- `solve_ivp_checked`: one larger system (the matrix flows) through SciPy's own solver
  classes, with the same step budget and failure report.

Batched flows default to on_failure="warn" (one bad trajectory of a sweep should not
lose the rest); single-system flows (the matrix flows, SGD) default to "raise".

Both integrators stop a trajectory that blows up, goes non-finite or exceeds its step
budget (`max_steps`): its states are nan from then on, `ok` is False and the message says
what happened. A trajectory stopped by the budget whose steps were mostly limited by
stability is reported as stiff, with the implicit method to use instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, Radau

OnFailure = Literal["raise", "warn", "ignore"]
ON_FAILURE = ("raise", "warn", "ignore")

# rk45_batched's default budget of steps per trajectory (accepted and rejected)
DEFAULT_MAX_STEPS = 20_000
# a budget-stopped trajectory that has not grown past this factor is called stiff: an
# explicit step held at its stability limit while the solution barely changes (one that
# grows without bound instead is blowing up, which no implicit method cures)
_STIFF_GROWTH = 1e3

# SciPy's RK45 step-size control constants (scipy/integrate/_ivp/rk.py).
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1)

_METHODS = {
    "RK23": RK23,
    "RK45": RK45,
    "DOP853": DOP853,
    "Radau": Radau,
    "BDF": BDF,
    "LSODA": LSODA,
}
_EXPLICIT = ("RK23", "RK45", "DOP853")


@dataclass(frozen=True, kw_only=True)
class Solution:
    """Base of every solution object of theory/ (each a frozen dataclass, built by keyword).

    The fields every subclass has: `t` (the requested times), `ok` (bool per trajectory;
    shape () for a single system), `message` ("" when every trajectory reached t[-1]) and
    `stats` (at least "nfev", rhs evaluations, and "n_steps", accepted steps); each
    subclass adds its named states (arrays with len(t) leading).
    """

    t: np.ndarray
    ok: np.ndarray
    message: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def all_ok(self) -> bool:
        """True when every trajectory reached t[-1]."""
        return bool(np.all(self.ok))


def check_on_failure(on_failure: str) -> None:
    """One-line error for an unknown on_failure policy."""
    if on_failure not in ON_FAILURE:
        raise ValueError(f"on_failure={on_failure!r} is invalid: use 'raise', 'warn' or 'ignore'")


def check_max_steps(max_steps: int | None) -> int | None:
    """max_steps: a positive integer, or None for no budget."""
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
        raise TypeError(f"max_steps={max_steps!r} is invalid: give a positive integer or None")
    if max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is invalid: it must be >= 1 (None: no budget)")
    return int(max_steps)


def check_times(t, from_zero: bool = True) -> np.ndarray:
    """t: 1-D, finite, strictly increasing, starting at 0 unless from_zero is False."""
    t = np.asarray(t, dtype=float)
    start = " starting at 0" if from_zero else ""
    if t.ndim != 1 or t.size == 0 or (from_zero and t[0] != 0) or np.any(np.diff(t) <= 0):
        raise ValueError(f"t must be a 1-D array of strictly increasing times{start}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t must be finite")
    return t


def check_tolerances(rtol: float, atol: float) -> None:
    """rtol > 0 and atol >= 0, both finite."""
    if not (np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol={rtol!r} is invalid: it must be finite and > 0")
    if not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol={atol!r} is invalid: it must be finite and >= 0")


def handle_failure(ok, message: str, on_failure: OnFailure, stacklevel: int = 3) -> None:
    """The shared policy: nothing when all ok; else raise ValueError, warn, or ignore."""
    check_on_failure(on_failure)
    if np.all(ok) or on_failure == "ignore":
        return
    if on_failure == "raise":
        raise ValueError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)


# --- many small systems: batched RK45 --------------------------------------------------------


RowRhs = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BatchResult:
    """What `rk45_batched` computed: y (len(t), n_state, N) and per-trajectory facts.

    ok: reached t[-1]; t_fail: where a failed trajectory stopped (nan where ok);
    n_steps: accepted steps; exceeded: stopped by the step budget; stiff: exceeded with
    a stiff signature (stopped without having grown: the step size held at the stability
    limit); nfev: rhs evaluations,
    counted per trajectory and summed.
    """

    y: np.ndarray
    ok: np.ndarray
    t_fail: np.ndarray
    n_steps: np.ndarray
    exceeded: np.ndarray
    stiff: np.ndarray
    nfev: int

    def outcome(
        self,
        shape: tuple[int, ...],
        name: str,
        on_failure: OnFailure,
        stacklevel: int = 4,
        describe: Callable[[int], str] | None = None,
    ) -> tuple[np.ndarray, str, dict]:
        """(ok, message, stats) for a solution whose trajectories have `shape`, after the
        on_failure policy (``handle_failure``; stacklevel as there, counted from here).

        stats: "nfev" and "n_steps" (shape); message: ``failure_message(name, describe)``.
        """
        ok = self.ok.reshape(shape)
        message = self.failure_message(name, describe)
        handle_failure(ok, message, on_failure, stacklevel=stacklevel)
        return ok, message, {"nfev": self.nfev, "n_steps": self.n_steps.reshape(shape)}

    def failure_message(
        self,
        name: str,
        describe: Callable[[int], str] | None = None,
        stiff_hint: str = "an implicit method",
    ) -> str:
        """One line: how many trajectories failed, why, and what to do ("" when all ok).

        describe(j): the start of trajectory j in the caller's terms; stiff_hint: how the
        caller's API selects an implicit method.
        """
        if np.all(self.ok):
            return ""
        bad = np.flatnonzero(~self.ok)
        first = int(bad[0])
        n_exceeded = int(np.count_nonzero(self.exceeded))
        n_blown = bad.size - n_exceeded
        total = self.ok.size
        parts = []
        if n_blown:
            parts.append(f"{n_blown} of {total} trajectories blew up or went non-finite")
        if n_exceeded:
            stiff = int(np.count_nonzero(self.stiff))
            parts.append(
                f"{n_exceeded} of {total} exceeded the step budget (max_steps)"
                + (f", {stiff} of them stiff" if stiff else "")
            )
        where = f"trajectory {first}" + (f" ({describe(first)})" if describe else "")
        advice = " their states are nan from then on (sol.ok is False)"
        if n_exceeded:
            advice += f"; raise max_steps, or for stiff trajectories use {stiff_hint}"
        return (
            f"{name}: {' and '.join(parts)} (e.g. {where}, at t={self.t_fail[first]:.6g});{advice}"
        )


def _norm(x: np.ndarray) -> np.ndarray:
    """SciPy's RMS norm over the state components (axis 0), per trajectory."""
    return np.sqrt(np.einsum("ij,ij->j", x, x) / x.shape[0])


def _first_step(fun: RowRhs, weights, y, f, t_end, rtol, atol):
    """SciPy's select_initial_step (common.py), per trajectory; f = dy/dt at y."""
    scale = atol + np.abs(y) * rtol
    d0, d1 = _norm(y / scale), _norm(f / scale)
    h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.where(d1 > 0, d1, 1.0))
    h0 = np.minimum(h0, t_end)
    f1 = fun(y + h0 * f, np.empty_like(y)) * weights
    d2 = _norm((f1 - f) / scale) / h0
    with np.errstate(divide="ignore"):
        h1 = np.where(
            (d1 <= 1e-15) & (d2 <= 1e-15),
            np.maximum(1e-6, h0 * 1e-3),
            (0.01 / np.maximum(d1, d2)) ** (1.0 / (RK45.error_estimator_order + 1)),
        )
    return np.minimum(np.minimum(100 * h0, h1), t_end)


@dataclass
class _Chunk:
    """The per-trajectory outputs of one block, views into the whole result's arrays."""

    t_fail: np.ndarray
    n_steps: np.ndarray
    exceeded: np.ndarray
    stiff: np.ndarray
    nfev: int = 0


def _solve_chunk(fun, weights, y0, t, rtol, atol, max_steps, out, lo, res: _Chunk) -> None:
    """RK45 for a block of trajectories y0 (n, m), each with its own step.

    Fills out[:, :, lo : lo + m] (out: the whole C-contiguous result) and res.

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
    f = fun(hk[0], np.empty((n, live.size)))  # k_0 / weights (first same as last)
    h_abs = _first_step(fun, weights, y0, f * weights, t_end, rtol, atol)
    nfev = 2 * live.size
    tt = np.zeros(live.size)
    rejected = np.zeros(live.size, dtype=bool)
    next_out = np.ones(live.size, dtype=np.intp)  # index in t of the next output
    t_next = np.full(live.size, t[1] if t.size > 1 else np.inf)
    steps = np.zeros(live.size, dtype=np.intp)
    attempts = np.zeros(live.size, dtype=np.intp)
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
            fun(y_stage, hk[i + 1])
            hk[i + 1] *= step_weights
        np.dot(with_y[-1], hk_flat[: stages + 1], out=y_new.reshape(-1))
        fun(y_new, f_new)
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
        if idle:  # finished trajectories still in the block take steps of 0
            moving = step > 0
            steps += accept & moving
            attempts += moving
            nfev += stages * int(np.count_nonzero(moving))
        else:
            steps += accept
            attempts += 1
            nfev += stages * m
        done = tt >= t_end
        over = None
        if max_steps is not None:
            over = (attempts >= max_steps) & ~done
            if over.any():
                failed = over if failed is None else failed | over
        if failed is not None and failed.any():
            for j in np.flatnonzero(failed):
                out[next_out[j] :, :, lo + live[j]] = np.nan
                res.t_fail[live[j]] = tt[j]
            if over is not None and over.any():
                res.exceeded[live[over]] = True
                size_now = np.max(np.abs(np.take(y, np.flatnonzero(over), axis=1)), axis=0)
                size_start = np.max(np.abs(y0[:, live[over]]), axis=0)
                res.stiff[live[over]] = size_now <= _STIFF_GROWTH * np.maximum(size_start, 1.0)
            done |= failed
        # finished trajectories idle harmlessly (step 0) until an eighth of the block is done
        idle = np.count_nonzero(done)
        if idle and (failed is not None or idle == m or 8 * idle >= m):
            idle = 0
            res.n_steps[live[done]] = steps[done]
            keep = np.flatnonzero(~done)
            live, tt, steps, attempts = live[keep], tt[keep], steps[keep], attempts[keep]
            h_abs, rejected = h_abs[keep], rejected[keep]
            next_out, t_next = next_out[keep], t_next[keep]
            y_keep, f = np.take(hk[0], keep, axis=1), np.take(f, keep, axis=1)
            hk = np.empty((stages + 2, n, keep.size))
            hk[0] = y_keep
            y_stage, y_new, f_new, abs_new = (np.empty((n, keep.size)) for _ in range(4))
            abs_y = np.abs(y_keep)
    res.nfev += nfev


def rk45_batched(
    fun: RowRhs,
    y0: np.ndarray,
    t: np.ndarray,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    chunk: int = 16384,
    row_scale: np.ndarray | None = None,
) -> BatchResult:
    """SciPy's RK45 for N systems at once, one COLUMN of y0 (n_state, N) per system.

    fun(y, out) writes dy/dt into out (both (n_state, m)) and returns out; it may couple
    the rows of a column (e.g. mean-field sums over modes), never columns. row_scale
    (n_state,): optional constant factors, fun then writes dy/dt / row_scale (the factors
    are applied together with the step size, one multiply fewer per stage).

    Each system takes its own steps with the error test
    RMS(err / (atol + rtol |y|)) < 1 over its own column, and its outputs come from RK45's
    dense output at the times t (1-D, increasing, from 0), like solve_ivp(t_eval=t).
    Systems are solved `chunk` at a time (bounded working memory). max_steps bounds the
    steps (accepted and rejected) of each system: past it the system stops, as one that
    blows up or goes non-finite does (nan from then on, ok False).
    """
    t = check_times(t)
    check_tolerances(rtol, atol)
    max_steps = check_max_steps(max_steps)
    if int(chunk) < 1:
        raise ValueError(f"chunk={chunk!r} is invalid: it must be a positive integer")
    y0 = np.asarray(y0, dtype=float)
    if y0.ndim != 2:
        raise ValueError(f"y0 has shape {y0.shape}: it must be (n_state, n_systems)")
    n, N = y0.shape
    weights = np.ones((n, 1)) if row_scale is None else np.asarray(row_scale, float)[:, None]
    out = np.empty((t.size, n, N))
    res = _Chunk(
        t_fail=np.full(N, np.nan),
        n_steps=np.zeros(N, dtype=np.intp),
        exceeded=np.zeros(N, dtype=bool),
        stiff=np.zeros(N, dtype=bool),
    )
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for lo in range(0, N, int(chunk)):
            sl = slice(lo, lo + int(chunk))
            part = _Chunk(res.t_fail[sl], res.n_steps[sl], res.exceeded[sl], res.stiff[sl])
            _solve_chunk(fun, weights, y0[:, sl], t, rtol, atol, max_steps, out, lo, part)
            res.nfev += part.nfev
    return BatchResult(
        y=out,
        ok=np.isnan(res.t_fail),
        t_fail=res.t_fail,
        n_steps=res.n_steps,
        exceeded=res.exceeded,
        stiff=res.stiff,
        nfev=res.nfev,
    )


# --- one larger system: SciPy's solver classes ---------------------------------------------


class _NonFinite(Exception):
    """Raised inside a solver step when the right-hand side is not finite."""


@dataclass(frozen=True)
class IVPResult:
    """What `solve_ivp_checked` computed: y (len(t), n_state), nan after a failure."""

    y: np.ndarray
    ok: bool
    message: str
    nfev: int
    n_steps: int
    t_fail: float


def solve_ivp_checked(
    fun: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t: np.ndarray,
    *,
    method: str = "RK45",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    name: str = "solve_ivp",
) -> IVPResult:
    """scipy.integrate.solve_ivp(fun, (t[0], t[-1]), y0, t_eval=t) for one system, bounded.

    The same loop as solve_ivp over SciPy's own solver classes (method: "RK45", "RK23",
    "DOP853", "Radau", "BDF" or "LSODA"), stopped when the state goes non-finite, the
    solver fails, or max_steps accepted steps pass without reaching t[-1]; then the
    states from there on are nan, ok is False and message says why (and, for an explicit
    method stopped by the budget, that the problem may be stiff).
    """
    t = check_times(t, from_zero=False)
    check_tolerances(rtol, atol)
    max_steps = check_max_steps(max_steps)
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is invalid: use one of {', '.join(_METHODS)}")
    y0 = np.asarray(y0, dtype=float)
    out = np.full((t.size, y0.size), np.nan)
    out[0] = y0
    if t.size == 1:
        return IVPResult(out, True, "", 0, 0, np.nan)

    def finite_fun(time: float, y: np.ndarray) -> np.ndarray:
        dy = fun(time, y)
        if not np.all(np.isfinite(dy)):
            raise _NonFinite(time)
        return dy

    steps, filled, message, t_now, nfev = 0, 1, "", float(t[0]), 0
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            solver = _METHODS[method](finite_fun, t[0], y0, t[-1], rtol=rtol, atol=atol)
            while solver.status == "running":
                t_old = solver.t
                solver_message = solver.step()
                t_now, nfev = float(solver.t), int(solver.nfev)
                if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
                    message = solver_message or "the state went non-finite (it diverged)"
                    break
                steps += 1
                hi = np.searchsorted(t, solver.t, side="right")
                if hi > filled:
                    dense = solver.dense_output()
                    out[filled:hi] = dense(t[filled:hi]).T if solver.t > t_old else solver.y
                    filled = hi
                if max_steps is not None and steps >= max_steps and solver.status == "running":
                    message = f"it exceeded max_steps={max_steps} steps"
                    if method in _EXPLICIT:
                        message += (
                            " (if the problem is stiff, method='Radau' or 'LSODA' takes far "
                            "fewer; else raise max_steps)"
                        )
                    break
        except _NonFinite as stop:
            message = f"the flow went non-finite near t={stop.args[0]:.6g} (it diverged)"
    ok = filled == t.size
    t_fail = np.nan if ok else t_now
    if not ok:
        message = (
            f"{name}: stopped at t={t_fail:.6g} of {t[-1]:.6g}: {message}; "
            "states are nan from there"
        )
    return IVPResult(out, ok, "" if ok else message, nfev, steps, t_fail)
