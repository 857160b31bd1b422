"""E9 on the bridge: the RankMe(t) and mode-loss steps a seeded flow predicts, beside a run's
(T7, T9 on the SGD-trained linear model), in compare's report and the run_rankme figure."""

from __future__ import annotations

import numpy as np
import pytest

from linear_ssl import bridge, diagnostics
from linear_ssl.cli import main
from linear_ssl.figures import FIGURES, run_rankme
from linear_ssl.theory import Hyper

H = Hyper(alpha_p=1.0, beta=None, eta=0.2, sigma2=0.0)  # T9: p- = 0.276, p+ = 0.724
P0 = [0.6, 0.1]  # one mode above p-, one below it, both on T8's parabola
LR, FLOW_TIME = 0.02, 40.0
STEPS = int(round(FLOW_TIME / LR))


@pytest.fixture(scope="module")
def collapsing(tmp_path_factory):
    W0, Wp0, Wa0 = bridge.aligned_init([p**2 for p in P0], P0, 1.0, n1=6, seed=1)
    run = bridge.write_linear_run(
        tmp_path_factory.mktemp("rank") / "run", H, W0, Wp0, Wa0,
        lr=LR, steps=STEPS, batch=256, record_every=STEPS // 20,
    )  # fmt: skip
    return bridge.compare_run(run)


def test_rank_table_is_e9_of_the_compared_spectra_run_and_flow(collapsing):
    c = collapsing
    s_run = c.table[c.table["quantity"] == "s"].pivot(index="step", columns="mode")
    np.testing.assert_array_equal(c.rank["step"], s_run.index)
    expected = diagnostics.rankme_spectrum(s_run["measured"].to_numpy())
    np.testing.assert_allclose(c.rank["rankme_run"], expected, rtol=1e-12)
    # at the seed the flow's state is the run's; from sqrt(s) = (0.6, 0.1): exp(H(6/7, 1/7))
    p = np.array([6, 1]) / 7
    seeded = np.exp(-np.sum(p * np.log(p)))
    assert c.rank["rankme_flow"].iloc[0] == pytest.approx(seeded, rel=1e-6)
    assert c.rank["rankme_run"].iloc[0] == pytest.approx(seeded, rel=1e-6)
    # T9: the mode below p- collapses, so both end near rank one, and agree on the way
    assert c.agreement["rankme_flow_last"] == pytest.approx(1.0, abs=0.02)
    assert c.agreement["rankme_run_last"] == pytest.approx(1.0, abs=0.02)
    assert c.agreement["rankme_err"] < 0.02
    assert c.rank["projector_rankme"].isna().all()  # the linear bridge records no batch


def test_flow_and_run_lose_the_mode_below_p_minus_at_the_same_step_T9(collapsing):
    pm = collapsing.per_mode.sort_values("mode")
    kept, lost = pm.iloc[0], pm.iloc[1]
    assert np.isnan(kept["lost_step_flow"]) and np.isnan(kept["lost_step_run"])
    assert collapsing.seed.step < lost["lost_step_flow"] < STEPS
    # the run is seen every record (STEPS / 20): its loss step is the first record after
    # the flow's, up to SGD noise of one record
    assert abs(lost["lost_step_run"] - lost["lost_step_flow"]) <= 2 * (STEPS // 20)
    text = collapsing.to_markdown()
    for key in ("rankme_run_last", "rankme_flow_last", "rankme_err", "lost_step_flow"):
        assert key in text


def test_rankme_figure_data_is_the_comparison_and_compare_cli_draws_it(
    collapsing, tmp_path, capsys
):
    data = run_rankme.data(collapsing)
    assert data.rank is collapsing.rank and data.threshold == bridge.LOST_THRESHOLD
    lost = collapsing.per_mode[["mode", "lost_step_flow", "lost_step_run"]]
    assert data.lost.equals(lost)
    assert FIGURES["run_rankme"].module is run_rankme and FIGURES["run_rankme"].runs == 1
    assert main(["compare", str(collapsing.run.path), "--out", str(tmp_path / "cli")]) == 0
    assert "rankme_flow_last" in capsys.readouterr().out
    assert (tmp_path / "cli" / "rankme.png").stat().st_size > 1000
