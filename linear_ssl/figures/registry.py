"""One registry of every figure, theory and run figures alike (theory.md section 7).

Each figure is a module of this package exposing ``data(**settings) -> ...Data`` (a typed
dataclass; never draws) and ``draw(data) -> Figure`` (never computes), and a ``TITLE``.
A theory figure's data takes only settings; a run figure's data takes a run (``runs=1``)
or a list of runs (``runs="many"``). ``FIGURES`` maps the output file name
(``OUT/NAME.png|pdf``) to its ``FigureSpec``; adding a figure is one module and one line
here, and tests/test_figures.py then renders and checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from matplotlib.figure import Figure

from linear_ssl.figures import (
    e_fig2_polar_distance,
    j_jepa_critical_times,
    n3_gap_dimension,
    n_fig3_shape_portrait,
    n_fig5_mode_sweeps,
    run_e_fig1,
    run_e_fig3,
    run_overlay,
    run_rankme,
    run_t_fig2,
    run_t_fig6,
    s_rl_subspace_distance,
    t_fig3_phase_portrait,
    t_fig4_parabola_flow,
    t_fig5_mode_sweeps,
    t_fig7_ema_correlation,
    t_fig8_predictor_symmetry,
    t_fig9_commutator,
    t_fig10_scalar_system,
)
from linear_ssl.figures.style import save_figure
from linear_ssl.runs import Run, load_run

__all__ = [
    "FIGURES",
    "RUN_FIGURES",
    "THEORY_FIGURES",
    "FigureSpec",
    "figure_data",
    "make_figure",
    "run_figures",
    "theory_figures",
]


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its module (``data``, ``draw``, ``TITLE``), whether it is drawn from the
    theory or from runs (``runs``: 0, 1 or "many"), and its data settings for fast=True."""

    module: ModuleType
    runs: Literal[0, 1, "many"] = 0
    fast: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.module.TITLE

    def data(self, *args: Any, **settings: Any) -> Any:
        return self.module.data(*args, **settings)

    def draw(self, data: Any) -> Figure:
        return self.module.draw(data)


#: file name -> figure; theory figures first (the papers' order), then the run figures.
FIGURES: dict[str, FigureSpec] = {
    "t_fig3_phase_portrait": FigureSpec(t_fig3_phase_portrait, fast=dict(grid=21, points=100)),
    "t_fig4_parabola_flow": FigureSpec(t_fig4_parabola_flow, fast=dict(points=201)),
    "t_fig5_mode_sweeps": FigureSpec(t_fig5_mode_sweeps, fast=dict(step=0.1)),
    "t_fig7_ema_correlation": FigureSpec(t_fig7_ema_correlation, fast=dict(n=6, runs=2, points=26)),
    "t_fig8_predictor_symmetry": FigureSpec(
        t_fig8_predictor_symmetry, fast=dict(n=5, t_end=100.0, points=101)
    ),
    "t_fig9_commutator": FigureSpec(t_fig9_commutator, fast=dict(n=5, points=81)),
    "t_fig10_scalar_system": FigureSpec(t_fig10_scalar_system, fast=dict(points=200)),
    "e_fig2_polar_distance": FigureSpec(
        e_fig2_polar_distance, fast=dict(betas=(0.03, 0.3, 3.0), runs=2)
    ),
    # the normalised loss (theory.md 2b)
    "n_fig3_shape_portrait": FigureSpec(
        n_fig3_shape_portrait, fast=dict(grid=15, points=41, t_end=10.0)
    ),
    "n_fig5_mode_sweeps": FigureSpec(
        n_fig5_mode_sweeps, fast=dict(etas=(0.0, 0.04), betas=(0.4, None), t_end=10.0, step=0.5)
    ),
    "n3_gap_dimension": FigureSpec(n3_gap_dimension, fast=dict(dims=(4, 16), seeds=(0,))),
    # theory.md section 9
    "s_rl_subspace_distance": FigureSpec(
        s_rl_subspace_distance, fast=dict(n=8, k=2, inits=3, t_end=200.0, points=9)
    ),
    "j_jepa_critical_times": FigureSpec(j_jepa_critical_times, fast=dict(grid=6, points=300)),
    "run_t_fig2": FigureSpec(run_t_fig2, runs=1),
    "run_t_fig6": FigureSpec(run_t_fig6, runs="many"),
    "run_e_fig1": FigureSpec(run_e_fig1, runs=1),
    "run_e_fig3": FigureSpec(run_e_fig3, runs="many"),
    "run_overlay": FigureSpec(run_overlay, runs=1),
    "run_rankme": FigureSpec(run_rankme, runs=1),
}
THEORY_FIGURES = {name: spec for name, spec in FIGURES.items() if spec.runs == 0}
RUN_FIGURES = {name: spec for name, spec in FIGURES.items() if spec.runs != 0}


def _spec(name: str) -> FigureSpec:
    if name not in FIGURES:
        raise ValueError(f"no figure {name!r}: choose one of {', '.join(FIGURES)}")
    return FIGURES[name]


def figure_data(name: str, run: Run | str | Path | None = None, fast: bool = False) -> Any:
    """The data of figure `name`: a theory figure's (settings of fast=True if asked), or a
    run figure's from `run` (a list of one run for figures of several runs)."""
    spec = _spec(name)
    if spec.runs == 0:
        return spec.data(**(spec.fast if fast else {}))
    if run is None:
        raise ValueError(f"figure {name!r} is drawn from a run: give one (--run RUN)")
    return spec.data([run] if spec.runs == "many" else run)


def make_figure(
    name: str,
    out_dir: str | Path = "paper_figures/out",
    fast: bool = False,
    run: Run | str | Path | None = None,
) -> list[Path]:
    """Compute and draw figure `name`; write OUT/NAME.png and OUT/NAME.pdf."""
    spec = _spec(name)
    return save_figure(spec.draw(figure_data(name, run, fast)), out_dir, name)


def theory_figures(
    out_dir: str | Path = "paper_figures/out",
    fast: bool = False,
    names: Sequence[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Regenerate the theory figures (all, or `names`) as PNG + PDF; returns the paths.

    fast=True uses smaller grids, sizes and run counts (for tests); the full set takes
    about a minute on a 2-core CPU (54 s measured idle, 86-103 s with the cores shared).
    """
    from tqdm.auto import tqdm

    chosen = list(THEORY_FIGURES) if names is None else list(names)
    unknown = [n for n in chosen if n not in THEORY_FIGURES]
    if unknown:
        raise ValueError(
            f"unknown theory figures {unknown}: choose from {', '.join(THEORY_FIGURES)}"
        )
    paths: list[Path] = []
    bar = tqdm(chosen, desc="theory figures", unit="fig", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        paths += make_figure(name, out_dir, fast=fast)
    return paths


def run_figures(
    run_dir: str | Path | Run,
    out_dir: str | Path | None = None,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Every run figure (or those of `names`) the run's records allow, as PNG + PDF in
    out_dir (default RUN/figures); a figure whose records are missing is skipped."""
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "figures"
    if len(run.spectra.steps) == 0:
        raise ValueError(f"{run.path} has no spectra records: train with record.every > 0")
    chosen = list(RUN_FIGURES) if names is None else list(names)
    unknown = [n for n in chosen if n not in RUN_FIGURES]
    if unknown:
        raise ValueError(f"unknown run figures {unknown}: choose from {', '.join(RUN_FIGURES)}")
    paths: list[Path] = []
    for name in chosen:
        try:
            data = figure_data(name, run)
        except ValueError:
            continue  # the run does not record what this figure needs
        paths += save_figure(FIGURES[name].draw(data), out, name)
    return paths
