"""[E] Fig. 2 analogue on the linear model: the predictor's distance to orthogonality (E5)
and its quasi-orthogonality (E3) against the EMA rate."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl import diagnostics, predictors
from linear_ssl.figures.style import OKABE_ITO, legend_below, style
from linear_ssl.theory import Hyper, matrix

TITLE = "[E] Fig. 2 analogue: E5 and E3 of the predictor vs the EMA rate"


@dataclass
class PolarDistanceData:
    """table: tidy columns beta, run, t, predictor ("LRP" | "trained"), polar_distance (E5),
    quasi_orthogonality (E3), coo_condition (lambda_min / lambda_max of C_oo); settings."""

    table: pd.DataFrame
    n1: int
    n2: int
    runs: int
    alpha_p: float
    eta: float
    init_std: float
    wp_init: float


def random_covariance(rng: np.random.Generator, eigenvalues: np.ndarray) -> np.ndarray:
    """A symmetric PSD matrix with the given eigenvalues in a uniformly random basis."""
    Q, _ = np.linalg.qr(rng.normal(size=(eigenvalues.size, eigenvalues.size)))
    return (Q * eigenvalues) @ Q.T


def data(
    betas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0),
    times: tuple[float, ...] = (10.0, 50.0, 200.0),
    n1: int = 8,
    n2: int = 4,
    runs: int = 5,
    init_std: float = 0.1,
    wp_init: float = 0.5,
    alpha_p: float = 1.0,
    eta: float = 0.0,
    lrp_reg: float = 0.0,
    seed: int = 0,
) -> PolarDistanceData:
    """[E] Fig. 2 analogue on the linear model: E5 and E3 of the predictor vs the EMA rate.

    T1 (BYOL, Wa(0) = W(0)) with non-isotropic X (eigenvalues 2 ... 0.2) and X' (1 ... 0.1)
    in independent random bases, so that F and the optimal predictor need not commute;
    W(0) with i.i.d. N(0, init_std^2) entries, Wp(0) = wp_init I + N(0, 0.01) noise (a
    random small Wp(0) has negative modes, which collapse: T9). At each time of `times`, two
    predictors: "LRP" = R3 on the exact C_oo = W(X+X')W^T and C_to = Wa X W^T (ridge
    `lrp_reg`; with eta > 0 weight decay collapses unused directions of W and C_oo turns
    singular, so the default is eta = 0), and "trained" = the flow's own Wp. coo_condition
    is near 0 where a mode of W is collapsing and LRP is ill-determined.
    """
    rng = np.random.default_rng(seed)
    X = random_covariance(rng, np.linspace(2.0, 0.2, n1))
    Xp = random_covariance(rng, np.linspace(1.0, 0.1, n1))
    t = np.array([0.0, *times])
    rows = []
    for run in range(runs):
        r = np.random.default_rng([seed, run])
        W0 = r.normal(0.0, init_std, (n2, n1))
        Wp0 = wp_init * np.eye(n2) + r.normal(0.0, 0.1, (n2, n2))
        for beta in betas:
            h = Hyper(alpha_p=alpha_p, beta=beta, eta=eta)
            sol = matrix.integrate(h, W0, Wp0, W0, t, X=X, Xp=Xp)
            for k in range(1, t.size):
                lrp = predictors.lrp(sol.C_oo[k], sol.C_to[k], reg=lrp_reg)
                eig = np.linalg.eigvalsh(sol.C_oo[k])
                for name, P in (("LRP", lrp), ("trained", sol.Wp[k])):
                    e5, e3 = diagnostics.polar_distance(P), diagnostics.quasi_orthogonality(P)
                    rows.append((beta, run, t[k], name, e5, e3, eig[0] / eig[-1]))
    columns = ["beta", "run", "t", "predictor", "polar_distance", "quasi_orthogonality",
               "coo_condition"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    return PolarDistanceData(table, n1, n2, runs, alpha_p, eta, init_std, wp_init)


def draw(data: PolarDistanceData) -> Figure:
    """Draw [E] Fig. 2 analogue: median (IQR band) of E5 and E3 vs beta, LRP at each time
    (solid lines) and the trained Wp at the last time (open black markers, no line: at
    eta = 0 it sits on LRP's last curve, which stays visible under it)."""
    df = data.table
    last = df.t.max()
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.0), layout="constrained")
        metrics = (
            ("polar_distance", "E5: polar distance"),
            ("quasi_orthogonality", "E3: quasi-orthogonality"),
        )
        for ax, (metric, name) in zip(axes, metrics, strict=True):
            for i, t in enumerate(sorted(df.t.unique())):
                g = df[(df.predictor == "LRP") & (df.t == t)].groupby("beta")[metric]
                med, lo, hi = g.median(), g.quantile(0.25), g.quantile(0.75)
                colour = OKABE_ITO[i % len(OKABE_ITO)]
                ax.plot(med.index, med.values, marker="o", ms=3, lw=2.2 if t == last else 1.4,
                        color=colour, label=f"LRP (R3), $t$ = {t:g}")  # fmt: skip
                ax.fill_between(med.index, lo.values, hi.values, color=colour, alpha=0.15, lw=0)
            trained = df[(df.predictor == "trained") & (df.t == last)].groupby("beta")[metric]
            med = trained.median()
            ax.plot(med.index, med.values, ls="none", marker="o", ms=7, mfc="none", mec="black",
                    mew=1.2, zorder=5, label=f"trained $W_p$, $t$ = {last:g}")  # fmt: skip
            ax.set(
                xscale="log",
                xlabel=r"EMA rate $\beta$ (larger: target closer to $W$)",
                ylabel=name,
                title=name,
            )
        legend_below(fig)
        fig.suptitle(
            f"[E] Fig. 2 analogue: linear BYOL T1, $n_1$ = {data.n1}, $n_2$ = {data.n2}, "
            f"non-isotropic X, X', $\\eta$ = {data.eta:g}, $\\alpha_p$ = {data.alpha_p:g}, "
            f"W(0) std {data.init_std:g}, $W_p(0) \\approx$ {data.wp_init:g} I\n"
            f"the predictor moves away from orthogonal as the EMA loosens (small $\\beta$); "
            f"median and IQR of {data.runs} runs"
        )
    return fig
