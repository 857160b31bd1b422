"""[T] Fig. 8 (corrected): the skew part of Wp under the unsymmetrised flow T1 (A3 off),
inside range(F) and on null(F)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import Hyper, matrix

#: near and below this the range block's norm is the integrator's error (its atol is 1e-9)
FLOOR = 1e-7

TITLE = "[T] Fig. 8 (corrected): the skew part of Wp inside range(F) and on null(F)"


@dataclass
class SymmetryData:
    """table: tidy columns eta, t, sym (||(Wp + Wp^T)/2||_F), range and null (||B||_F of
    the skew part B on each block) and null_predicted (exp(-eta_p t) null(0)); and the
    settings (beta None: SimSiam; rank: rank of F)."""

    table: pd.DataFrame
    n: int
    rank: int
    beta: float | None
    alpha_p: float


def data(
    etas: tuple[float, ...] = (0.0, 0.01, 0.1),
    beta: float | None = 0.4,
    n: int = 10,
    rank: int | None = None,
    alpha_p: float = 1.0,
    t_end: float = 200.0,
    points: int = 401,
    seed: int = 0,
) -> SymmetryData:
    """[T] Fig. 8 (corrected): the skew part B = (Wp - Wp^T)/2 of Wp under the unsymmetrised
    flow T1 (A3 off), inside range(F) and on null(F) separately.

    W(0) (n x n, N(0, 1/n) entries) has its last n - rank rows zero (rank None: 3n/5), so
    F = W W^T is rank-deficient and null(F) = span(e_rank, ..., e_n) stays so; Wp(0) is
    block-diagonal: I + 0.3 (A - A^T) on range(F) (A with N(0, 1/n) entries: the identity
    plus a skew part, so no mode collapses) and N(0, 1/n) on null(F); Wa(0) = W(0), X = I,
    X' = 0. Under T1 the null block of B decays exactly as exp(-eta_p t) (nothing else
    reaches it: at eta = 0 it stays), the range block vanishes at any eta >= 0 (at eta = 0
    slowly, at the rate of F's smallest eigenvalues).
    """
    rank = 3 * n // 5 if rank is None else rank
    if not 0 < rank < n:
        raise ValueError(f"rank = {rank} must lie strictly between 0 and n = {n}")
    rng = np.random.default_rng(seed)
    W0, Wp0 = rng.normal(0.0, 1.0 / np.sqrt(n), (2, n, n))
    W0[rank:] = 0.0
    Wp0[:rank, rank:] = Wp0[rank:, :rank] = 0.0
    Wp0[:rank, :rank] = np.eye(rank) + 0.3 * (Wp0[:rank, :rank] - Wp0[:rank, :rank].T)
    t = np.linspace(0.0, t_end, points)
    frames = []
    for eta in etas:
        h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
        sol = matrix.integrate(h, W0, Wp0, None if beta is None else W0, t, symmetric=False)
        WpT = np.swapaxes(sol.Wp, -1, -2)
        B = (sol.Wp - WpT) / 2
        null = np.linalg.norm(B[:, rank:, rank:], axis=(-2, -1))
        frames.append(
            pd.DataFrame(
                {
                    "eta": eta,
                    "t": t,
                    "sym": np.linalg.norm((sol.Wp + WpT) / 2, axis=(-2, -1)),
                    "range": np.linalg.norm(B[:, :rank, :rank], axis=(-2, -1)),
                    "null": null,
                    "null_predicted": np.exp(-h.eta_p * t) * null[0],
                }
            )
        )
    return SymmetryData(pd.concat(frames, ignore_index=True), n, rank, beta, alpha_p)


def draw(data: SymmetryData) -> Figure:
    """Draw [T] Fig. 8 (corrected): skew part of Wp inside range(F) (solid) and on null(F)
    (dashed; dotted: exp(-eta_p t)), log scale, down to ``FLOOR``."""
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
        for i, (eta, g) in enumerate(data.table.groupby("eta")):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(
                g.t,
                g["range"].where(g["range"] > FLOOR),
                color=colour,
                label=f"$\\eta$ = {eta:g}: skew in range(F)",
            )
            ax.plot(
                g.t, g["null"], color=colour, ls="--", label=f"$\\eta$ = {eta:g}: skew on null(F)"
            )
            label = r"$e^{-\eta_p t}$ (T1)" if i == 0 else None
            ax.plot(g.t, g["null_predicted"], color="k", ls=":", lw=0.8, label=label)
        ax.set(yscale="log", xlabel="flow time $t$", ylabel=r"$\|B\|_F$ of the block")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        beta = "SimSiam" if data.beta is None else f"$\\beta$ = {data.beta:g}"
        ax.set_title(
            f"[T] Fig. 8 (corrected): unsymmetrised T1, n = {data.n}, rank F = {data.rank}, "
            f"$\\alpha_p$ = {data.alpha_p:g}, {beta}\nthe skew part B of $W_p$ vanishes inside "
            "range(F) at any $\\eta$; on null(F) it decays as $e^{-\\eta_p t}$ (dotted)"
        )
    return fig
