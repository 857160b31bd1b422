"""The overlay, the figure no paper has: the flow seeded from a run (``linear_ssl.bridge``)
dashed over the measured s_j, p_j, tau_j, mode by mode, and the (p, s) phase plane with
T8's parabola."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from linear_ssl.bridge import Comparison, compare_run, report
from linear_ssl.figures.run_labels import RunLike, run_title
from linear_ssl.figures.style import MODE_COLOURS, style

TITLE = "Overlay: the T7 / rule flow seeded from a run, over what it measured"

MEASURED = dict(ls="-", marker="o", ms=2.0, lw=0.9, alpha=0.75, zorder=2)
FLOW = dict(ls="--", lw=1.8, zorder=3)


@dataclass
class OverlayData:
    """The `top` modes by seeded s_j: ``Comparison.table`` rows (step, mode, quantity,
    measured, predicted), their errors, the flow's name and seed step, alpha_p and the T8
    scale fitted at the last record; ``built_in``, the label of what the run's predictor
    makes true by construction ("by construction (DirectPred)", ``bridge.report``: there the
    parabola), "" for a trained one."""

    title: str
    flow: str
    t0_step: int
    modes: np.ndarray
    table: pd.DataFrame
    alpha_p: float
    parabola_scale: float
    errors: pd.DataFrame
    built_in: str = ""


def data(comparison: Comparison | RunLike, top: int = 6) -> OverlayData:
    """The seeded flow over the measurement (``compare_run`` unless given a Comparison)."""
    c = comparison if isinstance(comparison, Comparison) else compare_run(comparison)
    chosen = c.per_mode.nlargest(min(top, len(c.per_mode)), "s0")["mode"].to_numpy()
    table = c.table[c.table["mode"].isin(chosen)].reset_index(drop=True)
    return OverlayData(
        run_title(c.run),
        c.flow,
        c.seed.step,
        chosen,
        table,
        c.hyper.alpha_p,
        c.agreement["parabola_scale"],
        c.per_mode.set_index("mode").loc[chosen, ["err_s", "err_p", "err_tau"]],
        report.construction_label(c.run) if "parabola" in report.built_in(c.run) else "",
    )


def draw(data: OverlayData) -> Figure:
    """Draw the overlay: s_j, p_j, tau_j over steps (measured thin with dots, flow dashed on
    top), then the phase plane; one legend under the panels."""
    table, modes = data.table, data.modes
    with style():
        fig, axes = plt.subplots(1, 4, figsize=(14, 4.0), layout="constrained")
        panels = {"s": ("$s_j$ (eig $\\hat F$)", True), "p": ("$p_j$", False)}
        panels["tau"] = ("$\\tau_j$", False)
        for ax, (q, (ylabel, log)) in zip(axes, panels.items(), strict=False):
            for i, m in enumerate(modes):
                rows = table[(table["quantity"] == q) & (table["mode"] == m)]
                colour = MODE_COLOURS[i % len(MODE_COLOURS)]
                ax.plot(rows["step"], rows["measured"], color=colour, **MEASURED)
                ax.plot(rows["step"], rows["predicted"], color=colour, **FLOW)
            ax.set(ylabel=ylabel, title=f"{ylabel}: measured vs flow", xlabel="training step")
            if log:
                ax.set_yscale("log")
        ax = axes[3]
        wide = table.pivot_table(index=["step", "mode"], columns="quantity", values="measured")
        pred = table.pivot_table(index=["step", "mode"], columns="quantity", values="predicted")
        handles = [Line2D([], [], color="0.3", **MEASURED), Line2D([], [], color="0.3", **FLOW)]
        labels = ["measured", f"flow ({data.flow})"]
        for i, m in enumerate(modes):
            colour = MODE_COLOURS[i % len(MODE_COLOURS)]
            mw, pw = wide.xs(m, level="mode"), pred.xs(m, level="mode")
            ax.plot(mw["p"], mw["s"], color=colour, **MEASURED)
            ax.plot(pw["p"], pw["s"], color=colour, **FLOW)
            handles.append(Line2D([], [], color=colour, lw=3))
            labels.append(f"mode {m}")
        p_all = np.concatenate([wide["p"].to_numpy(), pred["p"].to_numpy()])
        p_all = p_all[np.isfinite(p_all)]
        if p_all.size:
            grid = np.linspace(0.0, float(np.max(np.abs(p_all))) * 1.05, 100)
            (line,) = ax.plot(grid, grid**2 / data.alpha_p, ":", color="grey")
            handles.append(line)
            labels.append("T8: s = p²/α_p")
            k = data.parabola_scale
            if np.isfinite(k):
                (line,) = ax.plot(grid, k * grid**2, "-.", color="black", lw=0.8)
                handles.append(line)
                built = f", {data.built_in}" if data.built_in else ""
                labels.append(f"fit: s = {k:.3g} p²{built}")
        title = "phase plane (p, s)" + (f"\nparabola {data.built_in}" if data.built_in else "")
        ax.set(xlabel="$p_j$", ylabel="$s_j$", title=title, yscale="log")
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels))
        fig.suptitle(
            f"Flow ({data.flow}) seeded at step {data.t0_step} over the run — {data.title}"
        )
    return fig
