"""Paper figures of theory.md section 7: one DATA function and one DRAW function per figure.

Layout of this module:

1. style: a colour-blind-safe palette (Okabe-Ito), ``style()`` (an rc context, no global
   state) and ``save_figure`` (PNG + PDF);
2. theory figures ([T] Figs. 3, 4, 5, 7, 8, 9, 10 and the [E] Fig. 2 analogue): each
   ``*_data`` function returns plain arrays / pandas DataFrames computed by the theory engine
   (``linear_ssl.theory.modes`` and ``.matrix``) and each ``draw_*`` function turns that data
   into a matplotlib Figure; ``THEORY_FIGURES`` lists them and ``theory_figures`` regenerates
   all of them (what ``linear-ssl figures`` runs);
3. run-based figures (from recorded training runs) belong in a section of their own below.

Data functions never draw and draw functions never integrate, so tests check the data
against the theory arrays and a notebook can restyle a figure without recomputing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure

from linear_ssl import diagnostics, predictors
from linear_ssl.theory import Hyper, matrix, modes

__all__ = [
    "OKABE_ITO",
    "make_figure",
    "THEORY_FIGURES",
    "draw_alignment_commutator",
    "draw_ema_correlation",
    "draw_mode_sweeps",
    "draw_parabola_flow",
    "draw_phase_portrait",
    "draw_polar_distance",
    "draw_scalar_system",
    "draw_symmetry",
    "alignment_commutator_data",
    "ema_correlation_data",
    "mode_sweeps_data",
    "parabola_flow_data",
    "phase_portrait_data",
    "polar_distance_data",
    "save_figure",
    "scalar_system_data",
    "style",
    "symmetry_data",
    "theory_figures",
]

# --------------------------------------------------------------------------- 1. style

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, green, purple, orange, sky, ...).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
STABLE, UNSTABLE, SADDLE = "stable", "unstable", "half-stable"

_RC = {
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # embed TrueType: text stays editable in the PDF
    "font.family": "DejaVu Sans",
}


@contextmanager
def style() -> Iterator[None]:
    """The figures' look, as a matplotlib rc context (leaves global rcParams untouched)."""
    with matplotlib.rc_context(_RC):
        yield


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `fig` as out_dir/name.png and out_dir/name.pdf, close it, return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return paths


def _classify(flow: Callable[[np.ndarray], np.ndarray], x: float, dx: float = 1e-4) -> str:
    """Stability of a zero x of a 1-D flow dx/dt = flow(x) from the sign of flow beside it."""
    left, right = flow(np.array([x - dx, x + dx]))
    if left > 0 > right:
        return STABLE
    if left < 0 < right:
        return UNSTABLE
    return SADDLE


def _kind_2d(h: Hyper, p: float, s: float, tol: float = 1e-9) -> str:
    """Stability of a fixed point of T7's (p, s) system at tau = 1 from ``modes.jacobian``.

    Stable when every eigenvalue has a negative real part; on a line of fixed points (one
    eigenvalue 0, eta = 0) the other eigenvalue decides; unstable otherwise.
    """
    eig = np.linalg.eigvals(modes.jacobian(h, p, s, tau=1.0)).real
    eig = eig[np.abs(eig) > tol] if np.any(np.abs(eig) > tol) else eig
    return STABLE if np.all(eig < 0) else UNSTABLE


# --------------------------------------------------------------------------- 2. theory figures
# [T] Fig. 3: phase portraits of T7 at tau = 1 (SimSiam)


@dataclass
class PhasePortrait:
    """One panel of [T] Fig. 3: T7's (p, s) field at tau = 1 for Hyper `h`.

    p (P,), s (S,): the grid; dp, ds (S, P): T7's right-hand side on it (indexed [s, p]);
    fixed: isolated fixed points (columns p, s, kind); fixed_lines: for eta = 0, the lines of
    fixed points (columns segment, p, s, kind); trajectories: T7 solutions from a few starts
    (columns start, t, p, s).
    """

    h: Hyper
    p: np.ndarray
    s: np.ndarray
    dp: np.ndarray
    ds: np.ndarray
    fixed: pd.DataFrame
    fixed_lines: pd.DataFrame
    trajectories: pd.DataFrame


