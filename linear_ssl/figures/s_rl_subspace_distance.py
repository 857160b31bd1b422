"""Self-predictive RL (theory.md S2-S8): subspace distance over time for each variant.

`data(**settings) -> RLSubspaceData` integrates every variant from one batch of random
orthonormal starts; `draw(data) -> Figure` draws the median and interquartile band of the
distance (E7: sine of the largest principal angle) to the subspace theory predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.diagnostics import subspace_distance
from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import rl

__all__ = ["TITLE", "RLSubspaceData", "data", "draw"]

TITLE = "Self-predictive RL (S2-S8): subspace distance over time per variant"

PANELS = {
    "psd": "symmetric PSD T: top-k eigen-subspace (S5)",
    "indefinite": "indefinite T: nearest of the k + 1 stable spans (S5)",
    "bidirectional": "non-symmetric T: top-k singular subspaces (S7)",
    "actions": "actions: top-k eigen-subspace of $T_\\pi$ (S8)",
}


@dataclass(frozen=True)
class RLSubspaceData:
    """Tidy distances: columns panel, variant, init, t, distance; and the settings."""

    distances: pd.DataFrame
    n: int
    k: int
    inits: int
    beta: float


def _top(T: np.ndarray, k: int) -> np.ndarray:
    w, V = np.linalg.eigh(T)
    return V[:, np.argsort(-w)[:k]]


def _rows(panel, variant, t, Phi, reference) -> list[tuple]:
    """Distances of Phi (len(t), B, n, k) to reference(Phi_b) -> list of candidate bases."""
    rows = []
    for b in range(Phi.shape[1]):
        for i, ti in enumerate(t):
            if np.all(np.isfinite(Phi[i, b])):
                d = min(subspace_distance(Phi[i, b], R) for R in reference)
                rows.append((panel, variant, b, ti, d))
    return rows


def data(
    n: int = 12,
    k: int = 3,
    inits: int = 8,
    t_end: float = 2000.0,
    points: int = 31,
    beta: float = 0.5,
    rtol: float = 1e-6,
    seed: int = 0,
) -> RLSubspaceData:
    """Integrate S2 (stop-gradient, EMA), S6 (no stop-gradient), S7 and S8 on random MDPs."""
    t = np.concatenate([[0.0], np.geomspace(0.1, t_end, points - 1)])
    Phi0 = np.linalg.qr(np.random.default_rng(seed).normal(size=(inits, n, k)))[0]
    Psi0 = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(inits, n, k)))[0]
    rows: list[tuple] = []
    T = rl.random_mdp(n, "symmetric_psd", seed=seed)
    top = [_top(T, k)]
    for variant, kw in (("stop-gradient", {}), (f"EMA, beta = {beta:g}", {"beta": beta})):
        target = "ema" if kw else "stopgrad"
        sol = rl.integrate(T, Phi0, t, target, rtol=rtol, **kw)
        rows += _rows("psd", variant, t, sol.Phi, top)
    # without it a direction of Phi can die (Phi^T Phi singular, S6): stop such runs early
    sol = rl.integrate(T, Phi0, t, "none", rtol=rtol, max_steps=400, on_failure="ignore")
    rows += _rows("psd", "no stop-gradient", t, sol.Phi, top)
    # indefinite: a symmetric chain without the lazy half; its stable spans mix both ends
    T = rl.random_mdp(n, "symmetric", seed=seed)
    w, V = np.linalg.eigh(T)
    spans = [V[:, list(s)] for s in rl.stable_spans(w, k)]
    rows += _rows("indefinite", "stop-gradient", t, rl.integrate(T, Phi0, t, rtol=rtol).Phi, spans)
    # non-symmetric: one-sided S2 cannot find the singular subspaces, S7 does
    T = rl.random_mdp(n, "stochastic", seed=seed)
    U, _, Wt = np.linalg.svd(T)
    sol = rl.integrate_bidirectional(T, Phi0, Psi0, t, rtol=rtol)
    rows += _rows("bidirectional", "bidirectional Phi (left)", t, sol.Phi, [U[:, :k]])
    rows += _rows("bidirectional", "bidirectional Psi (right)", t, sol.Psi, [Wt[:k].T])
    one_sided = rl.integrate(T, Phi0, t, rtol=rtol, on_failure="ignore").Phi
    rows += _rows("bidirectional", "one-sided Phi (left)", t, one_sided, [U[:, :k]])
    # actions: BYOL-Pi finds T_pi's eigen-subspace; AC and VAR weigh the actions apart
    Ts = np.stack([rl.random_mdp(n, "symmetric_psd", seed=seed + 10 + a) for a in range(3)])
    pi = np.full(3, 1 / 3)
    top = [_top(np.tensordot(pi, Ts, axes=1), k)]
    for objective, name in (("pi", "BYOL-Pi"), ("ac", "BYOL-AC"), ("var", "BYOL-VAR")):
        sol = rl.integrate_actions(Ts, pi, Phi0, t, objective, rtol=rtol)
        rows += _rows("actions", name, t, sol.Phi, top)
    df = pd.DataFrame(rows, columns=["panel", "variant", "init", "t", "distance"])
    return RLSubspaceData(df, n, k, inits, beta)


def draw(d: RLSubspaceData) -> Figure:
    """Four panels: median (IQR band) of the distance against t, one curve per variant."""
    with style():
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
        for ax, (panel, title) in zip(axes, PANELS.items(), strict=True):
            sub = d.distances[d.distances.panel == panel]
            for i, (variant, g) in enumerate(sub.groupby("variant", sort=False)):
                q = g[g.t > 0].groupby("t").distance.quantile([0.25, 0.5, 0.75]).unstack()
                colour = OKABE_ITO[i % len(OKABE_ITO)]
                ax.plot(q.index, q[0.5], color=colour, label=variant)
                ax.fill_between(q.index, q[0.25], q[0.75], color=colour, alpha=0.2, lw=0)
            ax.set(xscale="log", xlabel="$t$", title=title, ylim=(-0.02, 1.02))
            ax.legend(loc="lower left")
        axes[0].set_ylabel("subspace distance (E7)")
        fig.suptitle(
            f"Self-predictive RL flows at the optimal predictor: n = {d.n} states, k = {d.k} "
            f"features, median and IQR over {d.inits} random orthonormal starts"
        )
        fig.tight_layout()
    return fig
