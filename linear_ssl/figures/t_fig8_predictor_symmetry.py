"""[T] Fig. 8: the skew part of Wp under the unsymmetrised flow T1 (A3 off)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import Hyper, matrix

TITLE = "[T] Fig. 8: symmetric and skew parts of Wp"


@dataclass
class SymmetryData:
    """table: tidy columns eta, t, sym, skew; and the settings (beta None: SimSiam)."""

    table: pd.DataFrame
    n: int
    beta: float | None
    alpha_p: float


def data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    beta: float | None = 0.4,
    n: int = 10,
    alpha_p: float = 1.0,
    t_end: float = 200.0,
    points: int = 401,
    seed: int = 0,
) -> SymmetryData:
    """[T] Fig. 8: ||sym(Wp)||_F and ||skew(Wp)||_F along T1 with no symmetrisation (A3 off).

    W(0), Wp(0) (n x n) have i.i.d. N(0, 1/n) entries (Wp(0) far from symmetric), Wa(0) =
    W(0), X = I, X' = 0. sym = (Wp + Wp^T)/2, skew = (Wp - Wp^T)/2.
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
    return SymmetryData(pd.concat(frames, ignore_index=True), n, beta, alpha_p)


def draw(data: SymmetryData) -> Figure:
    """Draw [T] Fig. 8: symmetric (solid) and skew (dashed) norms of Wp vs t, log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
        for i, (eta, g) in enumerate(data.table.groupby("eta")):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(g.t, g["sym"], color=colour, label=f"$\\eta$ = {eta:g}: symmetric part")
            ax.plot(g.t, g["skew"], color=colour, ls="--", label=f"$\\eta$ = {eta:g}: skew part")
        ax.set(yscale="log", xlabel="flow time $t$", ylabel=r"$\|\cdot\|_F$ of the part of $W_p$")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        beta = "SimSiam" if data.beta is None else f"$\\beta$ = {data.beta:g}"
        ax.set_title(
            f"[T] Fig. 8: unsymmetrised flow T1, n = {data.n}, $\\alpha_p$ = {data.alpha_p:g}, "
            f"{beta}\nthe skew part of $W_p$ vanishes for $\\eta$ > 0 (it freezes at $\\eta$ = 0)"
        )
    return fig