def phase_portrait_data(
    etas: tuple[float, ...] = (0.0, 0.01, 1.0),
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    p_range: tuple[float, float] = (-0.5, 1.5),
    s_range: tuple[float, float] = (0.0, 1.5),
    grid: int = 41,
    starts: tuple[tuple[float, float], ...] = (
        (-0.3, 0.3),
        (0.05, 0.05),
        (0.2, 0.6),
        (0.5, 0.05),
        (1.4, 1.2),
        (0.0, 1.2),
    ),
    t_end: float = 150.0,
    points: int = 600,
) -> list[PhasePortrait]:
    """[T] Fig. 3: T7's (p, s) field at tau = 1 (SimSiam), its fixed points (T9) and orbits.

    Fixed points (tau = 1): for eta > 0, (0, 0) and (p-+, p-+^2/alpha_p) on the parabola
    (T8/T9), p- and p+ from ``modes.fixed_points``; for eta = 0, the lines s = 0 and
    p = p* = 1/(1+sigma2) (T9). Stability from the eigenvalues of ``modes.jacobian``.
    """
    p = np.linspace(*p_range, grid)
    s = np.linspace(*s_range, grid)
    P, S = np.meshgrid(p, s)
    panels = []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, beta=None, eta=eta, sigma2=sigma2)
        dp, ds, _ = modes.rhs(h, P, S, tau=1.0)
        if eta > 0:
            roots = [0.0, *(float(r) for r in modes.fixed_points(h, tau=1.0) if np.isfinite(r))]
            rows = [
                (r, float(modes.parabola(h, r)), _kind_2d(h, r, modes.parabola(h, r)))
                for r in roots
            ]
            lines = pd.DataFrame(columns=["segment", "p", "s", "kind"])
        else:
            rows, p_star = [], 1.0 / (1.0 + sigma2)  # eta = 0: T9's two lines of fixed points
            pieces = [
                ("s=0, p<0", np.linspace(p_range[0], 0.0, 50), np.zeros(50)),
                ("s=0, 0<p<p*", np.linspace(0.0, p_star, 50), np.zeros(50)),
                ("s=0, p>p*", np.linspace(p_star, p_range[1], 50), np.zeros(50)),
                ("p=p*", np.full(50, p_star), np.linspace(s_range[0], s_range[1], 50)),
            ]
            lines = pd.concat(
                [
                    pd.DataFrame(
                        {"segment": name, "p": pp, "s": ss, "kind": _kind_2d(h, pp[25], ss[25])}
                    )
                    for name, pp, ss in pieces
                ],
                ignore_index=True,
            )
        fixed = pd.DataFrame(rows, columns=["p", "s", "kind"])
        p0, s0 = (np.array(v) for v in zip(*starts, strict=True))
        t = np.linspace(0.0, t_end, points)
        sol = modes.integrate(h, p0, s0, t)
        traj = pd.concat(
            [
                pd.DataFrame({"start": j, "t": t, "p": sol.p[:, j], "s": sol.s[:, j]})
                for j in range(p0.size)
            ],
            ignore_index=True,
        )
        panels.append(PhasePortrait(h, p, s, dp, ds, fixed, lines, traj))
    return panels


_KIND_STYLE = {
    STABLE: dict(marker="o", mfc="black", mec="black", ls="-"),
    UNSTABLE: dict(marker="o", mfc="white", mec="black", ls="--"),
    SADDLE: dict(marker="o", mfc="0.6", mec="black", ls=":"),
}


def draw_phase_portrait(panels: list[PhasePortrait]) -> Figure:
    """Draw [T] Fig. 3: streamlines, the parabola s = p^2/alpha_p, fixed points, orbits."""
    legend: dict[str, object] = {}
    with style():
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.5), squeeze=False)
        for ax, d in zip(axes[0], panels, strict=True):
            speed = np.hypot(d.dp, d.ds)
            ax.streamplot(d.p, d.s, d.dp, d.ds, color=np.log10(speed + 1e-12), cmap="Greys",
                          density=0.9, linewidth=0.6, arrowsize=0.7)  # fmt: skip
            pp = np.linspace(d.p[0], d.p[-1], 200)
            par = modes.parabola(d.h, pp)
            keep = par <= d.s[-1]
            (legend[r"$s=p^2/\alpha_p$ (T8)"],) = ax.plot(
                pp[keep], par[keep], color=OKABE_ITO[2], lw=2
            )
            for _, tr in d.trajectories.groupby("start"):
                (legend["T7 orbits (x: start)"],) = ax.plot(tr.p, tr.s, color=OKABE_ITO[0], lw=1.2)
                ax.plot(tr.p.iloc[0], tr.s.iloc[0], "x", color=OKABE_ITO[0], ms=5)
            for kind, seg in d.fixed_lines.groupby("kind", sort=False):
                for _, piece in seg.groupby("segment", sort=False):
                    (legend[f"{kind} line of fixed points"],) = ax.plot(
                        piece.p, piece.s, color=OKABE_ITO[1], lw=2.4,
                        ls=_KIND_STYLE[kind]["ls"], clip_on=False,
                    )  # fmt: skip
            for kind, pts in d.fixed.groupby("kind", sort=False):
                st = _KIND_STYLE[kind]
                (legend[f"{kind} fixed point"],) = ax.plot(
                    pts.p, pts.s, ls="none", marker=st["marker"], mfc=st["mfc"], mec=st["mec"],
                    ms=7, zorder=5, clip_on=False,
                )  # fmt: skip
            on_parabola = d.fixed[d.fixed.p != 0].sort_values("p")
            for name, (_, row) in zip(("$p_-$", "$p_+$"), on_parabola.iterrows(), strict=False):
                ax.annotate(name, (row.p, row.s), xytext=(6, 4), textcoords="offset points")
            ax.set(
                xlim=(d.p[0], d.p[-1]),
                ylim=(d.s[0], d.s[-1]),
                xlabel="$p$ (eigenvalue of $W_p$)",
                ylabel="$s$ (eigenvalue of $F$)",
            )
            if d.h.eta > d.h.collapse_threshold:
                title = f"$\\eta$ = {d.h.eta:g} > 1/4: every mode collapses"
            else:
                title = f"$\\eta$ = {d.h.eta:g}"
            ax.set_title(title)
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend),
                   bbox_to_anchor=(0.5, -0.01))  # fmt: skip
        fig.suptitle(
            r"[T] Fig. 3: T7 phase portraits at $\tau$ = 1 (SimSiam), "
            f"$\\alpha_p$ = {panels[0].h.alpha_p:g}, $\\sigma^2$ = {panels[0].h.sigma2:g}"
        )
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# [T] Fig. 4: T9, the 1-D flow on the parabola


