"""N2 beside [T] Fig. 3: the normalised loss's shape portrait of two modes (theory.md 2b)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from linear_ssl.figures.style import OKABE_ITO, legend_below, style
from linear_ssl.theory import Hyper, modes, normalised

TITLE = "N2 beside [T] Fig. 3: which of two modes wins the spectrum's shape"


@dataclass
class ShapePortraitData:
    """Two-mode N2 systems per eta: mode 0 starts on a grid of (p0, share0 = s0/(s0 + s1)),
    mode 1 at (p1, 1 - share0). share: (n_eta, grid, grid) share of mode 0 at t_end;
    trajectories: tidy (eta, start, t, p, share) for a few starts; squared: the same final
    share under the squared-error T7 flow (modes independent there)."""

    etas: tuple[float, ...]
    p0: np.ndarray
    share0: np.ndarray
    share: np.ndarray
    squared: np.ndarray
    trajectories: pd.DataFrame
    p1: float
    t_end: float
    alpha_p: float


def data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    grid: int = 61,
    p1: float = 0.5,
    alpha_p: float = 1.0,
    t_end: float = 30.0,
    points: int = 201,
) -> ShapePortraitData:
    """N2 (SimSiam, tau = 1, c_L = 1) beside T7, near the settings of [T] Fig. 3.

    The normalised loss sees only the shape of the spectrum: which of two modes ends with
    the larger share of sum_j s_j, from each start. T7 is run from the same (p_j, s_j).
    Under N2 sum_j s_j = e^(-2 eta t) sum_j s_j(0) exactly (the trace identity) while the
    shape's rates grow as 1/sum_j s_j: a large eta (Fig. 3's eta = 1) makes the flow
    stiff rather than collapsed, so the sweep stops at eta = 0.1.
    """
    p_axis = np.linspace(0.02, 2.0, grid)
    share_axis = np.linspace(0.02, 0.98, grid)
    P, S = np.meshgrid(p_axis, share_axis)
    p0 = np.stack([P, np.full_like(P, p1)], axis=-1)
    s0 = np.stack([S, 1.0 - S], axis=-1)
    t = np.linspace(0.0, t_end, points)
    starts = [(0.3, 0.7), (0.8, 0.3), (1.5, 0.5), (0.6, 0.9), (1.2, 0.15)]
    sp, ss = np.array(starts).T
    shares, squared, frames = [], [], []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, eta=eta)
        sol = normalised.integrate_modes(h, p0, s0, [0.0, t_end], on_failure="ignore")
        shares.append(sol.shape[-1, ..., 0])
        ref = modes.integrate(h, p0, s0, [0.0, t_end], on_failure="ignore")
        with np.errstate(invalid="ignore", divide="ignore"):
            squared.append(ref.s[-1, ..., 0] / ref.s[-1].sum(axis=-1))
        traj = normalised.integrate_modes(
            h, np.stack([sp, np.full_like(sp, p1)], -1), np.stack([ss, 1 - ss], -1), t
        )
        frames += [
            pd.DataFrame(
                {"eta": eta, "start": k, "t": t, "p": traj.p[:, k, 0], "share": traj.shape[:, k, 0]}
            )
            for k in range(len(starts))
        ]
    return ShapePortraitData(
        etas=tuple(etas),
        p0=p_axis,
        share0=share_axis,
        share=np.array(shares),
        squared=np.array(squared),
        trajectories=pd.concat(frames, ignore_index=True),
        p1=p1,
        t_end=t_end,
        alpha_p=alpha_p,
    )


def draw(data: ShapePortraitData) -> Figure:
    """Draw N2's shape portrait: final share of mode 0 (colour), trajectories (dark) and
    the even split under N2 (solid) and under T7 (dashed, drawn over N2's: at these
    settings it falls on it in every panel, so who wins is the same and the colours, the
    final shares, are what differ: at eta = 0.1 T7 ends every surviving pair at T9's p+,
    an even split)."""
    with style():
        n = len(data.etas)
        fig, axes = plt.subplots(
            1, n, figsize=(3.6 * n + 0.8, 3.8), sharey=True, squeeze=False, layout="constrained"
        )
        for ax, eta, share, squared in zip(
            axes[0], data.etas, data.share, data.squared, strict=True
        ):
            mesh = ax.pcolormesh(
                data.p0, data.share0, share, vmin=0, vmax=1, cmap="RdBu_r", shading="auto"
            )
            ax.contour(data.p0, data.share0, share, levels=[0.5], colors="k", linewidths=1.2)
            if np.isfinite(squared).any():  # T7's even split, over N2's (which it falls on)
                ax.contour(
                    data.p0,
                    data.share0,
                    np.nan_to_num(squared, nan=0.0),
                    levels=[0.5],
                    colors=OKABE_ITO[4],
                    linestyles="--",
                    linewidths=1.4,
                    zorder=3,
                )
            for _, g in data.trajectories[data.trajectories.eta == eta].groupby("start"):
                ax.plot(g.p, g.share, color="0.15", lw=0.9)
                ax.plot(g.p.iloc[0], g.share.iloc[0], "o", color="0.15", ms=3)
            ax.set(xlabel="$p_0$", title=f"$\\eta$ = {eta:g}", xlim=(data.p0[0], data.p0[-1]))
        axes[0, 0].set_ylabel(r"share of mode 0, $\hat s_0 = s_0 / (s_0 + s_1)$")
        fig.colorbar(mesh, ax=axes[0, -1], label=rf"$\hat s_0$ at $t$ = {data.t_end:g}")
        handles = [
            Line2D([], [], color="k", lw=1.2),
            Line2D([], [], color=OKABE_ITO[4], ls="--", lw=1.4),
            Line2D([], [], color="0.15", lw=0.9, marker="o", ms=3),
        ]
        labels = [
            "even split under N2",
            "even split under T7 (squared error): the same curve",
            "N2 orbits (o: start)",
        ]
        legend_below(fig, handles, labels)
        fig.suptitle(
            f"N2 (normalised loss), two modes, mode 1 from $p_1$ = {data.p1:g}, SimSiam, "
            f"$\\alpha_p$ = {data.alpha_p:g}: who wins the shape of the spectrum"
        )
    return fig
