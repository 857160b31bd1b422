"""N2 beside [T] Fig. 5: the normalised loss's mode sweeps (theory.md 2b)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import style
from linear_ssl.figures.t_fig5_mode_sweeps import (
    BETAS,
    ETAS,
    P0,
    sweep_heading,
    sweep_rows,
    sweep_table,
)
from linear_ssl.theory import Hyper, normalised

TITLE = "N2 beside [T] Fig. 5: the normalised loss over an eta sweep and an EMA sweep"


@dataclass
class NormalisedSweepsData:
    """table: tidy columns sweep, eta, beta, t, mode, p, shape, tau; and the settings."""

    table: pd.DataFrame
    alpha_p: float
    sigma2: float
    s0: float


def data(
    etas: tuple[float, ...] = ETAS,
    betas: tuple[float | None, ...] = BETAS,
    beta: float = 0.4,
    eta: float = 0.04,
    p0: tuple[float, ...] = P0,
    s0: float = 0.2,
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    t_end: float = 30.0,
    step: float = 0.1,
) -> NormalisedSweepsData:
    """N2 on [T] Fig. 5's modes (p0 spread, s(0) = s0, tau(0) = 1) as one coupled system:
    the shape s^_j = s_j / sum_k s_k and p_j over an eta sweep (at EMA rate beta) and an
    EMA sweep (at eta; None: SimSiam). s0 is 10x Fig. 5's: sum_j s_j = e^(-2 eta t)
    sum_j s_j(0) exactly under N2 and the rates grow as its inverse, so a small start with
    weight decay turns the flow stiff."""

    def solve(h: Hyper, p0: np.ndarray, s0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict]:
        sol = normalised.integrate_modes(h, p0, s0, t, on_failure="ignore")
        return sol.t, dict(p=sol.p, shape=sol.shape, tau=sol.tau)

    settings = (etas, betas, beta, eta, p0, s0, alpha_p, sigma2, t_end, step)
    return NormalisedSweepsData(sweep_table(solve, *settings), alpha_p, sigma2, s0)


def draw(data: NormalisedSweepsData) -> Figure:
    """Draw N2's sweeps: rows eta sweep / EMA sweep; columns shape s^_j(t), p_j(t)."""
    with style():
        fig, axes = plt.subplots(2, 2, figsize=(9.4, 5.8), sharex=True, layout="constrained")
        for row, sweep, sub, settings in sweep_rows(data.table):
            for colour, label, g in settings:
                for j, (_, m) in enumerate(g.groupby("mode")):
                    axes[row, 0].plot(m.t, m["shape"], color=colour, lw=1)
                    axes[row, 1].plot(m.t, m.p, color=colour, lw=1, label=label if j == 0 else None)
            axes[row, 0].set_title(f"{sweep_heading(sweep, sub)}: shape $\\hat s_j$")
            axes[row, 1].set_title("$p_j$")
            axes[row, 0].set(ylabel=r"$\hat s_j = s_j / \sum_k s_k$", yscale="log")
            axes[row, 1].set_ylabel("$p_j$")
            # beside its row, off the data: one colour per setting of the sweep
            axes[row, 1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        for ax in axes[1]:
            ax.set_xlabel("flow time $t$")
        fig.suptitle(
            f"N2 (normalised loss) on [T] Fig. 5's modes, one coupled system: $\\alpha_p$ = "
            f"{data.alpha_p:g}, $\\sigma^2$ = {data.sigma2:g}, $s_j(0)$ = {data.s0:g}; "
            "the large-$p$ modes lose share and the $p_j$ meet"
        )
    return fig
