"""[T] Fig. 10: T4's scalar system, its orbits and its fixed set."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import Hyper, matrix

TITLE = "[T] Fig. 10: T4 scalar system"


@dataclass
class ScalarSystemData:
    """trajectories: tidy columns start, t, wp, w, wa; and the settings."""

    trajectories: pd.DataFrame
    l_s: float
    l_d: float
    alpha_p: float
    beta: float


def data(
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
) -> ScalarSystemData:
    """[T] Fig. 10: T4's scalar system from starts (w_p(0), w(0)) with w_a(0) = w(0).

    Its fixed points: w = w_a and w_p w = w l_d / l_s, i.e. w_p = l_d / l_s
    (``matrix.scalar_fixed_predictor``) or w = w_a = 0.
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
    return ScalarSystemData(traj, l_s, l_d, alpha_p, beta)


def draw(data: ScalarSystemData) -> Figure:
    """Draw [T] Fig. 10: orbits in the (w, w_p) plane over T4's fixed set; w_p(t), w(t)."""
    wp_star = matrix.scalar_fixed_predictor(data.l_s, data.l_d)
    with style():
        fig, (ax, axt) = plt.subplots(1, 2, figsize=(9, 4.0), layout="constrained")
        ax.axhline(wp_star, color="0.55", lw=3, zorder=1,
                   label=f"fixed: $w_p = l_d/l_s$ = {wp_star:g}, $w = w_a$")  # fmt: skip
        ax.axvline(0.0, color="0.55", lw=3, ls="--", zorder=1, label="fixed: $w = w_a = 0$")
        for j, (_, g) in enumerate(data.trajectories.groupby("start")):
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
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=6.5)
        axt.set(
            xlabel="flow time $t$",
            ylabel="$w_p w$ (solid), $w\\, l_d/l_s$ (dotted)",
            title="the fixed-point relation $w_p w = w\\, l_d/l_s$ is reached",
        )
        fig.suptitle(
            f"[T] Fig. 10: T4 scalar system, $l_s$ = {data.l_s:g}, $l_d$ = {data.l_d:g}, "
            f"$\\alpha_p$ = {data.alpha_p:g}, $\\beta$ = {data.beta:g}, $\\eta$ = 0"
        )
    return fig
