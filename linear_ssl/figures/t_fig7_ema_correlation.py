"""[T] Fig. 7: validity of A1 (Wa = tau W) on the full matrix flow T1."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, legend_below, style
from linear_ssl.theory import Hyper, matrix

TITLE = "[T] Fig. 7: corr(Wa, W) on the matrix flow (A1)"


@dataclass
class EmaCorrelationData:
    """table: tidy columns eta, beta, run, t, corr (nan at t = 0, where Wa = 0); settings."""

    table: pd.DataFrame
    n: int
    init_std: float
    runs: int
    alpha_p: float


def entry_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of the entries of A[k] and B[k], for each leading index k."""
    a = A.reshape(A.shape[0], -1)
    b = B.reshape(B.shape[0], -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / denom, np.nan)


def data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    betas: tuple[float, ...] = (0.05, 0.2, 1.0),
    n: int = 20,
    init_std: float = 0.03,
    runs: int = 10,
    alpha_p: float = 1.0,
    t_end: float = 50.0,
    points: int = 101,
    seed: int = 0,
) -> EmaCorrelationData:
    """[T] Fig. 7: corr(Wa(t), W(t)) over the entries, on T1 with X = I, X' = 0, Wa(0) = 0.

    W(0), Wp(0) (n x n) have i.i.d. N(0, init_std^2) entries; `runs` seeds per setting.
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
                corr = entry_correlation(sol.Wa, sol.W)
                rows.append(
                    pd.DataFrame({"eta": eta, "beta": beta, "run": run, "t": t, "corr": corr})
                )
    return EmaCorrelationData(pd.concat(rows, ignore_index=True), n, init_std, runs, alpha_p)


def draw(data: EmaCorrelationData) -> Figure:
    """Draw [T] Fig. 7: mean +- std over runs of corr(Wa, W) vs t; one panel per eta."""
    df = data.table
    etas = df.eta.unique()
    with style():
        fig, axes = plt.subplots(1, len(etas), figsize=(3.3 * len(etas), 3.2), sharey=True,
                                 squeeze=False, layout="constrained")  # fmt: skip
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
        legend_below(fig)
        fig.suptitle(
            f"[T] Fig. 7: A1 holds on the matrix flow T1 (n = {data.n}, init std "
            f"{data.init_std:g}, $W_a(0)$ = 0, X = I, X' = 0); mean $\\pm$ std of {data.runs} runs"
        )
    return fig
