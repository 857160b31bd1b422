"""[T] Fig. 4: T9, the 1-D flow of p on the invariant parabola, in its three regimes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import (
    KIND_STYLE,
    OKABE_ITO,
    SADDLE,
    STABLE,
    UNSTABLE,
    legend_below,
    style,
)
from linear_ssl.theory import Hyper, modes

TITLE = "[T] Fig. 4: T9 fixed points on the parabola"


@dataclass
class ParabolaFlowData:
    """curves: columns eta, p, dpdt; fixed: columns eta, p, kind; the settings; threshold:
    T9's collapse threshold tau^2 / (4 (1 + sigma2))."""

    curves: pd.DataFrame
    fixed: pd.DataFrame
    tau: float
    alpha_p: float
    sigma2: float
    threshold: float


def classify(flow: Callable[[np.ndarray], np.ndarray], x: float, dx: float = 1e-4) -> str:
    """Stability of a zero x of a 1-D flow dx/dt = flow(x) from the sign of flow beside it."""
    left, right = flow(np.array([x - dx, x + dx]))
    if left > 0 > right:
        return STABLE
    if left < 0 < right:
        return UNSTABLE
    return SADDLE


def data(
    etas: tuple[float, ...] = (0.0, 0.1, 0.4),
    tau: float = 1.0,
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    p_range: tuple[float, float] = (-0.3, 1.2),
    points: int = 601,
) -> ParabolaFlowData:
    """[T] Fig. 4: T9's dp/dt on the parabola vs p for each eta (its three regimes).

    The zeros are p = 0 and p-+ of ``modes.fixed_points`` (nan ones dropped); kinds from the
    sign of dp/dt beside each zero (half-stable: the same sign on both sides, e.g. p = 0 at
    eta = 0).
    """
    p = np.linspace(*p_range, points)
    curves, fixed = [], []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, beta=None, eta=eta, sigma2=sigma2)
        curves.append(pd.DataFrame({"eta": eta, "p": p, "dpdt": modes.parabola_flow(h, p, tau)}))
        zeros = {0.0, *(float(r) for r in modes.fixed_points(h, tau) if np.isfinite(r))}
        for root in sorted(zeros):
            kind = classify(lambda x, h=h: modes.parabola_flow(h, x, tau), root)
            fixed.append((eta, root, kind))
    threshold = float(modes.collapse_threshold(Hyper(alpha_p=alpha_p, sigma2=sigma2), tau))
    return ParabolaFlowData(
        pd.concat(curves, ignore_index=True),
        pd.DataFrame(fixed, columns=["eta", "p", "kind"]),
        tau,
        alpha_p,
        sigma2,
        threshold,
    )


def draw(data: ParabolaFlowData) -> Figure:
    """Draw [T] Fig. 4: dp/dt vs p with fixed points (filled stable, open unstable)."""
    curves, fixed = data.curves, data.fixed
    etas = curves.eta.unique()
    with style():
        fig, axes = plt.subplots(
            1, len(etas), figsize=(3.2 * len(etas), 3.2), squeeze=False, layout="constrained"
        )
        for ax, eta in zip(axes[0], etas, strict=True):
            c = curves[curves.eta == eta]
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.plot(c.p, c.dpdt, color=OKABE_ITO[0], label="T9: $dp/dt$ on the parabola")
            for kind, pts in fixed[fixed.eta == eta].groupby("kind", sort=False):
                st = KIND_STYLE[kind]
                ax.plot(pts.p, 0 * pts.p, ls="none", marker="o", mfc=st["mfc"], mec=st["mec"],
                        ms=8, zorder=5, clip_on=False, label=f"{kind} fixed point")  # fmt: skip
            bound = r"$\tau^2/(4(1+\sigma^2))$"
            if eta == 0:
                regime = "$\\eta$ = 0"
            elif eta <= data.threshold:
                regime = f"0 < $\\eta$ = {eta:g} < {bound}"
            else:
                regime = f"$\\eta$ = {eta:g} > {bound}: all collapse"
            ax.set(title=regime, xlabel="$p$", ylabel="$dp/dt$ (per unit flow time)")
        legend_below(fig)
        fig.suptitle(
            r"[T] Fig. 4: T9 fixed points, $dp/dt = p^2(\tau - (1+\sigma^2)p) - \eta p$, "
            f"$\\tau$ = {data.tau:g}, $\\sigma^2$ = {data.sigma2:g}"
        )
    return fig
