"""The rank, the figure no paper has: the RankMe(t) (E9) the flow seeded from a run
(``linear_ssl.bridge``) predicts, over the run's (from F_hat's compared modes, and the
recorded batch RankMe of the projector features), with the step each mode is lost."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.bridge import Comparison, compare_run
from linear_ssl.figures.run_labels import RunLike, run_title
from linear_ssl.figures.style import OKABE_ITO, legend_below, style

TITLE = "Rank: the RankMe(t) (E9) a seeded flow predicts, over the run's"


@dataclass
class RankmeData:
    """``Comparison.rank`` (step, rankme_run, rankme_flow, projector_rankme), the steps
    each mode is lost (mode, lost_step_flow, lost_step_run; nan: kept), the flow's name,
    its seed step and the lost threshold."""

    title: str
    flow: str
    t0_step: int
    rank: pd.DataFrame
    lost: pd.DataFrame
    threshold: float


def data(comparison: Comparison | RunLike) -> RankmeData:
    """E9 from the comparison (``compare_run`` unless given a Comparison)."""
    c = comparison if isinstance(comparison, Comparison) else compare_run(comparison)
    return RankmeData(
        run_title(c.run),
        c.flow,
        c.seed.step,
        c.rank,
        c.per_mode[["mode", "lost_step_flow", "lost_step_run"]],
        c.agreement["lost_threshold"],
    )


def draw(data: RankmeData) -> Figure:
    """Draw RankMe(t), run and flow (and the batch RankMe when recorded); a vertical line
    where the flow loses a mode, a cross where the run did; one legend under the axes."""
    rank, lost = data.rank, data.lost
    with style():
        fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
        ax.plot(rank["step"], rank["rankme_run"], "-o", ms=3, color=OKABE_ITO[0], label="run")
        ax.plot(rank["step"], rank["rankme_flow"], "--", color=OKABE_ITO[1], label="flow")
        if np.any(np.isfinite(rank["projector_rankme"])):
            ax.plot(
                rank["step"], rank["projector_rankme"], ":", color=OKABE_ITO[2],
                label="run, batch projector features",
            )  # fmt: skip
        for i, step in enumerate(lost["lost_step_flow"].dropna()):
            label = f"flow loses a mode (s_j < {data.threshold:g} max s)" if i == 0 else None
            ax.axvline(step, color="grey", lw=0.8, ls="-.", label=label)
        for i, step in enumerate(lost["lost_step_run"].dropna()):
            label = "run lost a mode" if i == 0 else None
            ax.plot([step], [1.0], "x", color="black", label=label)
        ax.set(xlabel="training step", ylabel="RankMe (E9)", title="rank: measured vs flow")
        legend_below(fig, ncol=2)
        fig.suptitle(f"Flow ({data.flow}) seeded at step {data.t0_step} — {data.title}")
    return fig
