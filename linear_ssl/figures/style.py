"""The figures' look: a colour-blind-safe palette (Okabe-Ito), ``style()`` (an rc context,
no global state), the fixed-point markers, the legend below a figure, and ``save_figure``
(PNG + PDF)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.figure import Figure

__all__ = [
    "KIND_STYLE",
    "MODE_COLOURS",
    "OKABE_ITO",
    "SADDLE",
    "STABLE",
    "UNSTABLE",
    "legend_below",
    "rank_colours",
    "save_figure",
    "style",
]

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, green, purple, orange, sky, ...).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Six hues for modes drawn together, none two alike (Okabe-Ito without its sky blue).
MODE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#000000")
STABLE, UNSTABLE, SADDLE = "stable", "unstable", "half-stable"
#: How a fixed point (marker) or a line of fixed points (line style) of each kind is drawn.
KIND_STYLE = {
    STABLE: dict(marker="o", mfc="black", mec="black", ls="-"),
    UNSTABLE: dict(marker="o", mfc="white", mec="black", ls="--"),
    SADDLE: dict(marker="o", mfc="0.6", mec="black", ls=":"),
}

_RC = {
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # embed TrueType: text stays editable in the PDF
    "font.family": "DejaVu Sans",
}


@contextmanager
def style() -> Iterator[None]:
    """The figures' look, as a matplotlib rc context (leaves global rcParams untouched)."""
    with matplotlib.rc_context(_RC):
        yield


def rank_colours(k: int) -> np.ndarray:
    """k colours along viridis, for eigenvalues ordered by rank (j = 1 darkest)."""
    return plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(k, 1)))


def legend_below(
    fig: Figure, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None,
    ncol: int | None = None,
) -> None:  # fmt: skip
    """One figure legend centred under every panel, off the data (constrained layout or
    tight_layout(rect=...) leaves it room). Without handles: those of every axes, once."""
    if handles is None:
        seen: dict[str, Any] = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(label, handle)
        handles, labels = list(seen.values()), list(seen)
    ncol = ncol or min(len(handles), 6)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol)


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `fig` as out_dir/name.png and out_dir/name.pdf, close it, return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return paths
