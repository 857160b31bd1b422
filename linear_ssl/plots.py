"""Deprecated: the theory figures are modules of ``linear_ssl.figures`` now (one per
figure, each with ``data`` and ``draw``; ``linear_ssl.figures.registry.FIGURES``). This
module re-exports the old names for one release; the data functions return the new typed
dataclasses, except ``polar_distance_data``, which keeps returning its DataFrame."""

from __future__ import annotations

import warnings

import pandas as pd
from matplotlib.figure import Figure

from linear_ssl.figures import e_fig2_polar_distance as _e_fig2
from linear_ssl.figures import t_fig3_phase_portrait as _t_fig3
from linear_ssl.figures import t_fig4_parabola_flow as _t_fig4
from linear_ssl.figures import t_fig5_mode_sweeps as _t_fig5
from linear_ssl.figures import t_fig7_ema_correlation as _t_fig7
from linear_ssl.figures import t_fig8_predictor_symmetry as _t_fig8
from linear_ssl.figures import t_fig9_commutator as _t_fig9
from linear_ssl.figures import t_fig10_scalar_system as _t_fig10
from linear_ssl.figures.registry import THEORY_FIGURES, make_figure, theory_figures
from linear_ssl.figures.style import OKABE_ITO, SADDLE, STABLE, UNSTABLE, save_figure, style
from linear_ssl.figures.t_fig3_phase_portrait import PhasePortrait

__all__ = [
    "OKABE_ITO",
    "SADDLE",
    "STABLE",
    "THEORY_FIGURES",
    "UNSTABLE",
    "PhasePortrait",
    "alignment_commutator_data",
    "draw_alignment_commutator",
    "draw_ema_correlation",
    "draw_mode_sweeps",
    "draw_parabola_flow",
    "draw_phase_portrait",
    "draw_polar_distance",
    "draw_scalar_system",
    "draw_symmetry",
    "ema_correlation_data",
    "make_figure",
    "mode_sweeps_data",
    "parabola_flow_data",
    "phase_portrait_data",
    "polar_distance_data",
    "save_figure",
    "scalar_system_data",
    "style",
    "symmetry_data",
    "theory_figures",
]

warnings.warn(
    "linear_ssl.plots is deprecated: use linear_ssl.figures (one module per figure)",
    DeprecationWarning,
    stacklevel=2,
)

phase_portrait_data, draw_phase_portrait = _t_fig3.data, _t_fig3.draw
parabola_flow_data, draw_parabola_flow = _t_fig4.data, _t_fig4.draw
mode_sweeps_data, draw_mode_sweeps = _t_fig5.data, _t_fig5.draw
ema_correlation_data, draw_ema_correlation = _t_fig7.data, _t_fig7.draw
symmetry_data, draw_symmetry = _t_fig8.data, _t_fig8.draw
alignment_commutator_data, draw_alignment_commutator = _t_fig9.data, _t_fig9.draw
scalar_system_data, draw_scalar_system = _t_fig10.data, _t_fig10.draw


def polar_distance_data(**settings) -> pd.DataFrame:
    """The old [E] Fig. 2 data: the tidy table, its settings in ``attrs``."""
    data = _e_fig2.data(**settings)
    table = data.table.copy()
    table.attrs.update({k: v for k, v in vars(data).items() if k != "table"})
    return table


def draw_polar_distance(data: pd.DataFrame | _e_fig2.PolarDistanceData) -> Figure:
    """The old [E] Fig. 2 drawing: takes the table of ``polar_distance_data`` or the data."""
    if isinstance(data, pd.DataFrame):
        data = _e_fig2.PolarDistanceData(data, **data.attrs)
    return _e_fig2.draw(data)
