"""[T] Fig. 2 measured on a run: log eig(F_hat), eig(Wp), cos(u_j, Wp u_j) along F_hat's
eigenvectors and the asymmetry of Wp, over training."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.bridge import report
from linear_ssl.figures.run_labels import RunLike, load, need, run_title
from linear_ssl.figures.style import OKABE_ITO, rank_colours, style

TITLE = "[T] Fig. 2 on a run: spectra, alignment and asymmetry of Wp"


@dataclass
class TFig2Data:
    """Per record step (R,): the `top` largest eigenvalues of F_hat (log10, (R, k)), the
    real parts of Wp's eigenvalues, cos(u_j, Wp u_j) (descending j) and the asymmetry;
    ``built_in``: "by construction (DirectPred)" when the run's predictor makes the
    alignment and the symmetry so (``bridge.report.built_in``), else "" (theory.md section 8)."""

    title: str
    steps: np.ndarray
    log10_F_eigvals: np.ndarray
    Wp_eigvals: np.ndarray
    alignment: np.ndarray
    asymmetry: np.ndarray
    built_in: str = ""


def data(run: RunLike, top: int = 10) -> TFig2Data:
    """[T] Fig. 2: the run's records of F_eigvals, Wp_eigvals_real, alignment, asymmetry."""
    run = load(run)
    need(run, ("F_eigvals", "Wp_eigvals_real", "alignment", "asymmetry"), "[T] Fig. 2")
    sp = run.spectra
    k = min(top, sp["F_eigvals"].shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = np.log10(np.where(sp["F_eigvals"] > 0, sp["F_eigvals"], np.nan))
    return TFig2Data(
        run_title(run),
        sp.steps.copy(),
        log_f[:, :k],
        np.asarray(sp["Wp_eigvals_real"])[:, :k],
        np.asarray(sp["alignment"])[:, :k],
        np.asarray(sp["asymmetry"], dtype=float),
        report.construction_label(run),
    )


def draw(data: TFig2Data) -> Figure:
    """Draw [T] Fig. 2: four panels over training steps; the rank legend under them."""
    with style():
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
        k = data.log10_F_eigvals.shape[1]
        colours = rank_colours(k)
        panels = [
            (data.log10_F_eigvals, r"$\log_{10}$ eig($\hat F$)", "eigenvalues of $\\hat F$"),
            (data.Wp_eigvals, r"Re eig($W_p$)", "eigenvalues of $W_p$"),
            (data.alignment, r"cos($u_j$, $W_p u_j$)", "alignment along $\\hat F$'s eigenvectors"),
        ]
        if data.built_in:  # alignment and symmetry hold by construction: say so on them
            panels[2] = (*panels[2][:2], f"{panels[2][2]}\n{data.built_in}")
        for ax, (values, ylabel, title) in zip(axes, panels, strict=False):
            for j in range(k):
                ax.plot(data.steps, values[:, j], color=colours[j], label=f"j={j + 1}")
            ax.set(ylabel=ylabel, title=title, xlabel="training step")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(k, 10),
                   title="rank j of $\\hat F$'s eigenvalue (descending)")  # fmt: skip
        axes[2].ticklabel_format(axis="y", useOffset=False)
        finite = np.isfinite(data.alignment)
        low = np.nanmin(data.alignment) if np.any(finite) else 0.0
        axes[2].set_ylim(min(float(low) - 0.05, 0.9), 1.02)
        axes[3].plot(data.steps, data.asymmetry, color=OKABE_ITO[1])
        title = "asymmetry of $W_p$" + (f"\n{data.built_in}" if data.built_in else "")
        axes[3].set(ylabel=r"$\|W_p - W_p^T\|_F / \|W_p\|_F$", title=title,
                    xlabel="training step")  # fmt: skip
        fig.suptitle(f"[T] Fig. 2 — {data.title}")
    return fig
