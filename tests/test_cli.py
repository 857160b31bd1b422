"""`linear-ssl` end to end: simulate, figures (theory and --run), compare, main."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linear_ssl import bridge
from linear_ssl.cli import main
from linear_ssl.figures import THEORY_FIGURES
from linear_ssl.runs import load_run
from linear_ssl.theory import Hyper, modes


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """A linear-model run (theory.sgd) in the trainer's run format, started aligned (A1-A3)."""
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01)
    W0, Wp0, Wa0 = bridge.aligned_init([1.0, 0.5, 0.2], [0.6, 0.4, 0.3], 0.8, n1=5, seed=0)
    run_dir = tmp_path_factory.mktemp("runs") / "linear"
    return bridge.write_linear_run(
        run_dir, h, W0, Wp0, Wa0, lr=0.02, steps=300, batch=64, record_every=30
    )


def test_simulate_table_is_the_T7_solution(tmp_path, capsys):
    """`simulate --out` writes T7's solution (modes.integrate) and prints T9's p-, p+."""
    out = tmp_path / "flow.csv"
    args = ["simulate", "--beta", "0.4", "--eta", "0.01", "--p0", "0.2", "0.8"]
    args += ["--s0", "0.5", "1.0", "--t-end", "10", "--points", "11", "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out)
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.01)
    sol = modes.integrate(h, np.array([0.2, 0.8]), np.array([0.5, 1.0]), np.linspace(0, 10, 11))
    for j in range(2):
        rows = table[table["mode"] == j]
        np.testing.assert_allclose(rows["p"], sol.p[:, j], rtol=1e-12)
        np.testing.assert_allclose(rows["s"], sol.s[:, j], rtol=1e-12)
    p_minus, p_plus = modes.fixed_points(h, tau=1.0)
    assert f"p- = {p_minus:.6g}, p+ = {p_plus:.6g}" in capsys.readouterr().out


def test_simulate_bad_hyper_is_a_one_line_error(capsys):
    """A negative eta is rejected by Hyper with its message; exit status 2."""
    assert main(["simulate", "--eta", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "eta" in err and ">= 0" in err


def test_figures_and_compare_on_a_linear_run(linear_run, tmp_path, capsys):
    """`figures --fast --run` writes every theory and run figure; `compare` prints the
    agreement of T7 with the run (closed loop: small error) and draws the overlay and
    the rank (E9) figure."""
    out = tmp_path / "figs"
    assert main(["figures", "--fast", "--out", str(out), "--run", str(linear_run)]) == 0
    theory = sorted(p.name for p in out.glob("*.png"))
    assert len(theory) == len(THEORY_FIGURES) and all((out / n).stat().st_size > 0 for n in theory)
    assert (out / linear_run.name / "run_overlay.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["compare", str(linear_run), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "err_s_median" in printed
    assert (tmp_path / "cmp" / "overlay.pdf").stat().st_size > 0
    assert (tmp_path / "cmp" / "rankme.pdf").stat().st_size > 0
    assert bridge.compare_run(linear_run).agreement["err_s_median"] < 0.05


def test_figures_by_name(linear_run, tmp_path, capsys):
    """`figures NAME ...` makes only the named figures (theory and run alike); a run figure
    without --run, or an unknown name, is a one-line error with exit status 2."""
    out = tmp_path / "some"
    args = ["figures", "t_fig4_parabola_flow", "run_overlay", "--fast", "--out", str(out)]
    assert main([*args, "--run", str(linear_run)]) == 0
    assert sorted(p.name for p in out.rglob("*.png")) == [
        "run_overlay.png",
        "t_fig4_parabola_flow.png",
    ]
    capsys.readouterr()
    for bad in (["figures", "run_overlay"], ["figures", "fig99"]):
        assert main([*bad, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and ("--run" in err or "no figure 'fig99'" in err)


def test_compare_on_a_folder_without_a_run_fails_cleanly(tmp_path, capsys):
    """No config.yaml / spectra: a one-line error, exit status 2."""
    assert main(["compare", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_main_job_end_to_end(tmp_path, capsys):
    """The README's main job, shortened: theory figures, then the ladder (rung 1 and the
    ResNet rung, one seed) on the embedded data, a verdict per rung and the figure."""
    out = tmp_path / "figs"
    args = ["--rungs", "linear,resnet", "--seeds", "1", "--steps", "6", "--limit", "256"]
    assert main(["main", "--fast", "--out", str(out), *args]) == 0
    assert len(list(out.glob("*.png"))) == len(THEORY_FIGURES)
    assert (out / "ladder" / "ladder.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "linear (T1, 1 seeds): does not agree" in printed  # one seed: no interval
    run_dir = out / "ladder" / "runs" / "resnet-seed0"
    run = load_run(run_dir)
    assert list(run.spectra.steps) == list(range(7))  # a record at step 0, then every step
    # `linear-ssl eval RUN`: linear probe + kNN of the run's backbone into RUN/eval.json
    assert main(["eval", str(run_dir), "--probe-epochs", "2", "--knn-k", "5"]) == 0
    results = load_run(run_dir).eval
    assert results["step"] == 6 and results["probe_per_epoch"][-1] == results["probe_final"]
    assert 0.0 <= results["probe_final"] <= 100.0 and 0.0 <= results["knn"] <= 100.0
    assert f"linear probe {results['probe_final']:.2f}%" in capsys.readouterr().out
