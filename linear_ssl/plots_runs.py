"""Deprecated: the run figures are modules of ``linear_ssl.figures`` now (``run_t_fig2``,
``run_t_fig6``, ``run_e_fig1``, ``run_e_fig3``, ``run_overlay``). This module re-exports the
old names for one release; the data functions return the new typed dataclasses."""

from __future__ import annotations

import warnings

from linear_ssl.figures import run_e_fig1 as _e_fig1
from linear_ssl.figures import run_e_fig3 as _e_fig3
from linear_ssl.figures import run_overlay as _overlay
from linear_ssl.figures import run_t_fig2 as _t_fig2
from linear_ssl.figures import run_t_fig6 as _t_fig6
from linear_ssl.figures.registry import RUN_FIGURES, run_figures
from linear_ssl.figures.run_labels import run_label, run_title

__all__ = [
    "RUN_FIGURES",
    "draw_e_fig1",
    "draw_e_fig3",
    "draw_overlay",
    "draw_t_fig2",
    "draw_t_fig6",
    "e_fig1_data",
    "e_fig3_data",
    "overlay_data",
    "run_figures",
    "run_label",
    "run_title",
    "t_fig2_data",
    "t_fig6_data",
]

warnings.warn(
    "linear_ssl.plots_runs is deprecated: use linear_ssl.figures (one module per figure)",
    DeprecationWarning,
    stacklevel=2,
)

t_fig2_data, draw_t_fig2 = _t_fig2.data, _t_fig2.draw
t_fig6_data, draw_t_fig6 = _t_fig6.data, _t_fig6.draw
e_fig1_data, draw_e_fig1 = _e_fig1.data, _e_fig1.draw
e_fig3_data, draw_e_fig3 = _e_fig3.data, _e_fig3.draw
overlay_data, draw_overlay = _overlay.data, _overlay.draw
