"""SymPy derivations behind the eigen-mode flow (T2, T5 -> T7, T8, T9, T10 of theory.md).

Each derivation returns SymPy expressions built on first use and cached; SymPy itself is
imported lazily, so importing linear_ssl.theory stays fast. The `*_function` helpers
lambdify the results to NumPy, so that numeric code (linear_ssl.theory.modes) can be
checked against them:

- `t7_rhs()`: T7 as printed; `t7_from_t5()`: T7 re-derived from T5 with diagonal Wp, F
  and Wa = tau W per mode; `t7_residual()`: their difference (simplifies to 0).
- `t8_residual()`: d/dt[s - p^2/alpha_p] + 2 eta (s - p^2/alpha_p) along T7 (= 0), and
  `t2_residual(n)`: the matrix identity T2 along T1 for generic n x n matrices (= 0).
- `t9()`: the flow on the parabola, its fixed points, the collapse threshold, and the
  stability of each fixed point (slope of the 1-D flow; Jacobian of the (p, s) system at
  fixed tau and its eigenvalues).
- `k_eigenvalue()`: T6's K in the eigenbasis, and T10's two conditions.
- `n1_trace_identity(n)`: N1's tr(Wp^T G~ W^T) for generic n x n matrices (= 0: the
  cosine loss's gradient is orthogonal to the weights); `n2_from_n1(k)`: N2 re-derived
  from N1 with diagonal W, Wp, Wa = tau W, X = I, X' = diag(sigma_j^2);
  `n2_residual(k)`: its difference from N2 as printed (0); `n2_rhs_function(k)`: N2
  lambdified.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sympy


@cache
def symbols() -> SimpleNamespace:
    """The symbols: states p, s, tau, w (s = w^2), time t, and the Hyper fields."""
    import sympy as sp

    return SimpleNamespace(
        p=sp.Symbol("p", real=True),
        s=sp.Symbol("s", real=True),
        tau=sp.Symbol("tau", real=True),
        w=sp.Symbol("w", positive=True),
        t=sp.Symbol("t", real=True),
        alpha_p=sp.Symbol("alpha_p", positive=True),
        beta=sp.Symbol("beta", positive=True),
        eta=sp.Symbol("eta", nonnegative=True),
        sigma2=sp.Symbol("sigma2", nonnegative=True),
        eta_p=sp.Symbol("eta_p", nonnegative=True),
        c_loss=sp.Symbol("c_L", positive=True),
    )


@cache
def t7_rhs() -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """T7 as theory.md prints it: (dp/dt, ds/dt, dtau/dt)."""
    x = symbols()
    c1 = 1 + x.sigma2
    dp = x.alpha_p * x.s * (x.tau - c1 * x.p) - x.eta * x.p
    ds = 2 * x.p * x.s * (x.tau - c1 * x.p) - 2 * x.eta * x.s
    dtau = x.beta * (1 - x.tau) - x.tau * (x.p * (x.tau - c1 * x.p) - x.eta)
    return dp, ds, dtau


def _anti(a, b):
    """The anticommutator {A, B} = AB + BA."""
    return a * b + b * a


@cache
def t7_from_t5(n: int = 2) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """T7 derived from T5 in the common eigenbasis, for mode 0 of n modes.

    Wp = diag(p_j), F = diag(s_j) in T5; the result must be diagonal (modes decouple;
    a ValueError otherwise) and its entries are T7's dp/dt, ds/dt. With Wa = tau W per mode
    and w the mode's singular value of W (s = w^2), dWa/dt = beta (W - Wa) gives
    d(tau w)/dt = beta (1 - tau) w, so dtau/dt = beta (1 - tau) - tau (ds/dt) / (2 s).
    """
    import sympy as sp

    x = symbols()
    ps = sp.symbols(f"p0:{n}", real=True)
    ss = sp.symbols(f"s0:{n}", positive=True)
    wp, f = sp.diag(*ps), sp.diag(*ss)
    c1 = 1 + x.sigma2
    d_wp = -(x.alpha_p / 2) * c1 * _anti(wp, f) + x.alpha_p * x.tau * f - x.eta * wp  # T5
    d_f = -c1 * _anti(wp * wp, f) + x.tau * _anti(wp, f) - 2 * x.eta * f  # T5
    for m in (d_wp, d_f):
        if any(sp.simplify(m[i, j]) != 0 for i in range(n) for j in range(n) if i != j):
            raise ValueError("T5 with diagonal Wp and F is not diagonal: the modes couple")
    to_mode = {ps[0]: x.p, ss[0]: x.s}
    dp = sp.expand(d_wp[0, 0].subs(to_mode))
    ds = sp.expand(d_f[0, 0].subs(to_mode))
    # Wa = tau W per mode: d(tau w)/dt = beta (w - tau w), with dw/dt = (ds/dt) / (2 w)
    dtau_sym = sp.Symbol("dtau")
    dw = ds.subs(x.s, x.w**2) / (2 * x.w)
    ema = sp.Eq(dtau_sym * x.w + x.tau * dw, x.beta * (x.w - x.tau * x.w))
    dtau = sp.solve(ema, dtau_sym)[0].subs(x.w, sp.sqrt(x.s))
    return dp, ds, sp.expand(sp.simplify(dtau))


@cache
def t7_residual() -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """t7_from_t5() - t7_rhs(), simplified: (0, 0, 0) when T7 follows from T5."""
    import sympy as sp

    return tuple(sp.simplify(a - b) for a, b in zip(t7_from_t5(), t7_rhs(), strict=True))


@cache
def t8_residual() -> tuple[sympy.Expr, sympy.Expr]:
    """T8 by differentiation along T7 (any tau dynamics): both entries simplify to 0.

    (d/dt[s - p^2/alpha_p] + 2 eta (s - p^2/alpha_p),  d/dt[exp(2 eta t)(s - p^2/alpha_p)]).
    """
    import sympy as sp

    x = symbols()
    dp, ds, _ = t7_rhs()
    gap = x.s - x.p**2 / x.alpha_p
    d_gap = sp.diff(gap, x.s) * ds + sp.diff(gap, x.p) * dp
    c = sp.exp(2 * x.eta * x.t) * gap
    d_c = sp.diff(c, x.t) + sp.diff(c, x.s) * ds + sp.diff(c, x.p) * dp
    return sp.simplify(d_gap + 2 * x.eta * gap), sp.simplify(d_c)


def t2_residual(n: int = 2) -> sympy.Matrix:
    """T2 along T1 for generic n x n W, Wp, Wa and symmetric X, X': the zero matrix.

    d/dt[W W^T - Wp^T Wp / alpha_p] + 2 eta [W W^T - Wp^T Wp / alpha_p], expanded.
    """
    import sympy as sp

    x = symbols()
    w = sp.Matrix(n, n, sp.symbols(f"w0:{n * n}", real=True))
    wp = sp.Matrix(n, n, sp.symbols(f"q0:{n * n}", real=True))
    wa = sp.Matrix(n, n, sp.symbols(f"a0:{n * n}", real=True))
    xs = sp.symbols(f"x0:{n * n}", real=True)
    xps = sp.symbols(f"y0:{n * n}", real=True)
    big_x = sp.Matrix(n, n, lambda i, j: xs[min(i, j) * n + max(i, j)])
    big_xp = sp.Matrix(n, n, lambda i, j: xps[min(i, j) * n + max(i, j)])
    residual = -wp * w * (big_x + big_xp) + wa * big_x
    d_wp = x.alpha_p * residual * w.T - x.eta * wp  # T1
    d_w = wp.T * residual - x.eta * w  # T1
    gap = w * w.T - wp.T * wp / x.alpha_p
    d_gap = d_w * w.T + w * d_w.T - (d_wp.T * wp + wp.T * d_wp) / x.alpha_p
    return sp.expand(d_gap + 2 * x.eta * gap)


@cache
def t9() -> SimpleNamespace:
    """T9 at fixed tau: the 1-D flow on the parabola, its fixed points and their stability.

    Fields: flow (dp/dt on s = p^2/alpha_p), p_minus, p_plus, threshold (the eta where they
    merge), slope (d flow/dp, a function of p), slope_minus / slope_plus (slope at p-+,
    simplified), jacobian (of the (p, s) system), and eig_origin / eig_minus / eig_plus
    (its eigenvalues at (0, 0) and (p-+, p-+^2/alpha_p)).
    """
    import sympy as sp

    x = symbols()
    c1 = 1 + x.sigma2
    dp, ds, _ = t7_rhs()
    flow = sp.expand(dp.subs(x.s, x.p**2 / x.alpha_p))
    roots = sp.solve(sp.cancel(flow / x.p), x.p)
    root = sp.sqrt(x.tau**2 - 4 * x.eta * c1)
    p_minus = (x.tau - root) / (2 * c1)
    p_plus = (x.tau + root) / (2 * c1)
    found = [any(sp.simplify(r - q) == 0 for q in (p_minus, p_plus)) for r in roots]
    if len(roots) != 2 or not all(found):
        raise ValueError(f"T9: the non-zero fixed points of the flow are {roots}, not p-+")
    threshold = sp.solve(sp.Eq(x.tau**2 - 4 * x.eta * c1, 0), x.eta)[0]
    slope = sp.diff(flow, x.p)
    jacobian = sp.Matrix([dp, ds]).jacobian([x.p, x.s])
    eigs = {}
    for name, pf in (("origin", sp.Integer(0)), ("minus", p_minus), ("plus", p_plus)):
        at = jacobian.subs({x.s: pf**2 / x.alpha_p}).subs(x.p, pf)
        eigs[name] = [sp.simplify(e) for e in at.eigenvals(multiple=True)]
    return SimpleNamespace(
        flow=flow,
        p_minus=p_minus,
        p_plus=p_plus,
        threshold=threshold,
        slope=slope,
        slope_minus=sp.factor(sp.simplify(slope.subs(x.p, p_minus))),
        slope_plus=sp.factor(sp.simplify(slope.subs(x.p, p_plus))),
        jacobian=jacobian,
        eig_origin=eigs["origin"],
        eig_minus=eigs["minus"],
        eig_plus=eigs["plus"],
    )


@cache
def k_eigenvalue() -> SimpleNamespace:
    """T6's K in the eigenbasis and T10's conditions, in terms of Delta.

    Fields: k (the eigenvalue of K for one mode), delta (T10's Delta), k_minus_bound
    (k - [(alpha_p (1+sigma2) s + eta)/2 - Delta], which simplifies to 0: K > 0 iff
    Delta < (alpha_p (1+sigma2) s + eta)/2), ds_over_s (ds/dt / s = 2 Delta: growth iff
    Delta > 0).
    """
    import sympy as sp

    x = symbols()
    c1 = 1 + x.sigma2
    k = c1 * (x.alpha_p / 2 * x.s + x.p**2 - x.tau / c1 * x.p) + sp.Rational(3, 2) * x.eta
    delta = x.p * (x.tau - c1 * x.p) - x.eta
    bound = (x.alpha_p * c1 * x.s + x.eta) / 2
    _, ds, _ = t7_rhs()
    return SimpleNamespace(
        k=k,
        delta=delta,
        k_minus_bound=sp.simplify(k - (bound - delta)),
        ds_over_s=sp.simplify(ds / x.s),
    )


# --- N1 and N2 (theory.md 2b) -------------------------------------------------------------


def _n1(W, Wp, Wa, X, Xp):
    """N1's (dW, dWp, G~) for SymPy matrices (Wa given), with a, b, kappa from A4."""
    import sympy as sp

    x = symbols()
    Xs = X + Xp
    nq2 = (Wp * W * Xs * W.T * Wp.T).trace()
    na2 = (Wa * Xs * Wa.T).trace()
    cross = (Wp * W * X * Wa.T).trace()
    a = 1 / (sp.sqrt(nq2) * sp.sqrt(na2))
    b = cross * a / nq2  # kappa / N_q^2 with kappa = cross a
    G = a * Wa * X - b * Wp * W * Xs
    d_wp = x.alpha_p * x.c_loss * G * W.T - x.eta_p * Wp
    d_w = x.c_loss * Wp.T * G - x.eta * W
    return d_w, d_wp, G


def _symmetric(name: str, n: int):
    import sympy as sp

    syms = sp.symbols(f"{name}0:{n * n}", real=True)
    return sp.Matrix(n, n, lambda i, j: syms[min(i, j) * n + max(i, j)])


@cache
def n1_trace_identity(n: int = 2):
    """N1: tr(Wp^T G~ W^T) for generic n x n W, Wp, Wa and symmetric X, X', times
    N_q^3 N_a and expanded: 0. So d||W||_F^2/dt = 2 c_L tr(W^T Wp^T G~) = 0, and likewise
    ||Wp||_F, when eta = eta_p = 0.

    G~ = a Wa X - b Wp W (X+X') is built with symbols a, b, then A4 ties them to the weights:
    a = 1/(N_q N_a), b = kappa/N_q^2, kappa N_q N_a = tr(Wp W X Wa^T), N_q^2 = E||q||^2.
    """
    import sympy as sp

    W, Wp, Wa = (sp.Matrix(n, n, sp.symbols(f"{c}0:{n * n}", real=True)) for c in "wqa")
    X, Xs = _symmetric("x", n), _symmetric("x", n) + _symmetric("y", n)
    a, b = sp.symbols("a b", positive=True)
    trace = sp.expand((Wp.T * (a * Wa * X - b * Wp * W * Xs) * W.T).trace())
    cross = sp.expand((Wp * W * X * Wa.T).trace())
    nq2 = sp.expand((Wp * W * Xs * W.T * Wp.T).trace())
    # trace N_q^3 N_a = coeff_a N_q^2 + coeff_b kappa N_q N_a, with N_q^2 = nq2
    return sp.expand(trace.coeff(a) * nq2 + trace.coeff(b) * cross)


@cache
def n2_rhs(k: int = 2):
    """N2 as theory.md prints it for k modes: lists (dp_j, ds_j, dtau_j) and the symbols
    (p, s, tau, sigma2) as tuples of k."""
    import sympy as sp

    x = symbols()
    p = sp.symbols(f"p0:{k}", real=True)
    s = sp.symbols(f"s0:{k}", positive=True)
    tau = sp.symbols(f"tau0:{k}", positive=True)
    sig = sp.symbols(f"sigma2_0:{k}", nonnegative=True)
    nq2 = sum((1 + sig[j]) * p[j] ** 2 * s[j] for j in range(k))
    na2 = sum((1 + sig[j]) * tau[j] ** 2 * s[j] for j in range(k))
    cross = sum(p[j] * tau[j] * s[j] for j in range(k))
    a = 1 / (sp.sqrt(nq2) * sp.sqrt(na2))
    b = cross * a / nq2
    g = [a * tau[j] - b * (1 + sig[j]) * p[j] for j in range(k)]
    dp = [x.alpha_p * x.c_loss * s[j] * g[j] - x.eta_p * p[j] for j in range(k)]
    ds = [2 * x.c_loss * p[j] * s[j] * g[j] - 2 * x.eta * s[j] for j in range(k)]
    dtau = [x.beta * (1 - tau[j]) - tau[j] * (x.c_loss * p[j] * g[j] - x.eta) for j in range(k)]
    return (dp, ds, dtau), (p, s, tau, sig)


@cache
def n2_from_n1(k: int = 2):
    """N2 derived from N1 in the common eigenbasis: W = diag(w_j) (s_j = w_j^2),
    Wp = diag(p_j), Wa = diag(tau_j w_j), X = I, X' = diag(sigma_j^2).

    N1's dW, dWp must be diagonal (a ValueError otherwise); then dp_j = dWp_jj,
    ds_j = 2 w_j dW_jj and, from dWa/dt = beta (W - Wa), dtau_j = beta (1 - tau_j) -
    tau_j dW_jj / w_j. Returns lists (dp_j, ds_j, dtau_j) in N2's symbols.
    """
    import sympy as sp

    _, (p, s, tau, sig) = n2_rhs(k)
    w = sp.symbols(f"w0:{k}", positive=True)
    W, Wp = sp.diag(*w), sp.diag(*p)
    Wa = sp.diag(*[tau[j] * w[j] for j in range(k)])
    d_w, d_wp, _ = _n1(W, Wp, Wa, sp.eye(k), sp.diag(*sig))
    for m in (d_w, d_wp):
        if any(sp.simplify(m[i, j]) != 0 for i in range(k) for j in range(k) if i != j):
            raise ValueError("N1 with diagonal W, Wp, Wa is not diagonal: the modes couple")
    x = symbols()
    to_s = {w[j]: sp.sqrt(s[j]) for j in range(k)}
    dp = [d_wp[j, j].subs(to_s) for j in range(k)]
    ds = [(2 * w[j] * d_w[j, j]).subs(to_s) for j in range(k)]
    dtau = [(x.beta * (1 - tau[j]) - tau[j] * d_w[j, j] / w[j]).subs(to_s) for j in range(k)]
    return dp, ds, dtau


@cache
def n2_residual(k: int = 2):
    """n2_from_n1(k) - n2_rhs(k), simplified: lists of zeros when N2 follows from N1."""
    import sympy as sp

    printed, _ = n2_rhs(k)
    return tuple(
        [sp.simplify(a - b) for a, b in zip(derived, shown, strict=True)]
        for derived, shown in zip(n2_from_n1(k), printed, strict=True)
    )


@cache
def n2_rhs_function(k: int = 2) -> Callable:
    """N2 for k modes as f(p, s, tau, sigma2, alpha_p, beta, eta, eta_p, c_L) -> (dp, ds,
    dtau), each argument of p, s, tau, sigma2 a sequence of k arrays (NumPy)."""
    import sympy as sp

    x = symbols()
    rhs, (p, s, tau, sig) = n2_rhs(k)
    hyper = [x.alpha_p, x.beta, x.eta, x.eta_p, x.c_loss]
    return sp.lambdify([p, s, tau, sig, *hyper], [list(r) for r in rhs], modules="numpy")


# --- lambdified to NumPy ------------------------------------------------------------------

_HYPER = ("alpha_p", "beta", "eta", "sigma2")


def _lambdify(args: tuple[str, ...], expr) -> Callable:
    import sympy as sp

    x = symbols()
    return sp.lambdify([getattr(x, a) for a in args], expr, modules="numpy")


@cache
def rhs_function() -> Callable:
    """T7 as f(p, s, tau, alpha_p, beta, eta, sigma2) -> (dp, ds, dtau) (NumPy)."""
    return _lambdify(("p", "s", "tau", *_HYPER), list(t7_rhs()))


@cache
def fixed_points_function() -> Callable:
    """T9 as f(tau, eta, sigma2) -> (p_minus, p_plus) (NumPy; nan past the threshold)."""
    f = t9()
    return _lambdify(("tau", "eta", "sigma2"), [f.p_minus, f.p_plus])


@cache
def threshold_function() -> Callable:
    """T9's collapse threshold as f(tau, sigma2) -> eta (NumPy)."""
    return _lambdify(("tau", "sigma2"), t9().threshold)


@cache
def slope_function() -> Callable:
    """T9's d(dp/dt)/dp on the parabola as f(p, tau, eta, sigma2) (NumPy)."""
    return _lambdify(("p", "tau", "eta", "sigma2"), t9().slope)


@cache
def jacobian_function() -> Callable:
    """The (p, s) Jacobian of T7 at fixed tau as f(p, s, tau, alpha_p, eta, sigma2)."""
    return _lambdify(("p", "s", "tau", "alpha_p", "eta", "sigma2"), t9().jacobian)


@cache
def stability_function() -> Callable:
    """f(tau, alpha_p, eta, sigma2) -> eigenvalues of the (p, s) Jacobian at the origin,
    (p-, p-^2/alpha_p) and (p+, p+^2/alpha_p), as three lists (T9 stability)."""
    f = t9()
    return _lambdify(("tau", "alpha_p", "eta", "sigma2"), [f.eig_origin, f.eig_minus, f.eig_plus])


@cache
def k_eigenvalue_function() -> Callable:
    """T6's K eigenvalue per mode as f(p, s, tau, alpha_p, eta, sigma2) (NumPy)."""
    return _lambdify(("p", "s", "tau", "alpha_p", "eta", "sigma2"), k_eigenvalue().k)
