"""[E] Fig. 1 on a run (E4): stable rank and trace of the normalised predictor."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.figures.run_labels import RunLike, load, need, run_title
from linear_ssl.figures.style import OKABE_ITO, style

TITLE = "[E] Fig. 1 on a run: stable rank and trace of Wp / rho(Wp) (E4)"


@dataclass
class EFig1Data:
    """Per record step: the stable rank and the trace of Wp / rho(Wp) (E4)."""

    title: str
    steps: np.ndarray
    stable_rank: np.ndarray
    trace: np.ndarray


def data(run: RunLike) -> EFig1Data:
    """[E] Fig. 1 (E4): the run's records of E_stable_rank and E_trace."""
    run = load(run)
    need(run, ("E_stable_rank", "E_trace"), "[E] Fig. 1")
    sp = run.spectra
    return EFig1Data(
        run_title(run),
        sp.steps.copy(),
        np.asarray(sp["E_stable_rank"], dtype=float),
        np.asarray(sp["E_trace"], dtype=float),
    )


def draw(data: EFig1Data) -> Figure:
    """Draw [E] Fig. 1: stable rank and normalised trace over training steps."""
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
        axes[0].plot(data.steps, data.stable_rank, color=OKABE_ITO[0])
        axes[0].set(ylabel=r"$\|P\|_F^2 / \|P\|_2^2$", title="stable rank of the predictor")
        axes[1].plot(data.steps, data.trace, color=OKABE_ITO[1])
        axes[1].set(ylabel=r"tr($P / \rho(P)$)", title="trace of the normalised predictor")
        for ax in axes:
            ax.set_xlabel("training step")
        fig.suptitle(f"[E] Fig. 1 — {data.title}")
    return fig
