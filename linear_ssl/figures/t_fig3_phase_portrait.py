"""[T] Fig. 3: phase portraits of T7 at tau = 1 (SimSiam), fixed points of T9 and the
invariant parabola of T8."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import KIND_STYLE, OKABE_ITO, STABLE, UNSTABLE, legend_below, style
from linear_ssl.theory import Hyper, modes

TITLE = "[T] Fig. 3: T7 phase portraits, T9 fixed points, T8 parabola"


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


@dataclass
class PhasePortraitData:
    """[T] Fig. 3's panels, one per eta."""

    panels: list[PhasePortrait]


def kind_2d(h: Hyper, p: float, s: float, tol: float = 1e-9) -> str:
    """Stability of a fixed point of T7's (p, s) system at tau = 1 from ``modes.jacobian``.

    Stable when every eigenvalue has a negative real part; on a line of fixed points (one
    eigenvalue 0, eta = 0) the other eigenvalue decides; unstable otherwise.
    """
    eig = np.linalg.eigvals(modes.jacobian(h, p, s, tau=1.0)).real
    eig = eig[np.abs(eig) > tol] if np.any(np.abs(eig) > tol) else eig
    return STABLE if np.all(eig < 0) else UNSTABLE


def data(
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
) -> PhasePortraitData:
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
                (r, float(modes.parabola(h, r)), kind_2d(h, r, modes.parabola(h, r))) for r in roots
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
                        {"segment": name, "p": pp, "s": ss, "kind": kind_2d(h, pp[25], ss[25])}
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
    return PhasePortraitData(panels)


def draw(data: PhasePortraitData) -> Figure:
    """Draw [T] Fig. 3: streamlines, the parabola s = p^2/alpha_p, fixed points, orbits."""
    panels = data.panels
    legend: dict[str, object] = {}
    with style():
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.4 * len(panels), 3.8), squeeze=False, layout="constrained"
        )
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
                        ls=KIND_STYLE[kind]["ls"], clip_on=False,
                    )  # fmt: skip
            for kind, pts in d.fixed.groupby("kind", sort=False):
                st = KIND_STYLE[kind]
                (legend[f"{kind} fixed point"],) = ax.plot(
                    pts.p, pts.s, ls="none", marker=st["marker"], mfc=st["mfc"], mec=st["mec"],
                    ms=7, zorder=5, clip_on=False,
                )  # fmt: skip
            on_parabola = d.fixed[d.fixed.p != 0].sort_values("p")
            for name, (_, row) in zip(("$p_-$", "$p_+$"), on_parabola.iterrows(), strict=False):
                # above-left of the marker, clear of it, on a white patch over the streamlines
                ax.annotate(
                    name,
                    (row.p, row.s),
                    xytext=(-9, 9),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    zorder=6,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85),
                )
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
        legend_below(fig, list(legend.values()), list(legend))
        fig.suptitle(
            r"[T] Fig. 3: T7 phase portraits at $\tau$ = 1 (SimSiam), "
            f"$\\alpha_p$ = {panels[0].h.alpha_p:g}, $\\sigma^2$ = {panels[0].h.sigma2:g}"
        )
    return fig
