"""[T] Fig. 5: T7 simulated over a weight-decay (eta) sweep and an EMA (beta) sweep, with
lambda_min(K) of T6."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import Hyper, modes

TITLE = "[T] Fig. 5: T7 over an eta sweep and an EMA sweep"

#: [T] Fig. 5's sweeps and modes, shared with N2's counterpart (n_fig5_mode_sweeps)
ETAS: tuple[float, ...] = (0.0, 0.01, 0.04, 0.1)
BETAS: tuple[float | None, ...] = (0.04, 0.1, 0.4, 1.0, None)
P0: tuple[float, ...] = (-0.1, 0.0, 0.05, 0.1, 0.2, 0.4)


@dataclass
class ModeSweepsData:
    """table: tidy columns sweep, eta, beta, t, mode, p, s, tau, K; and the settings."""

    table: pd.DataFrame
    alpha_p: float
    sigma2: float
    step: float
    s0: float


def sweep_settings(
    etas: tuple[float, ...], betas: tuple[float | None, ...], beta: float | None, eta: float
) -> list[tuple[str, float, float | None]]:
    """[T] Fig. 5's two sweeps as (sweep, eta, beta): eta at EMA rate beta, beta at eta."""
    return [("eta", e, beta) for e in etas] + [("beta", eta, b) for b in betas]


def sweep_frame(
    sweep: str, eta: float, beta: float | None, t: np.ndarray, **states: np.ndarray
) -> pd.DataFrame:
    """A tidy frame of one sweep setting: states (len(t), n_modes) flattened per (t, mode)."""
    n_t, n_m = next(iter(states.values())).shape
    columns = {"sweep": sweep, "eta": eta, "beta": np.nan if beta is None else beta}
    columns |= {"t": np.repeat(t, n_m), "mode": np.tile(np.arange(n_m), n_t)}
    return pd.DataFrame(columns | {k: v.ravel() for k, v in states.items()})


#: one sweep setting's flow: (Hyper, p0, s0, t) -> (the solver's t, named states (len(t), modes))
ModeSolver = Callable[
    [Hyper, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]
]


def sweep_table(
    solve: ModeSolver,
    etas: tuple[float, ...],
    betas: tuple[float | None, ...],
    beta: float | None,
    eta: float,
    p0: tuple[float, ...],
    s0: float,
    alpha_p: float,
    sigma2: float,
    t_end: float,
    step: float,
) -> pd.DataFrame:
    """[T] Fig. 5's sweeps as one tidy table: `solve` run at every setting of
    sweep_settings, from modes p0 with s(0) = s0 on the grid 0, step, ..., t_end."""
    t = np.arange(0.0, t_end + step / 2, step)
    p0_arr = np.asarray(p0, dtype=float)
    frames = []
    for sweep, e, b in sweep_settings(etas, betas, beta, eta):
        h = Hyper(alpha_p=alpha_p, beta=b, eta=e, sigma2=sigma2)
        t_sol, states = solve(h, p0_arr, np.full_like(p0_arr, s0), t)
        frames.append(sweep_frame(sweep, e, b, t_sol, **states))
    return pd.concat(frames, ignore_index=True)


def sweep_rows(
    table: pd.DataFrame,
) -> Iterator[tuple[int, str, pd.DataFrame, list[tuple[str, str, pd.DataFrame]]]]:
    """The figure rows of a sweep table: (row, sweep, its rows, [(colour, label, one
    setting's rows)]), row 0 the eta sweep and row 1 the beta sweep."""
    for row, sweep in enumerate(("eta", "beta")):
        sub = table[table.sweep == sweep]
        groups = sub.groupby(sweep, sort=False, dropna=False)
        settings = [
            (OKABE_ITO[i % len(OKABE_ITO)], sweep_label(sweep, value), g)
            for i, (value, g) in enumerate(groups)
        ]
        yield row, sweep, sub, settings


