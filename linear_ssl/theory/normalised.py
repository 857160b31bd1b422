"""The flows of the normalised (cosine) loss the networks train with (theory.md 2b: A4, N1, N2).

The loss is -c_L cos(q, z_a), q = Wp W x1, z_a = Wa x2 (c_L = 2 for BYOL's 2 - 2 cos, 4 for
its symmetric sum). Under A4 (norm concentration) its expected gradient replaces ||q||,
||z_a|| and cos(q, z_a) by their typical values N_q, N_a and kappa (``scalars``):

    G~ = a Wa X - b Wp W (X+X'),   a = 1 / (N_q N_a),   b = kappa / N_q^2
    dWp/dt = alpha_p c_L G~ W^T - eta_p Wp                                   (N1)
    dW/dt  = c_L Wp^T G~        - eta W
    dWa/dt = beta (W - Wa)                  (SimSiam, h.beta None: Wa == W)

- `vector_field`, `integrate`: N1 for any X, X' (stop_grad=False: the gradient also flows
  through the target branch, Wa = W: dW/dt gains c_L (a Wp W X - (kappa / N_a^2) W (X+X')),
  derived from A4 in the same way).
- `mode_field`, `integrate_modes`: N2, one (p_j, s_j, tau_j) per mode, the modes of one
  system coupled only through a(t), b(t); vectorised over independent systems by the
  shared batched RK45 (``solvers.rk45_batched``). ``predictor=`` sets p from s by an R-rule's
  diagonal form (``PredictorRule.spectrum``) instead of integrating it.
- `N2Solution.shape` (s^_j = s_j / sum_k s_k) and `N2Solution.rates` (r_j = 2 c_L p_j g_j):
  d log s^_j / dt = r_j - sum_k s^_k r_k, free of the weight decay.

The cosine loss is scale-invariant: tr(Wp^T G~ W^T) = 0, so with eta = eta_p = 0 the norms
||W||_F and ||Wp||_F are constant and a fixed point rescaled is a fixed point; T2 holds
(exactly when eta_p == eta, ``matrix.balance_rate`` otherwise). The ground truth is
``theory.sgd.simulate(..., loss="cosine")``; compare on shapes, not absolute scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from linear_ssl import predictors
from linear_ssl.theory.matrix import MatrixSolution, _Start, _state
from linear_ssl.theory.params import Hyper
from linear_ssl.theory.solvers import (
    DEFAULT_MAX_STEPS,
    OnFailure,
    Solution,
    check_on_failure,
    check_times,
    handle_failure,
    rk45_batched,
    solve_ivp_checked,
)

__all__ = [
    "N1Solution",
    "N2Solution",
    "Scalars",
    "integrate",
    "integrate_modes",
    "mode_field",
    "mode_scalars",
    "scalars",
    "vector_field",
]


# --------------------------------------------------------------------------- A4's scalars


@dataclass(frozen=True)
class Scalars:
    """A4's scalars (arrays over any leading axes): N_q, N_a, kappa and N1's a, b."""

    N_q: np.ndarray
    N_a: np.ndarray
    kappa: np.ndarray
    a: np.ndarray
    b: np.ndarray


def _from_moments(nq2, na2, cross) -> Scalars:
    """A4 / N1: the scalars from N_q^2 = E||q||^2, N_a^2 = E||z_a||^2 and E[q . z_a]."""
    N_q, N_a = np.sqrt(nq2), np.sqrt(na2)
    a = 1.0 / (N_q * N_a)
    return Scalars(N_q=N_q, N_a=N_a, kappa=cross * a, a=a, b=cross * a / nq2)


def scalars(W, Wp, Wa, X, Xp) -> Scalars:
    """A4: N_q^2 = tr(Wp W (X+X') W^T Wp^T), N_a^2 = tr(Wa (X+X') Wa^T),
    kappa = tr(Wp W X Wa^T) / (N_q N_a); a = 1/(N_q N_a), b = kappa / N_q^2 (N1).

    W, Wa (..., n2, n1), Wp (..., n2, n2) over any leading axes (e.g. a trajectory).
    """
    W, Wp, Wa = (np.asarray(M, dtype=float) for M in (W, Wp, Wa))
    X, Xp = np.asarray(X, dtype=float), np.asarray(Xp, dtype=float)
    return _products(W, Wp, Wa, X, X + Xp)[0]


def _products(W, Wp, Wa, X, Xs):
    """(A4's scalars, Wp W Xs, Wa X, Wa Xs): the moments as sums of matrix products."""
    Q = Wp @ W
    QXs, WaX, WaXs = Q @ Xs, Wa @ X, Wa @ Xs
    nq2 = np.sum(QXs * Q, axis=(-2, -1))
    na2 = np.sum(WaXs * Wa, axis=(-2, -1))
    return _from_moments(nq2, na2, np.sum(Q * WaX, axis=(-2, -1))), QXs, WaX, WaXs


def _mode_moments(p, s, tau, c1) -> Scalars:
    """N2's scalars with the modes on axis 0 (one system per column); c1 = 1 + sigma_j^2."""
    c1s = c1 * s
    ps = p * s
    return _from_moments(
        np.sum(c1s * p * p, axis=0), np.sum(c1s * tau * tau, axis=0), np.sum(ps * tau, axis=0)
    )


def _to_rows(*arrays) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast arrays with the modes on the last axis to (k, m) rows (systems as columns)."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in arrays))
    shape = arrays[0].shape
    k = shape[-1] if shape else 1
    return shape, [np.ascontiguousarray(v.reshape(-1, k).T) for v in arrays]


def mode_scalars(p, s, tau=1.0, sigma2=0.0) -> Scalars:
    """N2: A4's scalars from the modes on the LAST axis (N_q^2 = sum_j (1+sigma_j^2) p_j^2 s_j,
    N_a^2 = sum_j (1+sigma_j^2) tau_j^2 s_j, kappa N_q N_a = sum_j p_j tau_j s_j)."""
    shape, (p, s, tau, sigma2) = _to_rows(p, s, tau, sigma2)
    sc = _mode_moments(p, s, tau, 1.0 + sigma2)
    return Scalars(*(np.reshape(v, shape[:-1]) for v in vars(sc).values()))


# --------------------------------------------------------------------------- N1


def _derivatives(h, W, Wp, Wa, X, Xs, c_loss, stop_grad):
    """(dW, dWp, dWa) of N1 at one state; Xs = X + X'. stop_grad=False needs Wa is W."""
    sc, QXs, WaX, WaXs = _products(W, Wp, Wa, X, Xs)
    G = sc.a * WaX - sc.b * QXs  # G~
    dWp = (h.alpha_p * c_loss) * (G @ W.T) - h.eta_p * Wp
    dW = c_loss * (Wp.T @ G) - h.eta * W
    if not stop_grad:  # the target branch z = W x2 (Wa is W): E[d cos / dz x2^T] under A4
        dW += c_loss * (sc.a * (Wp @ WaX) - (sc.kappa / sc.N_a**2) * WaXs)
    dWa = None if h.beta is None or not stop_grad else h.beta * (W - Wa)
    return dW, dWp, dWa


def _check_loss(c_loss: float) -> float:
    if not (np.isfinite(c_loss) and c_loss > 0):
        raise ValueError(f"c_loss={c_loss!r} is invalid: it must be finite and > 0 (c_L of N1)")
    return float(c_loss)


def vector_field(
    h: Hyper, W, Wp, Wa=None, X=None, Xp=None, *, c_loss: float = 1.0, stop_grad: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """N1: (dW/dt, dWp/dt, dWa/dt) at one state (module docstring).

    Wa None (or SimSiam, h.beta None, or stop_grad=False) uses Wa = W and returns dWa None;
    X None is I, Xp None is h.sigma2 I.
    """
    W, Wp, Wa, X, Xp = _state(h, W, Wp, Wa, X, Xp, stop_grad)
    return _derivatives(h, W, Wp, Wa, X, X + Xp, _check_loss(c_loss), stop_grad)


@dataclass(frozen=True)
class N1Solution(MatrixSolution):
    """A trajectory of N1: the fields of ``matrix.MatrixSolution`` (W, Wa (len(t), n2, n1),
    Wp (len(t), n2, n2), X, Xp, h, nfev; F, C_oo, C_to) and the loss scale c_loss.

    Wa is W itself for SimSiam and for stop_grad=False. ``scalars`` gives A4's N_q, N_a,
    kappa, a, b along the trajectory. ok (shape ()), message and stats ("nfev", "n_steps")
    as for every theory solution.
    """

    c_loss: float

    @property
    def scalars(self) -> Scalars:
        """A4's scalars at each time, arrays (len(t),)."""
        return scalars(self.W, self.Wp, self.Wa, self.X, self.Xp)


def integrate(
    h: Hyper,
    W0,
    Wp0,
    Wa0,
    t,
    X=None,
    Xp=None,
    c_loss: float = 1.0,
    *,
    stop_grad: bool = True,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    method: str = "RK45",
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> N1Solution:
    """N1 from (W0, Wp0, Wa0) at t = 0, reported at each t (``solvers.solve_ivp_checked``;
    RK45 at rtol 1e-6 by default, as ``matrix.integrate``).

    X None: I; Xp None: h.sigma2 I. SimSiam (h.beta None): Wa == W, pass Wa0 = W0 (or None).
    stop_grad=False: the gradient flows through both branches (needs h.beta None).
    on_failure: "warn" (default), "raise" or "ignore" when the solver stops early (the
    states are nan from then on, sol.ok False, sol.message says why).
    """
    if not isinstance(h, Hyper):
        raise TypeError(f"h must be a linear_ssl.theory.Hyper, not {type(h).__name__}")
    c_loss = _check_loss(c_loss)
    t = check_times(t)
    check_on_failure(on_failure)
    start = _Start.check(h, W0, Wp0, Wa0, X, Xp, stop_grad=stop_grad)
    X, Xp = start.X, start.Xp
    Xs = X + Xp

    def rhs(_time: float, y: np.ndarray) -> np.ndarray:
        return start.pack(*_derivatives(h, *start.unpack(y), X, Xs, c_loss, stop_grad))

    res = solve_ivp_checked(
        rhs, start.y0, t, method=method, rtol=rtol, atol=atol, max_steps=max_steps,
        name="normalised.integrate (N1)",
    )  # fmt: skip
    handle_failure(res.ok, res.message, on_failure)
    W, Wp, Wa = start.unpack(res.y)
    return N1Solution(
        t=t,
        ok=np.asarray(res.ok),
        message=res.message,
        stats={"nfev": res.nfev, "n_steps": np.asarray(res.n_steps)},
        W=W,
        Wp=Wp,
        Wa=Wa,
        X=X,
        Xp=Xp,
        h=h,
        nfev=res.nfev,
        c_loss=c_loss,
    )


# --------------------------------------------------------------------------- N2


def _n2(h: Hyper, c_loss: float, p, s, tau, c1, out_p, out_s, out_tau) -> np.ndarray:
    """N2's right-hand sides with the modes on axis 0 (rows) and one system per column,
    written into out_p, out_s, out_tau (out_p, out_tau may be None: not wanted);
    c1 = 1 + sigma_j^2. Returns c_L p_j g_j - eta (d log s_j / dt = 2 of it)."""
    sc = _mode_moments(p, s, tau, c1)
    cg = (c_loss * sc.a) * tau - (c_loss * sc.b) * c1 * p  # c_L g_j
    grow = p * cg - h.eta  # half of d log s / dt
    if out_p is not None:
        np.multiply(h.alpha_p * s, cg, out=out_p)
        out_p -= h.eta_p * p
    np.multiply(2.0 * s, grow, out=out_s)
    if out_tau is not None:
        if h.beta is None:
            out_tau[...] = 0.0
        else:
            np.multiply(tau, grow, out=out_tau)
            np.subtract(h.beta * (1.0 - tau), out_tau, out=out_tau)
    return grow


def mode_field(h: Hyper, p, s, tau=1.0, sigma2=None, c_loss: float = 1.0):
    """N2: (dp/dt, ds/dt, dtau/dt) of every mode, the modes of one system on the LAST axis.

    g_j = a tau_j - b (1+sigma_j^2) p_j with a, b from ``mode_scalars``;
    dp_j/dt = alpha_p c_L s_j g_j - eta_p p_j, ds_j/dt = 2 c_L p_j s_j g_j - 2 eta s_j,
    dtau_j/dt = beta (1 - tau_j) - tau_j (c_L p_j g_j - eta) (0 for SimSiam).
    sigma2 None: h.sigma2 for every mode.
    """
    sigma2 = h.sigma2 if sigma2 is None else sigma2
    shape, (p, s, tau, sigma2) = _to_rows(p, s, tau, sigma2)
    out = np.empty((3, *p.shape))
    _n2(h, _check_loss(c_loss), p, s, tau, 1.0 + sigma2, *out)
    return tuple(d.T.reshape(shape) for d in out)


@dataclass(frozen=True)
class N2Solution(Solution):
    """N2 trajectories: p, s, tau (len(t), *S), the modes of each system on S's last axis.

    sigma2 (*S): each mode's augmentation variance. ``shape`` is s^_j = s_j / sum_k s_k,
    ``rates`` r_j = 2 c_L p_j g_j (d log s^_j/dt = r_j - sum_k s^_k r_k), ``scalars`` A4's
    N_q, N_a, kappa, a, b as arrays (len(t), *S[:-1]). ok (S[:-1]): False for a system
    that blew up or exceeded its step budget (nan from then on); message, stats ("nfev",
    "n_steps" per system).
    """

    p: np.ndarray
    s: np.ndarray
    tau: np.ndarray
    sigma2: np.ndarray
    h: Hyper
    c_loss: float

    @property
    def scalars(self) -> Scalars:
        return mode_scalars(self.p, self.s, self.tau, self.sigma2)

    @property
    def shape(self) -> np.ndarray:
        """N2: the shape of the spectrum, s^_j = s_j / sum_k s_k."""
        return self.s / np.sum(self.s, axis=-1, keepdims=True)

    @property
    def rates(self) -> np.ndarray:
        """N2: r_j = 2 c_L p_j g_j, the growth rate of mode j before the shape's mean is removed."""
        shape, (p, s, tau, sigma2) = _to_rows(self.p, self.s, self.tau, self.sigma2)
        grow = _n2(self.h, self.c_loss, p, s, tau, 1.0 + sigma2, None, np.empty_like(s), None)
        return 2.0 * (grow + self.h.eta).T.reshape(shape)


def _rule_p(rule, s: np.ndarray, tau: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """p_j set by an R-rule from C_oo = diag((1+sigma_j^2) s_j), C_to = diag(tau_j s_j), one
    system per column of s (k, m)."""
    p = np.empty_like(s)
    for j in range(s.shape[1]):
        c = tau[:, j] * s[:, j] if rule.needs_cross else None
        p[:, j] = rule.spectrum(c1[:, j] * s[:, j], c)
    return p


def integrate_modes(
    h: Hyper,
    p0: ArrayLike | None,
    s0: ArrayLike,
    t: ArrayLike,
    tau0: ArrayLike = 1.0,
    sigma2: ArrayLike | None = None,
    c_loss: float = 1.0,
    *,
    predictor: str | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
    **rule_params,
) -> N2Solution:
    """N2 for a batch of systems: p0, s0, tau0, sigma2 broadcast to one shape S = (..., k).

    The LAST axis holds the k coupled modes of one system; leading axes are independent
    systems, each one column of ``solvers.rk45_batched``. sigma2 (per mode, broadcast)
    overrides h.sigma2 when given. t: 1-D, increasing, from 0. SimSiam (h.beta None):
    tau == 1. predictor: an R-rule name (``predictors.get_rule(name, **rule_params)``,
    applied to C_oo = diag((1+sigma_j^2) s_j), C_to = diag(tau_j s_j)): p is then set by the
    rule at every instant (p0 ignored, may be None) and only s, tau evolve.
    """
    if not isinstance(h, Hyper):
        raise TypeError(f"h must be a linear_ssl.theory.Hyper, not {type(h).__name__}")
    c_loss = _check_loss(c_loss)
    t = check_times(t)
    check_on_failure(on_failure)
    rule = None
    if predictor is not None:
        rule = predictors.get_rule(predictor, **rule_params)
        if not rule.has_spectrum:
            raise ValueError(f"predictor={predictor!r} has no spectral form (drop ema or array c)")
        p0 = 0.0 if p0 is None else p0
    elif rule_params:
        raise ValueError(f"rule parameters {sorted(rule_params)} were given without predictor=NAME")
    sigma2 = h.sigma2 if sigma2 is None else sigma2
    states = [np.asarray(v, dtype=float) for v in (p0, s0, tau0, sigma2)]
    try:
        p0, s0, tau0, sig = np.broadcast_arrays(*states)
    except ValueError:
        shapes = ", ".join(str(v.shape) for v in states)
        raise ValueError(
            f"p0, s0, tau0, sigma2 have shapes {shapes}: they must broadcast"
        ) from None
    if s0.ndim == 0:
        raise ValueError("s0 needs a last axis of modes (shape (..., k)); pass [s0] for one mode")
    for name, v in (("p0", p0), ("s0", s0), ("tau0", tau0), ("sigma2", sig)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} has non-finite entries: it must be finite")
    if np.any(s0 < 0) or np.any(sig < 0):
        raise ValueError("s0 and sigma2 must be >= 0 (eigenvalues of F and variances)")
    if h.simsiam and np.any(tau0 != 1):
        raise ValueError("SimSiam (beta None) has tau == 1: drop tau0 or give Hyper a beta")
    shape, k = s0.shape, s0.shape[-1]
    m = s0.size // k

    def columns(v: np.ndarray) -> np.ndarray:  # (..., k) -> (k, m): one column per system
        return v.reshape(m, k).T

    def back(v: np.ndarray) -> np.ndarray:  # (len(t), k, m) -> (len(t), *S)
        return np.swapaxes(v, 1, 2).reshape(t.size, *shape)

    names = ([] if rule else ["p"]) + ["s"] + ([] if h.simsiam else ["tau"])
    rows = {name: slice(i * k, (i + 1) * k) for i, name in enumerate(names)}
    n_dyn = len(names) * k
    sig_columns = columns(sig)
    shared = bool(np.all(sig_columns == sig_columns[:, :1]))
    # sigma2 shared by every system is a constant (k, 1); else constant rows of the state
    # (the solver may hand fun any subset of columns)
    start = {"p": p0, "s": s0, "tau": tau0}
    y0 = np.concatenate([columns(start[n]) for n in names] + ([] if shared else [sig_columns]))

    c1_shared = 1.0 + sig_columns[:, :1] if shared else None

    def fun(y: np.ndarray, out: np.ndarray) -> np.ndarray:
        s = y[rows["s"]]
        tau = 1.0 if h.simsiam else y[rows["tau"]]
        c1 = c1_shared if shared else 1.0 + y[n_dyn:]
        if rule:
            p = _rule_p(rule, s, np.broadcast_to(tau, s.shape), np.broadcast_to(c1, s.shape))
        else:
            p = y[rows["p"]]
        parts = [out[rows[n]] if n in rows else None for n in ("p", "s", "tau")]
        _n2(h, c_loss, p, s, tau, c1, *parts)
        out[n_dyn:] = 0.0
        return out

    res = rk45_batched(fun, y0, t, rtol=rtol, atol=atol, max_steps=max_steps)
    s = back(res.y[:, rows["s"]])
    tau = np.ones_like(s) if h.simsiam else back(res.y[:, rows["tau"]])
    if rule:
        p = np.stack([
            _rule_p(rule, columns(s_i), columns(tau_i), 1.0 + sig_columns).T.reshape(shape)
            for s_i, tau_i in zip(s, tau, strict=True)
        ])  # fmt: skip
    else:
        p = back(res.y[:, rows["p"]])
    ok, message, stats = res.outcome(shape[:-1], "normalised.integrate_modes (N2)", on_failure)
    return N2Solution(
        t=t,
        ok=ok,
        message=message,
        stats=stats,
        p=p,
        s=s,
        tau=tau,
        sigma2=sig.copy(),
        h=h,
        c_loss=c_loss,
    )


# --------------------------------------------------------------------------- N3


@dataclass(frozen=True)
class N3Gap:
    """N3 at one (d, lr, seed): the gaps between seed-averaged cosine-loss SGD and a flow
    from the same start, on the directions of W and Wp, relative to how far N1 moves them.

    d_eff: participation ratio of F(0) (the effective dimension); n1: SGD vs N1;
    squared: SGD vs the squared-error flow T1 at its best time scale ``scale``.
    """

    d: int
    lr: float
    seed: int
    d_eff: float
    n1: float
    squared: float
    scale: float


def _directions(W: np.ndarray, Wp: np.ndarray) -> np.ndarray:
    """(..., n2 n1 + n2 n2): W and Wp each scaled to unit Frobenius norm, side by side."""
    unit = [M / np.linalg.norm(M, axis=(-2, -1), keepdims=True) for M in (W, Wp)]
    return np.concatenate([u.reshape(*u.shape[:-2], -1) for u in unit], axis=-1)


def n3_gap(
    d: int,
    lr: float,
    seed: int = 0,
    *,
    flow_time: float = 4.0,
    seeds: int = 16,
    batch: int = 64,
    sigma2: float = 0.2,
    scales: ArrayLike | None = None,
) -> N3Gap:
    """N3: SimSiam on the cosine-loss linear model at n1 = n2 = d (x ~ N(0, I), X' = sigma2 I,
    eta = 0 so SGD has no spherical drift to balance), W(0) with N(0, 1/d) entries,
    Wp(0) = I + 0.3 N(0, 1/d); ``theory.sgd.simulate(loss="cosine")`` over `seeds` seeds
    (averaged) at learning rate lr to `flow_time`, against N1 and against T1 run at time
    c t for the best c of `scales` (default 41 values from 1e-4 to 10, log-spaced).
    The gap is the largest distance, over 4 records, between the directions of (W, Wp)
    (each scaled to norm 1), divided by the distance N1 moves them by flow_time.
    """
    from linear_ssl.diagnostics import participation_ratio
    from linear_ssl.theory import matrix, sgd

    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(d, d)) / np.sqrt(d)
    Wp0 = np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)
    h = Hyper(alpha_p=1.0, eta=0.0, sigma2=sigma2)
    steps = max(4, int(round(flow_time / lr)))
    run = sgd.simulate(
        h, W0, Wp0, None, lr=lr, steps=steps, batch=batch, seeds=seeds, seed=seed,
        record_every=steps // 4, loss="cosine",
    )  # fmt: skip
    measured = _directions(run.W.mean(axis=1), run.Wp.mean(axis=1))
    flow = integrate(h, W0, Wp0, W0, run.t, on_failure="raise")
    start, path = _directions(W0, Wp0), _directions(flow.W, flow.Wp)
    moved = np.linalg.norm(path[-1] - start)

    def gap(other: np.ndarray) -> float:
        return float(np.linalg.norm(measured - other, axis=-1).max() / moved)

    scales = np.geomspace(1e-4, 10.0, 41) if scales is None else np.asarray(scales, float)
    squared = []
    for c in scales:
        sol = matrix.integrate(h, W0, Wp0, None, c * run.t, on_failure="ignore")
        squared.append(gap(_directions(sol.W, sol.Wp)) if sol.all_ok else np.inf)
    best = int(np.argmin(squared))
    return N3Gap(
        d=d,
        lr=lr,
        seed=seed,
        d_eff=participation_ratio(W0 @ W0.T),
        n1=gap(path),
        squared=float(squared[best]),
        scale=float(scales[best]),
    )
