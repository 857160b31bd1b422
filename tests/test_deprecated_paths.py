"""The old module paths (linear_ssl.compare, .plots, .plots_runs) still import for one
release, warn that they are deprecated, and hand out the very objects of the new modules;
the old [E] Fig. 2 data keeps its DataFrame form (notebook 03 groups it)."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest

from linear_ssl import bridge, figures
from linear_ssl.figures import e_fig2_polar_distance, run_overlay, t_fig3_phase_portrait


@pytest.mark.parametrize("name", ["compare", "plots", "plots_runs"])
def test_old_path_warns_and_reexports(name):
    with pytest.warns(DeprecationWarning, match=f"linear_ssl.{name} is deprecated"):
        module = importlib.reload(importlib.import_module(f"linear_ssl.{name}"))
    for public in module.__all__:
        assert hasattr(module, public), f"linear_ssl.{name}.{public} is gone"


def test_old_names_are_the_new_objects():
    with pytest.warns(DeprecationWarning):
        compare = importlib.reload(importlib.import_module("linear_ssl.compare"))
        plots = importlib.reload(importlib.import_module("linear_ssl.plots"))
        plots_runs = importlib.reload(importlib.import_module("linear_ssl.plots_runs"))
    assert compare.compare_run is bridge.compare_run
    assert compare.write_linear_run is bridge.write_linear_run
    assert plots.draw_phase_portrait is t_fig3_phase_portrait.draw
    assert plots.theory_figures is figures.theory_figures
    assert plots_runs.overlay_data is run_overlay.data
    old = plots.polar_distance_data(betas=(3.0,), times=(10.0,), runs=1, n1=4, n2=2)
    new = e_fig2_polar_distance.data(betas=(3.0,), times=(10.0,), runs=1, n1=4, n2=2)
    assert isinstance(old, pd.DataFrame) and old.equals(new.table)
    assert old.attrs["n1"] == 4 and old.attrs["runs"] == 1
    fig = plots.draw_polar_distance(old)
    assert fig.axes[0].get_title() == "E5: polar distance"
