"""Deep linear JEPA against MAE (theory.md J2, J4): critical time over (lambda, rho).

`data(**settings) -> JEPACriticalTimesData` integrates J2 for every rho of a grid at once
(one batched solve per objective and depth; lambda only rescales time) and reads each
feature's critical time off its trajectory; `draw(data) -> Figure` shows log10 t* as a map
per (objective, depth), with J4's closed form as contour lines over it. MAE's contours
follow lambda rho = const at every depth; deep JEPA's turn towards rho = const: it learns
high-rho features first.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.figures.style import style
from linear_ssl.theory import jepa

__all__ = ["TITLE", "JEPACriticalTimesData", "data", "draw"]

TITLE = "Deep linear JEPA vs MAE (J2, J4): critical time over (lambda, rho)"


@dataclass(frozen=True)
class JEPACriticalTimesData:
    """lam (m,), rho (r,); t_flow[(objective, depth)] and t_exact[...] of shape (r, m)."""

    lam: np.ndarray
    rho: np.ndarray
    depths: tuple[int, ...]
    eps: float
    t_flow: dict
    t_exact: dict


def data(
    lam_range: tuple[float, float] = (0.5, 4.0),
    rho_range: tuple[float, float] = (0.45, 1.0),
    grid: int = 25,
    depths: tuple[int, ...] = (1, 4),
    eps: float = 0.01,
    points: int = 2000,
) -> JEPACriticalTimesData:
    """Critical times (w reaches half of w*) from the integrated J2 and from J4's closed form.

    eps: the encoder's start w(0); every rho must exceed eps^(1/L) / 2^(1/L) (a feature
    that starts past half its fixed point has no critical time: nan).
    """
    lam = np.geomspace(*lam_range, grid)
    rho = np.linspace(*rho_range, grid)
    L_, R_ = np.meshgrid(lam, rho)
    t_flow, t_exact = {}, {}
    for objective in ("jepa", "mae"):
        for depth in depths:
            # lambda is a pure time scale of J2: one solve per rho at lambda = 1, rescaled
            exact = jepa.critical_times(1.0, rho, depth, eps, objective)
            t = np.linspace(0.0, 1.2 * np.nanmax(exact), points)
            sol = jepa.integrate(1.0, rho, t, depth, eps, objective, rtol=1e-6, atol=1e-9)
            w_star, _ = jepa.fixed_point(1.0, rho, depth, objective)
            t_flow[objective, depth] = jepa.crossing_times(sol, 0.5 * w_star)[:, None] / lam
            t_exact[objective, depth] = jepa.critical_times(L_, R_, depth, eps, objective)
    return JEPACriticalTimesData(lam, rho, tuple(depths), eps, t_flow, t_exact)


def draw(d: JEPACriticalTimesData) -> Figure:
    """A map of log10 t* (integrated) per objective (rows) and depth (columns), contours of
    J4's closed form on top, and the curve lambda rho = 1 for reference."""
    with style():
        fig, axes = plt.subplots(2, len(d.depths), figsize=(4.2 * len(d.depths), 6.4))
        for row, objective in enumerate(("jepa", "mae")):
            for col, depth in enumerate(d.depths):
                ax = axes[row, col]
                logt = np.log10(d.t_flow[objective, depth])
                mesh = ax.pcolormesh(d.lam, d.rho, logt, shading="nearest", cmap="viridis")
                levels = np.linspace(np.nanmin(logt), np.nanmax(logt), 8)[1:-1]
                ax.contour(
                    d.lam,
                    d.rho,
                    np.log10(d.t_exact[objective, depth]),
                    levels=levels,
                    colors="white",
                    linewidths=0.8,
                )
                ax.plot(d.lam, 1.0 / d.lam, color="#D55E00", ls="--", lw=1.0)
                ax.set(
                    xscale="log",
                    ylim=(d.rho[0], d.rho[-1]),
                    xlabel=r"covariance $\lambda$",
                    ylabel=r"regression coefficient $\rho$",
                    title=f"{objective.upper()}, depth L = {depth}",
                )
                ticks = [x for x in (0.5, 1, 2, 4, 8) if d.lam[0] <= x <= d.lam[-1]]
                ax.set_xticks(ticks, labels=[f"{x:g}" for x in ticks], minor=False)
                ax.xaxis.set_minor_locator(plt.NullLocator())
                fig.colorbar(mesh, ax=ax, label=r"$\log_{10} t^*$")
        fig.suptitle(
            "Deep linear JEPA vs MAE (J2, J4): time for a feature to reach half its learned "
            f"value, encoder start eps = {d.eps:g}\nmap: integrated flow; white: closed form; "
            r"dashed: $\lambda\rho$ = 1 (MAE's contours follow $\lambda\rho$, deep JEPA's "
            r"turn towards $\rho$)"
        )
        fig.tight_layout()
    return fig
