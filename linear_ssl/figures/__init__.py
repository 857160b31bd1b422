"""Figures of theory.md section 7: one module per figure, one registry, one style.

Each figure module (``t_fig3_phase_portrait``, ..., ``run_overlay``, ``run_rankme``) exposes
``data(**settings) -> ...Data`` (a dataclass of what it draws; tests check it against the
theory) and ``draw(data) -> Figure``. ``registry.FIGURES`` lists every figure;
``theory_figures`` / ``run_figures`` write them (what ``linear-ssl figures`` runs).
"""

from linear_ssl.figures.registry import (
    FIGURES,
    RUN_FIGURES,
    THEORY_FIGURES,
    FigureSpec,
    figure_data,
    make_figure,
    run_figures,
    theory_figures,
)
from linear_ssl.figures.style import OKABE_ITO, save_figure, style

__all__ = [
    "FIGURES",
    "OKABE_ITO",
    "RUN_FIGURES",
    "THEORY_FIGURES",
    "FigureSpec",
    "figure_data",
    "make_figure",
    "run_figures",
    "save_figure",
    "style",
    "theory_figures",
]
