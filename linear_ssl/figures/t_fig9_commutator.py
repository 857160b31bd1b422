"""[T] Fig. 9: the commutator [F, Wp] and lambda_min(K) of T6 on the symmetrised flow T5."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, legend_below, style
from linear_ssl.theory import Hyper, matrix

TITLE = "[T] Fig. 9: the commutator [F, Wp] of T6"


@dataclass
class CommutatorData:
    """table: tidy columns eta, beta (nan: SimSiam), t, commutator, lambda_min; settings."""

    table: pd.DataFrame
    n: int
    init_std: float
    alpha_p: float


def data(
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
) -> CommutatorData:
    """[T] Fig. 9: ||[F, Wp]||_F and lambda_min(K) (T6) along the symmetrised flow T5.

    settings: (eta, beta) pairs; beta None is SimSiam (tau = 1), a beta starts from
    Wa(0) = 0 (tau small early). One draw of W(0) and symmetric Wp(0) (i.i.d. N(0,
    init_std^2) entries, Wp symmetrised) serves every setting; X = I, X' = 0. tau(t) for K is
    the A1 fit tr(Wa W^T) / tr(W W^T).
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
    return CommutatorData(pd.concat(frames, ignore_index=True), n, init_std, alpha_p)


def draw(data: CommutatorData) -> Figure:
    """Draw [T] Fig. 9: ||[F, Wp]||_F (log) and lambda_min(K) vs t for each (eta, beta)."""
    with style():
        fig, (ax, axk) = plt.subplots(1, 2, figsize=(9, 4.0), layout="constrained")
        groups = data.table.groupby(["eta", "beta"], dropna=False, sort=False)
        for i, ((eta, beta), g) in enumerate(groups):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ls = "-" if np.isnan(beta) else "--"
            target = (
                r"SimSiam ($\tau$ = 1)" if np.isnan(beta) else f"$\\beta$ = {beta:g}, $W_a(0)$ = 0"
            )
            label = f"$\\eta$ = {eta:g}, {target}"
            ax.plot(g.t, g.commutator, color=colour, ls=ls, label=label)
            axk.plot(g.t, g.lambda_min, color=colour, ls=ls)
        ax.set(yscale="log", xlabel="flow time $t$", ylabel=r"$\|[F, W_p]\|_F$")
        ax.set_title(r"T6 commutator: grows while $\lambda_{\min}(K)$ < 0")
        axk.axhline(0.0, color="0.5", lw=0.8)
        axk.set(
            xlabel="flow time $t$",
            ylabel=r"$\lambda_{\min}(K)$",
            title=r"T6: $K$ with $\tau$ fitted as tr($W_aW^T$)/tr($WW^T$)",
        )
        legend_below(fig, ncol=3)
        fig.suptitle(
            f"[T] Fig. 9: symmetrised flow T5, n = {data.n}, init std {data.init_std:g}, "
            f"$\\alpha_p$ = {data.alpha_p:g}, X = I: small $\\eta$ and large $\\tau$ "
            "let the commutator grow"
        )
    return fig
