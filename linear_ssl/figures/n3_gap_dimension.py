"""N3: cosine-loss SGD against N1 and against the rescaled squared-error flow T1, over the
effective dimension (theory.md 2b)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures.style import OKABE_ITO, style
from linear_ssl.theory import normalised

TITLE = "N3: how far A4's normalised-loss flow N1 is from cosine-loss SGD"


@dataclass
class N3GapData:
    """table: tidy columns d, seed, d_eff, n1 (SGD vs N1), squared (SGD vs T1 at its best
    time scale), scale; and the settings."""

    table: pd.DataFrame
    lr: float
    flow_time: float


def data(
    dims: tuple[int, ...] = (4, 8, 16, 32, 64),
    lr: float = 0.05,
    seeds: tuple[int, ...] = (0, 1, 2),
    flow_time: float = 4.0,
) -> N3GapData:
    """N3 (``normalised.n3_gap``) per dimension and problem seed."""
    rows = [vars(normalised.n3_gap(d, lr, k, flow_time=flow_time)) for d in dims for k in seeds]
    return N3GapData(pd.DataFrame(rows), lr, flow_time)


def draw(data: N3GapData) -> Figure:
    """Draw N3: the gap against the effective dimension, N1 beside the rescaled T1."""
    df = data.table
    with style():
        fig, ax = plt.subplots(figsize=(5.6, 4.2), layout="constrained")
        mean = df.groupby("d")[["d_eff", "n1", "squared"]].mean()
        for column, colour, label in (
            ("n1", OKABE_ITO[0], "N1 (normalised-loss flow)"),
            ("squared", OKABE_ITO[1], "T1 (squared error) at its best time scale"),
        ):
            ax.plot(df.d_eff, df[column], "o", color=colour, alpha=0.35, ms=3)
            ax.plot(mean.d_eff, mean[column], "-o", color=colour, label=label)
        ax.set(
            xscale="log", yscale="log", xlabel="effective dimension (participation ratio of F(0))",
            ylabel="gap to cosine-loss SGD / N1's displacement",
        )  # fmt: skip
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1)
        ax.set_title(
            f"N3: how far A4 is from the truth (SimSiam, lr = {data.lr:g}, t = "
            f"{data.flow_time:g},\n16 SGD seeds averaged; faint dots: problem seeds)"
        )
    return fig
