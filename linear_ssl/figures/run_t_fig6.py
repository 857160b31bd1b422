"""[T] Fig. 6 on runs: F_hat's top eigenvalues and participation ratio, several runs side
by side (e.g. alpha_p > 1 with a symmetric Wp and no EMA)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.figures.run_labels import (
    RunLike,
    load,
    need,
    run_label,
    run_title,
    settings_lines,
)
from linear_ssl.figures.style import OKABE_ITO, rank_colours, style

TITLE = "[T] Fig. 6 on runs: F spectrum per run"


@dataclass
class RunSpectrum:
    """One run of [T] Fig. 6: its label and title, record steps, the top eigenvalues of
    F_hat (R, k) and its participation ratio (R,)."""

    label: str
    title: str
    steps: np.ndarray
    F_eigvals: np.ndarray
    F_pr: np.ndarray


@dataclass
class TFig6Data:
    runs: list[RunSpectrum]


def data(runs: Sequence[RunLike], labels: Sequence[str] | None = None, top: int = 8) -> TFig6Data:
    """[T] Fig. 6: for each run (label from its config unless given), the `top` largest
    eigenvalues of F_hat and its participation ratio over training steps."""
    runs = [load(r) for r in runs]
    if not runs:
        raise ValueError("[T] Fig. 6 needs at least one run directory")
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs: give one label per run")
    out = []
    for i, run in enumerate(runs):
        need(run, ("F_eigvals", "F_pr"), "[T] Fig. 6")
        sp = run.spectra
        out.append(
            RunSpectrum(
                labels[i] if labels is not None else run_label(run),
                run_title(run),
                sp.steps.copy(),
                np.asarray(sp["F_eigvals"])[:, :top],
                np.asarray(sp["F_pr"], dtype=float),
            )
        )
    return TFig6Data(out)


def draw(data: TFig6Data) -> Figure:
    """Draw [T] Fig. 6: one panel of eigenvalues per run, then the participation ratios."""
    runs = data.runs
    with style():
        fig, axes = plt.subplots(1, len(runs) + 1, figsize=(4.2 * (len(runs) + 1), 4.0),
                                 layout="constrained")  # fmt: skip
        for ax, r in zip(axes[:-1], runs, strict=False):
            for j, colour in enumerate(rank_colours(r.F_eigvals.shape[1])):
                ax.semilogy(r.steps, r.F_eigvals[:, j], color=colour, label=f"j={j + 1}")
            ax.set(ylabel=r"eig($\hat F$)", title=f"{r.label}\n{settings_lines(r.title)}",
                   xlabel="training step")  # fmt: skip
        handles, labels = axes[0].get_legend_handles_labels()
        for i, r in enumerate(runs):
            (line,) = axes[-1].plot(r.steps, r.F_pr, color=OKABE_ITO[i % 7], label=r.label)
            handles.append(line)
            labels.append(f"PR: {r.label}")
        axes[-1].set(ylabel=r"participation ratio of $\hat F$", title="effective rank",
                     xlabel="training step")  # fmt: skip
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
                   title="rank j of eig($\\hat F$); participation ratio per run")  # fmt: skip
        fig.suptitle("[T] Fig. 6 — F spectrum per run (α_p > 1: symmetric Wp without EMA)")
    return fig
