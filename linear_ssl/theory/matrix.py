"""The full matrix flow of linear BYOL / SimSiam (theory.md T1-T6), exact in expectation.

Conventions: column vectors; online W (n2 x n1), predictor Wp (n2 x n2), target Wa (n2 x n1);
X = E[xbar xbar^T] and X' (``Xp``) the augmentation covariance, both (n1 x n1) symmetric PSD.
The residual of T1 is E = -Wp W (X+X') + Wa X, and

    dWp/dt = alpha_p E W^T - eta_p Wp        (T1; symmetric=True: alpha_p sym(E W^T), T5)
    dW/dt  = Wp^T E - eta W                  (T1; stop_grad=False: the T3 gradient instead)
    dWa/dt = beta (W - Wa)                   (T1; SimSiam, h.beta None: Wa == W)

``integrate`` solves it with SciPy's solvers on the flattened state (solvers.solve_ivp_checked:
bounded, failures reported by the shared on_failure policy); the helpers
below evaluate the quantities the theorems are about (T2 balancing, T3's H, T6's K and
commutator, T6's fixed predictor) along a trajectory, vectorised over leading axes.
``integrate_scalar`` is T4's scalar system ([T] Fig. 10).

Started aligned (A1-A3: X = I, X' = sigma2 I, Wa = tau W per eigendirection, symmetric Wp
sharing F's eigenvectors), both the symmetrised (T5) and the plain predictor update stay
aligned and reproduce T7 mode by mode (Wp F is then symmetric, so symmetrising changes
nothing); off alignment they differ (T6 is stated for the symmetrised one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from linear_ssl import predictors
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

RuleFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]

__all__ = [
    "MatrixSolution",
    "ScalarSolution",
    "alignment_operator",
    "balance",
    "balance_prediction",
    "balance_rate",
    "commutator_norm",
    "correlation",
    "fixed_predictor",
    "integrate",
    "integrate_scalar",
    "lambda_min",
    "no_stopgrad_operator",
    "random_rotation",
    "scalar_fixed_predictor",
    "spectrum",
    "vector_field",
]


# --------------------------------------------------------------------------- input checks


def _matrix(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """`value` as a finite float 2-D array (of `shape` when given), else a one-line ValueError."""
    a = np.asarray(value, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} but must have {shape} to match W0")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite entries (nan or inf): pass finite values")
    return a


def _covariance(name: str, value, n1: int, default_scale: float) -> np.ndarray:
    """A symmetric PSD (n1 x n1) covariance; None gives default_scale * I."""
    if value is None:
        return default_scale * np.eye(n1)
    c = _matrix(name, value, (n1, n1))
    scale = max(1.0, float(np.abs(c).max()))
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} is not symmetric: pass a symmetric PSD covariance")
    if np.linalg.eigvalsh(c)[0] < -1e-10 * scale:
        raise ValueError(f"{name} has a negative eigenvalue: pass a PSD covariance")
    return (c + c.T) / 2


def _state(h: Hyper, W, Wp, Wa, X, Xp, stop_grad: bool) -> tuple[np.ndarray, ...]:
    """One checked state (W, Wp, Wa, X, X') of T1 / N1 for the vector fields: Wa None (or
    SimSiam, h.beta None, or stop_grad=False) is W; X None is I, Xp None h.sigma2 I."""
    W = _matrix("W", W)
    n2, n1 = W.shape
    Wp = _matrix("Wp", Wp, (n2, n2))
    Wa = W if Wa is None or h.beta is None or not stop_grad else _matrix("Wa", Wa, (n2, n1))
    X = _covariance("X", X, n1, 1.0)
    return W, Wp, Wa, X, _covariance("Xp", Xp, n1, h.sigma2)


@dataclass(frozen=True)
class _Start:
    """The checked start of T1 (and N1): W0, Wa0 (n2, n1), Wp0 (n2, n2) and X, X' (n1, n1).

    Wp0 is None when a rule sets Wp, Wa0 None for SimSiam (Wa == W); the flow's state is the
    present ones flattened side by side (``pack`` / ``unpack``).
    """

    W0: np.ndarray
    Wp0: np.ndarray | None
    Wa0: np.ndarray | None
    X: np.ndarray
    Xp: np.ndarray

    @classmethod
    def check(
        cls, h: Hyper, W0, Wp0, Wa0, X, Xp, *, stop_grad: bool, with_wp: bool = True
    ) -> _Start:
        """One-line errors for a bad start; X None is I, Xp None is h.sigma2 I (T1)."""
        W0 = _matrix("W0", W0)
        n2, n1 = W0.shape
        X = _covariance("X", X, n1, 1.0)
        Xp = _covariance("Xp", Xp, n1, h.sigma2)
        Wp0 = _matrix("Wp0", Wp0, (n2, n2)) if with_wp else None
        if not stop_grad and h.beta is not None:
            raise ValueError(
                "stop_grad=False needs h.beta=None: without stop-gradient the target is W itself"
            )
        if h.beta is not None:
            Wa0 = _matrix("Wa0", Wa0, (n2, n1))
        elif Wa0 is not None and not np.array_equal(np.asarray(Wa0, dtype=float), W0):
            raise ValueError("h.beta is None (SimSiam: Wa == W) but Wa0 differs from W0: pass None")
        else:
            Wa0 = None
        return cls(W0, Wp0, Wa0, X, Xp)

    @property
    def y0(self) -> np.ndarray:
        """The start as the flow's flat state."""
        return self.pack(self.W0, self.Wp0, self.Wa0)

    def pack(self, W: np.ndarray, Wp: np.ndarray | None, Wa: np.ndarray | None) -> np.ndarray:
        """(W, Wp, Wa) as one flat state (Wp, Wa left out where the start has none)."""
        parts = [W, Wp if self.Wp0 is not None else None, Wa if self.Wa0 is not None else None]
        return np.concatenate([M.ravel() for M in parts if M is not None])

    def unpack(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """The flat state y (..., size) back to (W, Wp, Wa) over y's leading axes; Wp None
        when a rule sets it, Wa is W for SimSiam."""
        n2, n1 = self.W0.shape
        lead = y.shape[:-1]
        W = y[..., : n2 * n1].reshape(*lead, n2, n1)
        offset = n2 * n1
        Wp = None
        if self.Wp0 is not None:
            Wp = y[..., offset : offset + n2 * n2].reshape(*lead, n2, n2)
            offset += n2 * n2
        Wa = y[..., offset:].reshape(*lead, n2, n1) if self.Wa0 is not None else W
        return W, Wp, Wa


# --------------------------------------------------------------------------- the vector field


def _identity_multiple(M: np.ndarray) -> float | None:
    """c when M == c I exactly (X and X' of A1-A3), else None: the rhs's fast path."""
    c = float(M[0, 0])
    return c if np.array_equal(M, c * np.eye(M.shape[0])) else None


@dataclass(frozen=True)
class _Covariances:
    """X, X' and X + X', each with its scalar when it is a multiple of I (fast path)."""

    X: np.ndarray
    Xp: np.ndarray
    Xs: np.ndarray
    x: float | None
    xs: float | None

    @classmethod
    def of(cls, X: np.ndarray, Xp: np.ndarray) -> _Covariances:
        Xs = X + Xp
        return cls(X, Xp, Xs, _identity_multiple(X), _identity_multiple(Xs))

    def times_x(self, M: np.ndarray) -> np.ndarray:
        """M X."""
        return M @ self.X if self.x is None else self.x * M

    def times_xs(self, M: np.ndarray) -> np.ndarray:
        """M (X + X')."""
        return M @ self.Xs if self.xs is None else self.xs * M


def _derivatives(
    h: Hyper,
    W: np.ndarray,
    Wp: np.ndarray,
    Wa: np.ndarray,
    cov: _Covariances,
    stop_grad: bool,
    symmetric: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dW, dWp, dWa) of T1 (T3 when not stop_grad, T5's Wp update when symmetric).

    With X and X' multiples of I the residual takes 1 matrix product instead of 3.
    """
    if cov.xs is None:
        E = cov.times_x(Wa) - Wp @ cov.times_xs(W)  # T1 residual: -Wp W (X+X') + Wa X
    else:
        E = cov.times_x(Wa) - cov.xs * (Wp @ W)
    G = E @ W.T
    if symmetric:
        G = (G + G.T) / 2
    dWp = h.alpha_p * G - h.eta_p * Wp
    if stop_grad:
        dW = Wp.T @ E - h.eta * W
    else:
        # T3: minus the gradient of J = 1/2 E||Wp W x1 - W x2||^2 + eta/2 ||W||^2 through both
        # branches: (Wp-I)^T (Wp-I) W X + (Wp^T Wp + I) W X' + eta W.
        D = Wp - np.eye(Wp.shape[0])
        WXp = W @ cov.Xp
        dW = -(D.T @ (D @ cov.times_x(W)) + Wp.T @ (Wp @ WXp) + WXp) - h.eta * W
    dWa = None if h.beta is None else h.beta * (W - Wa)
    return dW, dWp, dWa


def vector_field(
    h: Hyper,
    W,
    Wp,
    Wa=None,
    X=None,
    Xp=None,
    *,
    stop_grad: bool = True,
    symmetric: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """T1 (T3, T5): the time derivatives (dW/dt, dWp/dt, dWa/dt) at one state.

    Wa None (or SimSiam, h.beta None) uses Wa = W and returns dWa None; X None is I,
    Xp None is h.sigma2 I. stop_grad=False is T3 (gradient through both branches, Wa = W);
    symmetric=True is the symmetrised predictor update of T5.
    """
    W, Wp, Wa, X, Xp = _state(h, W, Wp, Wa, X, Xp, stop_grad)
    return _derivatives(h, W, Wp, Wa, _Covariances.of(X, Xp), stop_grad, symmetric)


# --------------------------------------------------------------------------- integration


@dataclass(frozen=True)
class MatrixSolution(Solution):
    """A trajectory of the matrix flow.

    t: (T,) times; W, Wa: (T, n2, n1); Wp: (T, n2, n2). Wa is W itself for SimSiam and for
    stop_grad=False. X, Xp: the covariances used. nfev: right-hand-side evaluations.
    ok False (on_failure "warn"/"ignore"): the flow diverged or hit its step budget; the
    states are nan from there and message says where.
    """

    W: np.ndarray
    Wp: np.ndarray
    Wa: np.ndarray
    X: np.ndarray
    Xp: np.ndarray
    h: Hyper
    nfev: int

    @property
    def F(self) -> np.ndarray:
        """(T, n2, n2): F = W X W^T, the online correlation on clean inputs (T5, T6)."""
        return correlation(self.W, self.X)

    @property
    def C_oo(self) -> np.ndarray:
        """(T, n2, n2): C_oo = E[f f^T] = W (X + X') W^T over augmented views (R1-R4)."""
        return correlation(self.W, self.X + self.Xp)

    @property
    def C_to(self) -> np.ndarray:
        """(T, n2, n2): C_to = E[f_a f^T] = Wa X W^T, target-online cross-correlation (R3)."""
        return self.Wa @ self.X @ np.swapaxes(self.W, -1, -2)


def _resolve_predictor(predictor, rule_params: dict) -> RuleFunction | None:
    if predictor is None:
        if rule_params:
            raise ValueError(
                f"rule parameters {sorted(rule_params)} were given without predictor=NAME"
            )
        return None
    if callable(predictor):
        if rule_params:
            raise ValueError("rule parameters apply to a named predictor, not to a callable")
        return predictor
    rule = predictors.get_rule(predictor, **rule_params)
    if rule.ema is not None:
        raise ValueError("a predictor rule with ema (R10) is stateful: drop ema inside the flow")
    return rule


def integrate(
    h: Hyper,
    W0,
    Wp0,
    Wa0,
    t,
    X=None,
    Xp=None,
    stop_grad: bool = True,
    symmetric: bool = False,
    predictor: str | RuleFunction | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    method: str = "RK45",
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "raise",
    **rule_params,
) -> MatrixSolution:
    """Integrate the matrix flow T1 from (W0, Wp0, Wa0) at t[0], reporting it at each t.

    X None: I; Xp None: h.sigma2 I (both (n1 x n1) symmetric PSD, any spectrum: T4).
    BYOL (h.beta set): Wa follows dWa/dt = beta (W - Wa). SimSiam (h.beta None): Wa == W;
    pass Wa0=None (or W0); sol.Wa is sol.W.
    stop_grad=False (T3): the gradient of J = 1/2 E||Wp W x1 - W x2||^2 flows through both
    branches (target = W; needs h.beta None).
    symmetric=True (T5): dWp/dt = alpha_p sym(E W^T) - eta_p Wp, sym(A) = (A + A^T)/2; Wp0 must be
    symmetric and Wp stays so.
    predictor: an R-rule name (``linear_ssl.predictors.get_rule(name, **rule_params)``) or a
    callable (F, C_to) -> Wp. Wp is then not integrated: at every instant
    Wp = rule(W (X+X') W^T, Wa X W^T) (the exact C_oo and C_to) while W and Wa follow T1;
    Wp0 is ignored (may be None).
    rtol, atol, method: SciPy's solver ("RK45" by default: at rtol >= 1e-6 it beats DOP853
    in time and accuracy, benchmarks/bench_matrix.py; "Radau"/"LSODA" for stiff flows).
    max_steps: the budget of solver steps (None: unbounded). on_failure: when the flow
    diverges (non-finite) or exceeds max_steps, "raise" (ValueError, the default),
    "warn" or "ignore" (then sol.ok is False and the states are nan from there on).
    """
    t = check_times(t, from_zero=False)
    check_on_failure(on_failure)
    rule = _resolve_predictor(predictor, rule_params)
    start = _Start.check(h, W0, Wp0, Wa0, X, Xp, stop_grad=stop_grad, with_wp=rule is None)
    if symmetric and rule is None:
        Wp0 = start.Wp0
        if not np.allclose(Wp0, Wp0.T, rtol=0.0, atol=1e-12 * np.abs(Wp0).max()):
            raise ValueError("symmetric=True needs a symmetric Wp0 (T5 keeps Wp symmetric)")
    X, Xp, cov = start.X, start.Xp, _Covariances.of(start.X, start.Xp)
    n2 = start.W0.shape[0]

    def rule_wp(W: np.ndarray, Wa: np.ndarray) -> np.ndarray:
        return np.asarray(rule(correlation(W, cov.Xs), cov.times_x(Wa) @ W.T), dtype=float)

    def rhs(_time: float, y: np.ndarray) -> np.ndarray:
        W, Wp, Wa = start.unpack(y)
        if Wp is None:
            Wp = rule_wp(W, Wa)
        return start.pack(*_derivatives(h, W, Wp, Wa, cov, stop_grad, symmetric))

    res = solve_ivp_checked(
        rhs,
        start.y0,
        t,
        method=method,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        name="matrix.integrate",
    )
    handle_failure(res.ok, res.message, on_failure)
    W, Wp, Wa = start.unpack(res.y)
    if Wp is None:  # the rule's Wp, nan where the flow stopped
        Wp = np.array([
            rule_wp(W_i, Wa_i) if np.all(np.isfinite(W_i)) else np.full((n2, n2), np.nan)
            for W_i, Wa_i in zip(W, Wa, strict=True)
        ])  # fmt: skip
    return MatrixSolution(
        t=t,
        W=W,
        Wp=Wp,
        Wa=Wa,
        X=X,
        Xp=Xp,
        h=h,
        nfev=res.nfev,
        ok=np.array(res.ok),
        message=res.message,
        stats={"nfev": res.nfev, "n_steps": res.n_steps},
    )


# --------------------------------------------------------------------------- helpers along t


def correlation(W, S=None) -> np.ndarray:
    """W S W^T over any leading axes of W (S None: I), e.g. F = W X W^T (T5)."""
    W = np.asarray(W, dtype=float)
    WT = np.swapaxes(W, -1, -2)
    return W @ WT if S is None else W @ np.asarray(S, dtype=float) @ WT


def spectrum(M) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of symmetric M (..., n, n) by eigh, eigenvalues DESCENDING.

    Returns (values (..., n), vectors (..., n, n)) with vectors[..., :, j] the j-th eigenvector.
    """
    values, vectors = np.linalg.eigh(np.asarray(M, dtype=float))
    return values[..., ::-1], vectors[..., ::-1]


def random_rotation(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A uniformly (Haar) distributed n x n orthogonal matrix, drawn by scipy.stats.ortho_group.

    The random eigenbasis of an aligned start (A1-A3) or of a non-isotropic X; ``rng`` is a
    numpy Generator or a seed for np.random.default_rng.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} is invalid: give the matrix size as a positive integer")
    from scipy.stats import ortho_group  # here: scipy.stats is slow to import, rarely needed

    rng = np.random.default_rng(rng)
    return ortho_group.rvs(int(n), random_state=rng).reshape(int(n), int(n))


def commutator_norm(F, Wp) -> np.ndarray:
    """T6: ||[F, Wp]||_F = ||F Wp - Wp F||_F over leading axes."""
    F, Wp = np.asarray(F, dtype=float), np.asarray(Wp, dtype=float)
    return np.linalg.norm(F @ Wp - Wp @ F, axis=(-2, -1))


def lambda_min(M) -> np.ndarray:
    """Smallest eigenvalue of the symmetric part of M (..., n, n)."""
    M = np.asarray(M, dtype=float)
    return np.linalg.eigvalsh((M + np.swapaxes(M, -1, -2)) / 2)[..., 0]


def no_stopgrad_operator(Wp, X, Xp, eta: float) -> np.ndarray:
    """T3: H with d vec(W)/dt = -H vec(W) without stop-gradient (vec column-major).

    H = X' (x) (Wp^T Wp + I) + X (x) (Wp-I)^T (Wp-I) + eta I; Wp (..., n2, n2), X, X'
    (n1 x n1); returns (..., n1 n2, n1 n2). vec(W) = W.ravel(order="F") (T-order: column a of
    W occupies rows a n2 ... a n2 + n2 - 1).
    """
    Wp = np.asarray(Wp, dtype=float)
    X, Xp = np.asarray(X, dtype=float), np.asarray(Xp, dtype=float)
    n2, n1 = Wp.shape[-1], X.shape[-1]
    eye = np.eye(n2)
    D = Wp - eye
    A = np.swapaxes(Wp, -1, -2) @ Wp + eye
    B = np.swapaxes(D, -1, -2) @ D
    kron = np.einsum("ab,...ij->...aibj", Xp, A) + np.einsum("ab,...ij->...aibj", X, B)
    H = kron.reshape(*Wp.shape[:-2], n1 * n2, n1 * n2)
    return H + eta * np.eye(n1 * n2)


def alignment_operator(h: Hyper, F, Wp, tau=1.0) -> np.ndarray:
    """T6: K = (1+sigma2)[(alpha_p/2) F + Wp^2 - tau/(1+sigma2) Wp] + (eta + eta_p/2) I.

    F, Wp (..., n, n); tau a scalar or an array broadcasting against the leading axes
    (tau(t) along a BYOL trajectory). Then d[F, Wp]/dt = -(L K + K L) under T5 (the decays
    of F and Wp give -(2 eta + eta_p) L: (3/2) eta I when eta_p = eta, as T6 prints it).
    """
    F, Wp = np.asarray(F, dtype=float), np.asarray(Wp, dtype=float)
    tau = np.asarray(tau, dtype=float)[..., None, None]
    g = 1.0 + h.sigma2
    eye = np.eye(F.shape[-1])
    return g * (h.alpha_p / 2 * F + Wp @ Wp) - tau * Wp + (h.eta + h.eta_p / 2) * eye


def fixed_predictor(h: Hyper, F, tau=1.0) -> np.ndarray:
    """T6: the unsymmetrised flow's fixed predictor, given F and tau.

    Wp = tau Lambda [(1+sigma2) Lambda + (eta_p/alpha_p) I]^-1, written in F's eigenbasis
    (F = U Lambda U^T) and returned as U diag(...) U^T, over leading
    axes of F. Needs h.eta_p > 0 or F positive definite.
    """
    lam, U = np.linalg.eigh(np.asarray(F, dtype=float))
    tau = np.asarray(tau, dtype=float)[..., None]
    p = tau * lam / ((1 + h.sigma2) * lam + h.eta_p / h.alpha_p)
    return (U * p[..., None, :]) @ np.swapaxes(U, -1, -2)


def balance(W, Wp, alpha_p: float) -> np.ndarray:
    """T2: the balancing quantity W W^T - Wp^T Wp / alpha_p, over leading axes."""
    Wp = np.asarray(Wp, dtype=float)
    return correlation(W) - np.swapaxes(Wp, -1, -2) @ Wp / alpha_p


def balance_rate(h: Hyper, W, Wp) -> np.ndarray:
    """T2 in general: d/dt (W W^T - Wp^T Wp / alpha_p) = -2 eta W W^T + 2 (eta_p/alpha_p) Wp^T Wp.

    Along T1 or N1 (any loss reaching W and Wp only through q = Wp W x), over leading axes.
    It is -2 eta times the balance itself only when eta_p == eta (then T2 is exact).
    """
    Wp = np.asarray(Wp, dtype=float)
    WpTWp = np.swapaxes(Wp, -1, -2) @ Wp
    return -2.0 * h.eta * correlation(W) + 2.0 * (h.eta_p / h.alpha_p) * WpTWp


def balance_prediction(C, eta: float, t) -> np.ndarray:
    """T2: exp(-2 eta t) C for each t (returns (len(t), *C.shape)), C = balance at t = 0.

    Exact only when eta_p == eta; otherwise the balance moves by ``balance_rate``.
    """
    t = np.asarray(t, dtype=float)
    return np.exp(-2.0 * eta * t)[:, None, None] * np.asarray(C, dtype=float)


# --------------------------------------------------------------------------- T4 scalar system


@dataclass(frozen=True)
class ScalarSolution(Solution):
    """T4 trajectories: t (T,), wp, w, wa (T, *S) for initial conditions of broadcast shape S.

    ok (S): False where a trajectory diverged or exceeded max_steps (nan from then on).
    """

    wp: np.ndarray
    w: np.ndarray
    wa: np.ndarray
    nfev: int


def integrate_scalar(
    h: Hyper,
    wp0,
    w0,
    wa0,
    t,
    l_s: float = 1.0,
    l_d: float = 0.5,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> ScalarSolution:
    """T4 (App. D, [T] Fig. 10): the 1 x 1 flow with Sigma_s = l_s, Sigma_d = l_d.

        dw_p/dt = alpha_p (w_a l_d - w_p w l_s) w - eta_p w_p
        dw/dt   = w_p (w_a l_d - w_p w l_s) - eta w
        dw_a/dt = beta (w - w_a)          (SimSiam, h.beta None: w_a == w)

    (the paper's system has eta = 0; with h.eta > 0 the T1 weight decay joins). wp0, w0, wa0
    broadcast to one shape S: any number of initial conditions at once, each its own system
    of `solvers.rk45_batched` (max_steps, on_failure as there). l_s >= l_d > 0.
    """
    if not (np.isfinite(l_s) and np.isfinite(l_d) and l_s >= l_d > 0):
        raise ValueError(f"need l_s >= l_d > 0 (l_s = l_d + sigma'^2), got l_s={l_s}, l_d={l_d}")
    t = check_times(t, from_zero=False)
    check_on_failure(on_failure)
    if h.beta is None:
        wa0 = w0
    wp0, w0, wa0 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (wp0, w0, wa0)))
    if not all(np.all(np.isfinite(v)) for v in (wp0, w0, wa0)):
        raise ValueError("wp0, w0, wa0 must be finite")
    shape = wp0.shape

    def rhs(y: np.ndarray, out: np.ndarray) -> np.ndarray:
        wp, w, wa = y
        wa = w if h.beta is None else wa
        r = wa * l_d - wp * w * l_s
        out[0] = h.alpha_p * r * w - h.eta_p * wp
        out[1] = wp * r - h.eta * w
        out[2] = 0.0 if h.beta is None else h.beta * (w - wa)
        return out

    y0 = np.stack([wp0.ravel(), w0.ravel(), wa0.ravel()])
    # T4 is autonomous: integrate from 0 over t - t[0]
    res = rk45_batched(rhs, y0, t - t[0], rtol=rtol, atol=atol, max_steps=max_steps)
    ok, message, stats = res.outcome(shape, "matrix.integrate_scalar", on_failure)
    wp, w, wa = (res.y[:, i].reshape(t.size, *shape) for i in range(3))
    return ScalarSolution(
        t=t,
        wp=wp,
        w=w,
        wa=w if h.beta is None else wa,
        nfev=res.nfev,
        ok=ok,
        message=message,
        stats=stats,
    )


def scalar_fixed_predictor(l_s: float, l_d: float) -> float:
    """T4: at a non-collapsed fixed point (eta = 0), w = w_a and w_p w = w l_d / l_s, so
    w_p = l_d / l_s (Wp W = W Sigma_d Sigma_s^-1 in 1 x 1)."""
    return l_d / l_s