def sweep_label(sweep: str, value: float) -> str:
    """The legend label of one sweep value (beta NaN: SimSiam)."""
    if sweep == "eta":
        return f"$\\eta$ = {value:g}"
    return "SimSiam" if np.isnan(value) else f"$\\beta$ = {value:g}"


def sweep_heading(sweep: str, table: pd.DataFrame) -> str:
    """A sweep's panel heading, naming the setting it holds fixed (the table's rows)."""
    if sweep == "eta":
        return f"weight decay sweep ($\\beta$ = {table.beta.iloc[0]:g})"
    return f"EMA sweep ($\\eta$ = {table.eta.iloc[0]:g})"


def data(
    etas: tuple[float, ...] = ETAS,
    betas: tuple[float | None, ...] = BETAS,
    beta: float = 0.4,
    eta: float = 0.04,
    p0: tuple[float, ...] = P0,
    s0: float = 0.02,
    alpha_p: float = 1.0,
    sigma2: float = 0.0,
    t_end: float = 60.0,
    step: float = 0.01,
) -> ModeSweepsData:
    """[T] Fig. 5: T7 from several modes (p0 spread, s(0) = s0, tau(0) = 1) on a grid of `step`.

    Sweep "eta" varies eta at EMA rate `beta`; sweep "beta" varies beta at weight decay `eta`
    (None: SimSiam). K is the mode's entry of T6's K (the F/Wp eigenbasis makes K diagonal:
    K_j = (1+sigma2)[alpha_p s_j/2 + p_j^2] - tau_j p_j + 3 eta/2); lambda_min(K) = min_j K_j.
    """

    def solve(h: Hyper, p0: np.ndarray, s0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict]:
        sol = modes.integrate(h, p0, s0, t)
        K = modes.k_eigenvalue(h, sol.p, sol.s, sol.tau)
        return sol.t, dict(p=sol.p, s=sol.s, tau=sol.tau, K=K)

    settings = (etas, betas, beta, eta, p0, s0, alpha_p, sigma2, t_end, step)
    return ModeSweepsData(sweep_table(solve, *settings), alpha_p, sigma2, step, s0)


def draw(data: ModeSweepsData) -> Figure:
    """Draw [T] Fig. 5: rows eta sweep / beta sweep; columns p_j(t), s_j(t), lambda_min(K)(t)."""
    with style():
        fig, axes = plt.subplots(2, 3, figsize=(10, 5.8), sharex=True, layout="constrained")
        for row, sweep, sub, settings in sweep_rows(data.table):
            for colour, label, g in settings:
                for _, m in g.groupby("mode"):
                    axes[row, 0].plot(m.t, m.p, color=colour, lw=1)
                    axes[row, 1].plot(m.t, m.s, color=colour, lw=1)
                lam = g.groupby("t").K.min()
                axes[row, 2].plot(lam.index, lam.values, color=colour, label=label)
            axes[row, 0].set_title(f"{sweep_heading(sweep, sub)}: $p_j$")
            axes[row, 1].set_title("$s_j$")
            axes[row, 2].set_title(r"$\lambda_{\min}(K)$ (T6)")
            axes[row, 2].axhline(0.0, color="0.5", lw=0.8)
            axes[row, 0].set_ylabel("$p_j$")
            axes[row, 1].set_ylabel("$s_j$")
            axes[row, 2].set_ylabel(r"$\min_j K_j$")
            # beside its row, off the data: the sweep's values share one colour per setting
            axes[row, 2].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        for ax in axes[1]:
            ax.set_xlabel("flow time $t$")
        fig.suptitle(
            f"[T] Fig. 5: T7 simulated (grid step {data.step:g}), $\\alpha_p$ = "
            f"{data.alpha_p:g}, $\\sigma^2$ = {data.sigma2:g}, "
            f"$s_j(0)$ = {data.s0:g}, $\\tau_j(0)$ = 1; one line per mode $j$"
        )
    return fig