def parabola_flow_data(
    etas: tuple[float, ...] = (0.0, 0.1, 0.4),
    tau: float = 1.0,
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    p_range: tuple[float, float] = (-0.3, 1.2),
    points: int = 601,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """[T] Fig. 4: T9's dp/dt on the parabola vs p for each eta (its three regimes).

    Returns (curves: columns eta, p, dpdt; fixed: columns eta, p, kind). The zeros are p = 0
    and p-+ of ``modes.fixed_points`` (nan ones dropped); kinds from the sign of dp/dt beside
    each zero (half-stable: the same sign on both sides, e.g. p = 0 at eta = 0).
    """
    p = np.linspace(*p_range, points)
    curves, fixed = [], []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, beta=None, eta=eta, sigma2=sigma2)
        curves.append(pd.DataFrame({"eta": eta, "p": p, "dpdt": modes.parabola_flow(h, p, tau)}))
        zeros = {0.0, *(float(r) for r in modes.fixed_points(h, tau) if np.isfinite(r))}
        for root in sorted(zeros):
            kind = _classify(lambda x, h=h: modes.parabola_flow(h, x, tau), root)
            fixed.append((eta, root, kind))
    curves = pd.concat(curves, ignore_index=True)
    threshold = float(modes.collapse_threshold(Hyper(alpha_p=alpha_p, sigma2=sigma2), tau))
    curves.attrs.update(tau=tau, alpha_p=alpha_p, sigma2=sigma2, threshold=threshold)
    return curves, pd.DataFrame(fixed, columns=["eta", "p", "kind"])


def draw_parabola_flow(data: tuple[pd.DataFrame, pd.DataFrame]) -> Figure:
    """Draw [T] Fig. 4: dp/dt vs p with fixed points (filled stable, open unstable)."""
    curves, fixed = data
    etas = curves.eta.unique()
    a = curves.attrs
    with style():
        fig, axes = plt.subplots(1, len(etas), figsize=(3.2 * len(etas), 2.9), squeeze=False)
        for ax, eta in zip(axes[0], etas, strict=True):
            c = curves[curves.eta == eta]
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.plot(c.p, c.dpdt, color=OKABE_ITO[0], label="T9: $dp/dt$ on the parabola")
            for kind, pts in fixed[fixed.eta == eta].groupby("kind", sort=False):
                st = _KIND_STYLE[kind]
                ax.plot(
                    pts.p,
                    0 * pts.p,
                    ls="none",
                    marker="o",
                    mfc=st["mfc"],
                    mec=st["mec"],
                    ms=8,
                    zorder=5,
                    clip_on=False,
                    label=kind,
                )
            bound = r"$\tau^2/(4(1+\sigma^2))$"
            if eta == 0:
                regime = "$\\eta$ = 0"
            elif eta <= a["threshold"]:
                regime = f"0 < $\\eta$ = {eta:g} < {bound}"
            else:
                regime = f"$\\eta$ = {eta:g} > {bound}: all collapse"
            ax.set(title=regime, xlabel="$p$", ylabel="$dp/dt$ (per unit flow time)")
            ax.legend(loc="lower left")
        fig.suptitle(
            r"[T] Fig. 4: T9 fixed points, $dp/dt = p^2(\tau - (1+\sigma^2)p) - \eta p$, "
            f"$\\tau$ = {a['tau']:g}, $\\sigma^2$ = {a['sigma2']:g}"
        )
        fig.tight_layout()
    return fig


# [T] Fig. 5: T7 simulated, sweeps of eta and of the EMA rate beta


