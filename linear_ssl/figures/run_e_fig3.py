"""[E] Fig. 3 on runs (E8): the normalised spectrum of the online-latent correlation F_hat,
for one or two runs (e.g. Newton-Schulz vs DirectCopy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.figures.run_labels import RunLike, load, need, run_label, run_title, settings_lines
from linear_ssl.figures.style import rank_colours, style
from linear_ssl.runs import Run

TITLE = "[E] Fig. 3 on runs: normalised spectrum of F_hat (E8)"


@dataclass
class NormalisedSpectrum:
    """One run of [E] Fig. 3: label, title, record steps, eig(F_hat) / max eig (R, d)."""

    label: str
    title: str
    steps: np.ndarray
    spectrum: np.ndarray


@dataclass
class EFig3Data:
    runs: list[NormalisedSpectrum]


def data(runs: RunLike | Sequence[RunLike], labels: Sequence[str] | None = None) -> EFig3Data:
    """[E] Fig. 3 (E8): F_hat's eigenvalues divided by the largest, per record step, for one
    or two runs."""
    runs = [runs] if isinstance(runs, (Run, str, Path)) else list(runs)
    if not 1 <= len(runs) <= 2:
        raise ValueError(f"[E] Fig. 3 takes one or two runs, not {len(runs)}")
    out = []
    for i, run in enumerate(load(r) for r in runs):
        need(run, ("F_spectrum_normalised",), "[E] Fig. 3")
        out.append(
            NormalisedSpectrum(
                labels[i] if labels is not None else run_label(run),
                run_title(run),
                run.spectra.steps.copy(),
                np.asarray(run.spectra["F_spectrum_normalised"], dtype=float),
            )
        )
    return EFig3Data(out)


def draw(data: EFig3Data) -> Figure:
    """Draw [E] Fig. 3: one panel per run, one line per rank j (colour bar)."""
    runs = data.runs
    with style():
        fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.4),
                                 layout="constrained", squeeze=False)  # fmt: skip
        for ax, r in zip(axes[0], runs, strict=False):
            spec = np.where(r.spectrum > 0, r.spectrum, np.nan)
            d = spec.shape[1]
            for j, colour in enumerate(rank_colours(d)):
                ax.semilogy(r.steps, spec[:, j], color=colour, lw=0.8)
            title = f"{r.label}\n{settings_lines(r.title)}"
            ax.set(ylabel=r"eig($\hat F$) / max eig", title=title, xlabel="training step")
            sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(1, d))
            fig.colorbar(sm, ax=ax, label="rank j")
        fig.suptitle("[E] Fig. 3 — normalised spectrum of the online-latent correlation (E8)")
    return fig
