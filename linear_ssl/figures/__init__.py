"""Figures of theory.md section 7: one module per figure, one registry, one style.

Each figure module (``t_fig3_phase_portrait``, ..., ``run_overlay``, ``run_rankme``) exposes
``data(**settings) -> ...Data`` (a dataclass of what it draws; tests check it against the
theory) and ``draw(data) -> Figure``. ``registry.FIGURES`` lists every figure;
``theory_figures`` / ``run_figures`` write them (what ``linear-ssl figures`` runs).
"""

from linear_ssl.figures import registry
from linear_ssl.figures.registry import *  # noqa: F403 (registry.__all__, listed there)
from linear_ssl.figures.style import OKABE_ITO, save_figure, style

__all__ = [*registry.__all__, "OKABE_ITO", "save_figure", "style"]