def mode_sweeps_data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.04, 0.1),
    betas: tuple[float | None, ...] = (0.04, 0.1, 0.4, 1.0, None),
    beta: float = 0.4,
    eta: float = 0.04,
    p0: tuple[float, ...] = (-0.1, 0.0, 0.05, 0.1, 0.2, 0.4),
    s0: float = 0.02,
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    t_end: float = 60.0,
    step: float = 0.01,
) -> pd.DataFrame:
    """[T] Fig. 5: T7 from several modes (p0 spread, s(0) = s0, tau(0) = 1) on a grid of `step`.

    Sweep "eta" varies eta at EMA rate `beta`; sweep "beta" varies beta at weight decay `eta`
    (None: SimSiam). Tidy columns: sweep, eta, beta, t, mode, p, s, tau, K with K the mode's
    entry of T6's K (the F/Wp eigenbasis makes K diagonal:
    K_j = (1+sigma2)[alpha_p s_j/2 + p_j^2] - tau_j p_j + 3 eta/2); lambda_min(K) = min_j K_j.
    """
    t = np.arange(0.0, t_end + step / 2, step)
    p0 = np.asarray(p0, dtype=float)
    settings = [("eta", e, beta) for e in etas] + [("beta", eta, b) for b in betas]
    frames = []
    for sweep, e, b in settings:
        h = Hyper(alpha_p=alpha_p, beta=b, eta=e, sigma2=sigma2)
        sol = modes.integrate(h, p0, np.full_like(p0, s0), t)
        K = modes.k_eigenvalue(h, sol.p, sol.s, sol.tau)
        n_t, n_m = sol.p.shape
        frames.append(
            pd.DataFrame(
                {
                    "sweep": sweep,
                    "eta": e,
                    "beta": np.nan if b is None else b,
                    "t": np.repeat(sol.t, n_m),
                    "mode": np.tile(np.arange(n_m), n_t),
                    "p": sol.p.ravel(),
                    "s": sol.s.ravel(),
                    "tau": sol.tau.ravel(),
                    "K": K.ravel(),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.attrs.update(alpha_p=alpha_p, sigma2=sigma2, step=step, s0=s0)
    return df


def draw_mode_sweeps(df: pd.DataFrame) -> Figure:
    """Draw [T] Fig. 5: rows eta sweep / beta sweep; columns p_j(t), s_j(t), lambda_min(K)(t)."""
    with style():
        fig, axes = plt.subplots(2, 3, figsize=(10, 5.6), sharex=True)
        for row, sweep in enumerate(("eta", "beta")):
            sub = df[df.sweep == sweep]
            key = "eta" if sweep == "eta" else "beta"
            for i, (value, g) in enumerate(sub.groupby(key, sort=False, dropna=False)):
                colour = OKABE_ITO[i % len(OKABE_ITO)]
                if sweep == "eta":
                    label = f"$\\eta$ = {value:g}"
                else:
                    label = "SimSiam" if np.isnan(value) else f"$\\beta$ = {value:g}"
                for j, (_, m) in enumerate(g.groupby("mode")):
                    axes[row, 0].plot(m.t, m.p, color=colour, lw=1, label=label if j == 0 else None)
                    axes[row, 1].plot(m.t, m.s, color=colour, lw=1)
                lam = g.groupby("t").K.min()
                axes[row, 2].plot(lam.index, lam.values, color=colour, label=label)
            fixed = (
                f"$\\beta$ = {sub.beta.iloc[0]:g}"
                if sweep == "eta"
                else f"$\\eta$ = {sub.eta.iloc[0]:g}"
            )
            axes[row, 0].set_title(
                f"{'weight decay' if sweep == 'eta' else 'EMA'} sweep ({fixed}): $p_j$"
            )
            axes[row, 1].set_title("$s_j$")
            axes[row, 2].set_title(r"$\lambda_{\min}(K)$ (T6)")
            axes[row, 2].axhline(0.0, color="0.5", lw=0.8)
            axes[row, 0].set_ylabel("$p_j$")
            axes[row, 1].set_ylabel("$s_j$")
            axes[row, 2].set_ylabel(r"$\min_j K_j$")
            axes[row, 0].legend(loc="lower right", ncol=1)
        for ax in axes[1]:
            ax.set_xlabel("flow time $t$")
        fig.suptitle(
            f"[T] Fig. 5: T7 simulated (grid step {df.attrs['step']:g}), $\\alpha_p$ = "
            f"{df.attrs['alpha_p']:g}, $\\sigma^2$ = {df.attrs['sigma2']:g}, "
            f"$s_j(0)$ = {df.attrs['s0']:g}, $\\tau_j(0)$ = 1; one line per mode $j$"
        )
        fig.tight_layout()
    return fig


# [T] Fig. 7: validity of A1 (Wa = tau W) on the full matrix flow


def _entry_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of the entries of A[k] and B[k], for each leading index k."""
    a = A.reshape(A.shape[0], -1)
    b = B.reshape(B.shape[0], -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / denom, np.nan)


def ema_correlation_data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    betas: tuple[float, ...] = (0.05, 0.2, 1.0),
    n: int = 20,
    init_std: float = 0.03,
    runs: int = 10,
    alpha_p: float = 1.0,
    t_end: float = 50.0,
    points: int = 101,
    seed: int = 0,
) -> pd.DataFrame:
    """[T] Fig. 7: corr(Wa(t), W(t)) over the entries, on T1 with X = I, X' = 0, Wa(0) = 0.

    W(0), Wp(0) (n x n) have i.i.d. N(0, init_std^2) entries; `runs` seeds per setting.
    Tidy columns: eta, beta, run, t, corr (nan at t = 0, where Wa = 0).
    """
    t = np.linspace(0.0, t_end, points)
    rows = []
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        W0, Wp0 = rng.normal(0.0, init_std, (2, n, n))
        for eta in etas:
            for beta in betas:
                h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
                sol = matrix.integrate(h, W0, Wp0, np.zeros_like(W0), t)
                corr = _entry_correlation(sol.Wa, sol.W)
                rows.append(
                    pd.DataFrame({"eta": eta, "beta": beta, "run": run, "t": t, "corr": corr})
                )
    df = pd.concat(rows, ignore_index=True)
    df.attrs.update(n=n, init_std=init_std, runs=runs, alpha_p=alpha_p)
    return df


def draw_ema_correlation(df: pd.DataFrame) -> Figure:
    """Draw [T] Fig. 7: mean +- std over runs of corr(Wa, W) vs t; one panel per eta."""
    etas = df.eta.unique()
    with style():
        fig, axes = plt.subplots(
            1, len(etas), figsize=(3.3 * len(etas), 2.9), sharey=True, squeeze=False
        )
        for ax, eta in zip(axes[0], etas, strict=True):
            for i, (beta, g) in enumerate(df[df.eta == eta].groupby("beta")):
                stats = g.dropna().groupby("t")["corr"].agg(["mean", "std"])
                colour = OKABE_ITO[i % len(OKABE_ITO)]
                ax.plot(stats.index, stats["mean"], color=colour, label=f"$\\beta$ = {beta:g}")
                ax.fill_between(
                    stats.index,
                    stats["mean"] - stats["std"],
                    stats["mean"] + stats["std"],
                    color=colour,
                    alpha=0.2,
                    lw=0,
                )
            ax.set(title=f"$\\eta$ = {eta:g}", xlabel="flow time $t$")
        axes[0, 0].set_ylabel(r"corr($W_a$, $W$) over entries")
        axes[0, 0].legend(loc="lower right")
        a = df.attrs
        fig.suptitle(
            f"[T] Fig. 7: A1 holds on the matrix flow T1 (n = {a['n']}, init std "
            f"{a['init_std']:g}, $W_a(0)$ = 0, X = I, X' = 0); mean $\\pm$ std of {a['runs']} runs"
        )
        fig.tight_layout()
    return fig


# [T] Fig. 8: the skew part of Wp under the unsymmetrised flow


def symmetry_data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    beta: float | None = 0.4,
    n: int = 10,
    alpha_p: float = 1.0,
    t_end: float = 200.0,
    points: int = 401,
    seed: int = 0,
) -> pd.DataFrame:
    """[T] Fig. 8: ||sym(Wp)||_F and ||skew(Wp)||_F along T1 with no symmetrisation (A3 off).

    W(0), Wp(0) (n x n) have i.i.d. N(0, 1/n) entries (Wp(0) far from symmetric), Wa(0) =
    W(0), X = I, X' = 0. sym = (Wp + Wp^T)/2, skew = (Wp - Wp^T)/2. Tidy columns: eta, t,
    sym, skew.
    """
    rng = np.random.default_rng(seed)
    W0, Wp0 = rng.normal(0.0, 1.0 / np.sqrt(n), (2, n, n))
    t = np.linspace(0.0, t_end, points)
    frames = []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
        sol = matrix.integrate(h, W0, Wp0, None if beta is None else W0, t, symmetric=False)
        WpT = np.swapaxes(sol.Wp, -1, -2)
        frames.append(
            pd.DataFrame(
                {
                    "eta": eta,
                    "t": t,
                    "sym": np.linalg.norm((sol.Wp + WpT) / 2, axis=(-2, -1)),
                    "skew": np.linalg.norm((sol.Wp - WpT) / 2, axis=(-2, -1)),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.attrs.update(n=n, beta=beta, alpha_p=alpha_p)
    return df


def draw_symmetry(df: pd.DataFrame) -> Figure:
    """Draw [T] Fig. 8: symmetric (solid) and skew (dashed) norms of Wp vs t, log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(5.2, 3.3))
        for i, (eta, g) in enumerate(df.groupby("eta")):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(g.t, g["sym"], color=colour, label=f"$\\eta$ = {eta:g}: symmetric part")
            ax.plot(g.t, g["skew"], color=colour, ls="--", label=f"$\\eta$ = {eta:g}: skew part")
        ax.set(yscale="log", xlabel="flow time $t$", ylabel=r"$\|\cdot\|_F$ of the part of $W_p$")
        ax.legend(loc="lower left", ncol=1)
        a = df.attrs
        beta = "SimSiam" if a["beta"] is None else f"$\\beta$ = {a['beta']:g}"
        ax.set_title(
            f"[T] Fig. 8: unsymmetrised flow T1, n = {a['n']}, $\\alpha_p$ = {a['alpha_p']:g}, "
            f"{beta}\nthe skew part of $W_p$ vanishes for $\\eta$ > 0 (it freezes at $\\eta$ = 0)"
        )
        fig.tight_layout()
    return fig


# [T] Fig. 9: the commutator [F, Wp] of T6


def alignment_commutator_data(
    settings: tuple[tuple[float, float | None], ...] = (
        (0.0, None),
        (0.01, None),
        (0.05, None),
        (0.0, 0.1),
        (0.01, 0.1),
    ),
    n: int = 10,
    init_std: float = 0.01,
    alpha_p: float = 1.0,
    t_end: float = 80.0,
    points: int = 321,
    seed: int = 1,
) -> pd.DataFrame:
    """[T] Fig. 9: ||[F, Wp]||_F and lambda_min(K) (T6) along the symmetrised flow T5.

    settings: (eta, beta) pairs; beta None is SimSiam (tau = 1), a beta starts from
    Wa(0) = 0 (tau small early). One draw of W(0) and symmetric Wp(0) (i.i.d. N(0,
    init_std^2) entries, Wp symmetrised) serves every setting; X = I, X' = 0. tau(t) for K is
    the A1 fit tr(Wa W^T) / tr(W W^T). Tidy columns: eta, beta, t, commutator, lambda_min.
    """
    rng = np.random.default_rng(seed)
    W0, A = rng.normal(0.0, init_std, (2, n, n))
    Wp0 = (A + A.T) / np.sqrt(2.0)
    t = np.linspace(0.0, t_end, points)
    frames = []
    for eta, beta in settings:
        h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
        Wa0 = None if beta is None else np.zeros_like(W0)
        sol = matrix.integrate(h, W0, Wp0, Wa0, t, symmetric=True)
        F = sol.F
        tau = np.einsum("tij,tij->t", sol.Wa, sol.W) / np.einsum("tij,tij->t", sol.W, sol.W)
        K = matrix.alignment_operator(h, F, sol.Wp, tau)
        frames.append(
            pd.DataFrame(
                {
                    "eta": eta,
                    "beta": np.nan if beta is None else beta,
                    "t": t,
                    "commutator": matrix.commutator_norm(F, sol.Wp),
                    "lambda_min": matrix.lambda_min(K),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.attrs.update(n=n, init_std=init_std, alpha_p=alpha_p)
    return df


def draw_alignment_commutator(df: pd.DataFrame) -> Figure:
    """Draw [T] Fig. 9: ||[F, Wp]||_F (log) and lambda_min(K) vs t for each (eta, beta)."""
    with style():
        fig, (ax, axk) = plt.subplots(1, 2, figsize=(9, 3.4))
        groups = df.groupby(["eta", "beta"], dropna=False, sort=False)
        for i, ((eta, beta), g) in enumerate(groups):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ls = "-" if np.isnan(beta) else "--"
            target = (
                r"SimSiam ($\tau$ = 1)"
                if np.isnan(beta)
                else (f"$\\beta$ = {beta:g}, $W_a(0)$ = 0")
            )
            label = f"$\\eta$ = {eta:g}, {target}"
            ax.plot(g.t, g.commutator, color=colour, ls=ls, label=label)
            axk.plot(g.t, g.lambda_min, color=colour, ls=ls, label=label)
        ax.set(yscale="log", xlabel="flow time $t$", ylabel=r"$\|[F, W_p]\|_F$")
        ax.set_title(r"T6 commutator: grows while $\lambda_{\min}(K)$ < 0")
        axk.axhline(0.0, color="0.5", lw=0.8)
        axk.set(
            xlabel="flow time $t$",
            ylabel=r"$\lambda_{\min}(K)$",
            title=r"T6: $K$ with $\tau$ fitted as tr($W_aW^T$)/tr($WW^T$)",
        )
        ax.legend(loc="lower left", fontsize=6.5)
        a = df.attrs
        fig.suptitle(
            f"[T] Fig. 9: symmetrised flow T5, n = {a['n']}, init std {a['init_std']:g}, "
            f"$\\alpha_p$ = {a['alpha_p']:g}, X = I: small $\\eta$ and large $\\tau$ "
            "let the commutator grow"
        )
        fig.tight_layout()
    return fig


# [T] Fig. 10: T4's scalar system


def scalar_system_data(
    starts: tuple[tuple[float, float], ...] = (
        (-1.0, 0.5),
        (-0.5, 1.5),
        (0.1, 0.3),
        (1.2, 0.3),
        (1.5, 1.5),
        (0.8, -1.0),
        (-0.8, -0.4),
    ),
    l_s: float = 1.0,
    l_d: float = 0.5,
    alpha_p: float = 1.0,
    beta: float = 1.0,
    t_end: float = 60.0,
    points: int = 600,
) -> pd.DataFrame:
    """[T] Fig. 10: T4's scalar system from starts (w_p(0), w(0)) with w_a(0) = w(0).

    Tidy columns: start, t, wp, w, wa. Its fixed points: w = w_a and w_p w = w l_d / l_s,
    i.e. w_p = l_d / l_s (``matrix.scalar_fixed_predictor``) or w = w_a = 0.
    """
    h = Hyper(alpha_p=alpha_p, beta=beta)
    wp0, w0 = (np.array(v) for v in zip(*starts, strict=True))
    t = np.linspace(0.0, t_end, points)
    sol = matrix.integrate_scalar(h, wp0, w0, w0, t, l_s=l_s, l_d=l_d)
    traj = pd.concat(
        [
            pd.DataFrame(
                {"start": j, "t": t, "wp": sol.wp[:, j], "w": sol.w[:, j], "wa": sol.wa[:, j]}
            )
            for j in range(wp0.size)
        ],
        ignore_index=True,
    )
    traj.attrs.update(l_s=l_s, l_d=l_d, alpha_p=alpha_p, beta=beta)
    return traj


def draw_scalar_system(traj: pd.DataFrame) -> Figure:
    """Draw [T] Fig. 10: orbits in the (w, w_p) plane over T4's fixed set; w_p(t), w(t)."""
    a = traj.attrs
    wp_star = matrix.scalar_fixed_predictor(a["l_s"], a["l_d"])
    with style():
        fig, (ax, axt) = plt.subplots(1, 2, figsize=(9, 3.6))
        ax.axhline(
            wp_star,
            color="0.55",
            lw=3,
            zorder=1,
            label=f"fixed: $w_p = l_d/l_s$ = {wp_star:g}, $w = w_a$",
        )
        ax.axvline(0.0, color="0.55", lw=3, ls="--", zorder=1, label="fixed: $w = w_a = 0$")
        for j, (_, g) in enumerate(traj.groupby("start")):
            colour = OKABE_ITO[j % len(OKABE_ITO)]
            ax.plot(g.w, g.wp, color=colour, lw=1.1)
            ax.plot(g.w.iloc[0], g.wp.iloc[0], "x", color=colour, ms=6)
            ax.plot(g.w.iloc[-1], g.wp.iloc[-1], "o", color=colour, mec="black", ms=5, zorder=5)
            # an arrow a third of the way along the orbit shows the direction of travel
            arc = np.cumsum(np.hypot(np.diff(g.w), np.diff(g.wp)))
            k = int(np.searchsorted(arc, arc[-1] / 3))
            ax.annotate(
                "",
                xy=(g.w.iloc[k + 1], g.wp.iloc[k + 1]),
                xytext=(g.w.iloc[k], g.wp.iloc[k]),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.1),
            )
            axt.plot(g.t, g.wp * g.w, color=colour, lw=1.1)
            axt.plot(g.t, wp_star * g.w, color=colour, lw=1.1, ls=":")
        ax.set(xlabel="$w$ (online weight)", ylabel="$w_p$ (predictor)")
        ax.set_title("orbits from $w_a(0) = w(0)$ (x: start, o: end)")
        ax.legend(loc="lower right", fontsize=6.5)
        axt.set(
            xlabel="flow time $t$",
            ylabel="$w_p w$ (solid), $w\\, l_d/l_s$ (dotted)",
            title="the fixed-point relation $w_p w = w\\, l_d/l_s$ is reached",
        )
        fig.suptitle(
            f"[T] Fig. 10: T4 scalar system, $l_s$ = {a['l_s']:g}, $l_d$ = {a['l_d']:g}, "
            f"$\\alpha_p$ = {a['alpha_p']:g}, $\\beta$ = {a['beta']:g}, $\\eta$ = 0"
        )
        fig.tight_layout()
    return fig


# [E] Fig. 2 analogue: distance of the predictor to orthogonality vs the EMA rate


def _random_covariance(rng: np.random.Generator, eigenvalues: np.ndarray) -> np.ndarray:
    """A symmetric PSD matrix with the given eigenvalues in a uniformly random basis."""
    Q, _ = np.linalg.qr(rng.normal(size=(eigenvalues.size, eigenvalues.size)))
    return (Q * eigenvalues) @ Q.T


def polar_distance_data(
    betas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0),
    times: tuple[float, ...] = (10.0, 50.0, 200.0),
    n1: int = 8,
    n2: int = 4,
    runs: int = 5,
    init_std: float = 0.1,
    wp_init: float = 0.5,
    alpha_p: float = 1.0,
    eta: float = 0.0,
    lrp_reg: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """[E] Fig. 2 analogue on the linear model: E5 and E3 of the predictor vs the EMA rate.

    T1 (BYOL, Wa(0) = W(0)) with non-isotropic X (eigenvalues 2 ... 0.2) and X' (1 ... 0.1)
    in independent random bases, so that F and the optimal predictor need not commute;
    W(0) with i.i.d. N(0, init_std^2) entries, Wp(0) = wp_init I + N(0, 0.01) noise (a
    random small Wp(0) has negative modes, which collapse: T9). At each time of `times`, two
    predictors: "LRP" = R3 on the exact C_oo = W(X+X')W^T and C_to = Wa X W^T (ridge
    `lrp_reg`; with eta > 0 weight decay collapses unused directions of W and C_oo turns
    singular, so the default is eta = 0), and "trained" = the flow's own Wp. Tidy columns:
    beta, run, t, predictor, polar_distance (E5, Frobenius, relative), quasi_orthogonality
    (E3), coo_condition (lambda_min / lambda_max of C_oo: near 0 where a mode of W is
    collapsing and LRP is ill-determined).
    """
    rng = np.random.default_rng(seed)
    X = _random_covariance(rng, np.linspace(2.0, 0.2, n1))
    Xp = _random_covariance(rng, np.linspace(1.0, 0.1, n1))
    t = np.array([0.0, *times])
    rows = []
    for run in range(runs):
        r = np.random.default_rng([seed, run])
        W0 = r.normal(0.0, init_std, (n2, n1))
        Wp0 = wp_init * np.eye(n2) + r.normal(0.0, 0.1, (n2, n2))
        for beta in betas:
            h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
            sol = matrix.integrate(h, W0, Wp0, W0, t, X=X, Xp=Xp)
            for k in range(1, t.size):
                lrp = predictors.lrp(sol.C_oo[k], sol.C_to[k], reg=lrp_reg)
                eig = np.linalg.eigvalsh(sol.C_oo[k])
                for name, P in (("LRP", lrp), ("trained", sol.Wp[k])):
                    e5, e3 = diagnostics.polar_distance(P), diagnostics.quasi_orthogonality(P)
                    rows.append((beta, run, t[k], name, e5, e3, eig[0] / eig[-1]))
    df = pd.DataFrame(
        rows,
        columns=[
            "beta",
            "run",
            "t",
            "predictor",
            "polar_distance",
            "quasi_orthogonality",
            "coo_condition",
        ],
    )
    df.attrs.update(
        n1=n1, n2=n2, runs=runs, alpha_p=alpha_p, eta=eta, init_std=init_std, wp_init=wp_init
    )
    return df


def draw_polar_distance(df: pd.DataFrame) -> Figure:
    """Draw [E] Fig. 2 analogue: median (IQR band) of E5 and E3 vs beta, LRP at each time and
    the trained Wp at the last time."""
    last = df.t.max()
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        curves = [(("LRP", t), f"LRP (R3), $t$ = {t:g}", "-") for t in sorted(df.t.unique())]
        curves.append((("trained", last), f"trained $W_p$, $t$ = {last:g}", "--"))
        metrics = (
            ("polar_distance", "E5: polar distance"),
            ("quasi_orthogonality", "E3: quasi-orthogonality"),
        )
        for ax, (metric, name) in zip(axes, metrics, strict=True):
            for i, ((pred, t), label, ls) in enumerate(curves):
                g = df[(df.predictor == pred) & (df.t == t)].groupby("beta")[metric]
                med, lo, hi = g.median(), g.quantile(0.25), g.quantile(0.75)
                colour = "black" if pred == "trained" else OKABE_ITO[i % len(OKABE_ITO)]
                ax.plot(med.index, med.values, marker="o", ms=3, color=colour, ls=ls, label=label)
                ax.fill_between(med.index, lo.values, hi.values, color=colour, alpha=0.15, lw=0)
            ax.set(
                xscale="log",
                xlabel=r"EMA rate $\beta$ (larger: target closer to $W$)",
                ylabel=name,
                title=name,
            )
        axes[0].legend(loc="upper right")
        a = df.attrs
        fig.suptitle(
            f"[E] Fig. 2 analogue: linear BYOL T1, $n_1$ = {a['n1']}, $n_2$ = {a['n2']}, "
            f"non-isotropic X, X', $\\eta$ = {a['eta']:g}, $\\alpha_p$ = {a['alpha_p']:g}, "
            f"W(0) std {a['init_std']:g}, $W_p(0) \\approx$ {a['wp_init']:g} I\n"
            f"the predictor moves away from orthogonal as the EMA loosens (small $\\beta$); "
            f"median and IQR of {a['runs']} runs"
        )
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class TheoryFigure:
    """A theory figure: its data and draw functions and the data settings of fast=True."""

    data: Callable[..., object]
    draw: Callable[[object], Figure]
    fast: dict = field(default_factory=dict)


#: file name (paper_figures/out/NAME.png|pdf) -> figure; the order is the paper's.
THEORY_FIGURES: dict[str, TheoryFigure] = {
    "t_fig3_phase_portrait": TheoryFigure(
        phase_portrait_data, draw_phase_portrait, dict(grid=21, points=100)
    ),
    "t_fig4_parabola_flow": TheoryFigure(parabola_flow_data, draw_parabola_flow, dict(points=201)),
    "t_fig5_mode_sweeps": TheoryFigure(mode_sweeps_data, draw_mode_sweeps, dict(step=0.1)),
    "t_fig7_ema_correlation": TheoryFigure(
        ema_correlation_data, draw_ema_correlation, dict(n=6, runs=2, points=26)
    ),
    "t_fig8_predictor_symmetry": TheoryFigure(
        symmetry_data, draw_symmetry, dict(n=5, t_end=100.0, points=101)
    ),
    "t_fig9_commutator": TheoryFigure(
        alignment_commutator_data, draw_alignment_commutator, dict(n=5, points=81)
    ),
    "t_fig10_scalar_system": TheoryFigure(scalar_system_data, draw_scalar_system, dict(points=200)),
    "e_fig2_polar_distance": TheoryFigure(
        polar_distance_data, draw_polar_distance, dict(betas=(0.03, 0.3, 3.0), runs=2)
    ),
}


def make_figure(
    name: str, out_dir: str | Path = "paper_figures/out", fast: bool = False
) -> list[Path]:
    """Compute and draw one theory figure of THEORY_FIGURES; write NAME.png and NAME.pdf."""
    if name not in THEORY_FIGURES:
        raise ValueError(f"no theory figure {name!r}: choose one of {', '.join(THEORY_FIGURES)}")
    spec = THEORY_FIGURES[name]
    data = spec.data(**(spec.fast if fast else {}))
    return save_figure(spec.draw(data), out_dir, name)


def theory_figures(
    out_dir: str | Path = "paper_figures/out",
    fast: bool = False,
    names: list[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Regenerate the theory figures of theory.md section 7 (all, or `names`) as PNG + PDF.

    fast=True uses smaller grids, sizes and run counts (for tests); the full set takes well
    under a minute on a laptop CPU. Returns the written paths.
    """
    from tqdm.auto import tqdm

    chosen = list(THEORY_FIGURES) if names is None else list(names)
    unknown = [n for n in chosen if n not in THEORY_FIGURES]
    if unknown:
        raise ValueError(
            f"unknown theory figures {unknown}: choose from {', '.join(THEORY_FIGURES)}"
        )
    paths: list[Path] = []
    bar = tqdm(chosen, desc="theory figures", unit="fig", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        paths += make_figure(name, out_dir, fast=fast)
    return paths


# --------------------------------------------------------------------------- 3. run figures
# Figures drawn from recorded training runs ([T] Figs. 2, 6, [E] Figs. 1, 3, the overlay)
# go here, with the same data / draw split and the same style().
