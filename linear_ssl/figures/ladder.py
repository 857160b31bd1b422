"""The figure no paper has (theory.md section 7): one panel per rung of section 8's
ladder, the seeded flow (dashed) over what the run measured (solid), log shape
log(s_j / sum_k s_k) of the compared modes against training steps, the fitting window
shaded, the skill against both baselines in the title.

``data(rows)`` takes ``bridge.ladder.run_ladder``'s per-rung summaries; ``draw(data)``
returns the matplotlib Figure.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def data(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rung: name, flow, steps, fit_end, run and flow log shapes (R, m), skills."""
    panels = []
    for r in rows:
        c = r["curves"]
        panels.append(
            {
                "rung": r["rung"],
                "flow": r["flow"],
                "steps": np.asarray(c["steps"]),
                "fit_end": c["fit_end"],
                "run": np.asarray(c["run"], dtype=float),
                "pred": None if c["flow"] is None else np.asarray(c["flow"], dtype=float),
                "skill_persistence": r["skill_persistence"][0],
                "skill_loglinear": r["skill_loglinear"][0],
                "agrees": r["agrees"],
                "seed_step": c.get("seed_step", int(c["steps"][0])),
                "built_in": r.get("built_in", ""),
            }
        )
    return panels


def draw(panels: list[dict[str, Any]]) -> Figure:
    """One panel per rung (see the module docstring)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, p in zip(axes[0], panels, strict=True):
        colors = plt.cm.viridis(np.linspace(0, 0.9, p["run"].shape[1]))
        ax.axvspan(p["seed_step"], p["fit_end"], color="0.9", label="fitting window")
        for j, color in enumerate(colors):
            ax.plot(p["steps"], p["run"][:, j], color=color, lw=1.5)
            if p["pred"] is not None:
                ax.plot(p["steps"], p["pred"][:, j], color=color, lw=1.2, ls="--")
        verdict = "agrees" if p["agrees"] else "does not agree"
        ax.set_title(
            f"{p['rung']} ({p['flow']}): {verdict}\nskill vs persistence "
            f"{p['skill_persistence']:.2f}, vs log-linear {p['skill_loglinear']:.2f}"
            + (f"\n[T] Fig. 2 trends {p['built_in']}" if p["built_in"] else ""),
            fontsize=9,
        )
        ax.set_xlabel("training step")
        if p["pred"] is None:
            ax.text(0.5, 0.5, "flow unavailable", transform=ax.transAxes, ha="center")
    axes[0][0].set_ylabel("log s_j / sum_k s_k (solid run, dashed flow)")
    built = any(p["built_in"] for p in panels)
    fig.suptitle(
        "Theory seeded at an early record (shaded: the fitting window) against the run, per "
        "rung" + ("" if built else " (trainable linear predictor: no agreement built in)"),
        fontsize=10,
    )
    fig.tight_layout()
    return fig
