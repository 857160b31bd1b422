"""E9-E12 recorded by the trainer, and the collapse flag (record.collapse_floor / window /
stop_on_collapse) in metrics and status.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl import diagnostics as D  # noqa: E402
from linear_ssl.runs import load_run  # noqa: E402
from linear_ssl.train import CollapseError, load_config, train  # noqa: E402
from linear_ssl.train.recorder import CollapseWatch, collapse_diagnostics  # noqa: E402

TINY = [*TINY_MODEL, "data.limit=128", "record.log_every=2", "checkpoint.every=1000"]


def test_collapse_diagnostics_group_the_two_views_of_each_image_E10():
    """Rows i and B + i are image i's views: LiDAR equals lidar with those ids, and with
    view 2 = view 1 + small isotropic noise it is about the entropy rank of the image
    means' anisotropic scatter; pairing rows 2i, 2i + 1 by position would whiten that
    scatter away."""
    rng = np.random.default_rng(0)
    B, d = 64, 10
    h1 = rng.normal(size=(B, 200)) * 0.97 ** np.arange(200)  # more features than rows
    z1 = rng.normal(size=(B, d)) * 0.6 ** np.arange(d)
    h = np.concatenate([h1, h1 + 0.01 * rng.normal(size=h1.shape)])
    z = np.concatenate([z1, z1 + 0.01 * rng.normal(size=z1.shape)])
    image = np.r_[np.arange(B), np.arange(B)]
    got = collapse_diagnostics(h, z)
    assert got["projector_lidar"] == pytest.approx(D.lidar(z, image), rel=1e-12)
    by_position = D.lidar(z, np.arange(2 * B) // 2)
    assert got["projector_lidar"] < 0.6 * d < by_position
    # from the Gram matrices' eigenvalues (E9's rankme_spectrum identity): as from the SVD
    for part, X in (("backbone", h), ("projector", z)):
        assert got[f"{part}_rankme"] == pytest.approx(D.rankme(X), rel=1e-9)
        eig = np.linalg.eigvalsh(np.cov(X.T))
        assert got[f"{part}_alpha_req"] == pytest.approx(D.alpha_req(eig), rel=1e-9)
    assert got["projector_l2_std"] == pytest.approx(D.l2_std(z), rel=1e-12)


def test_collapse_watch_needs_the_whole_window_below_the_floor():
    watch = CollapseWatch(floor=2.0, window=20)
    for step, value in ((10, 1.5), (20, 3.0), (30, 1.5), (40, math.nan), (49, 1.9)):
        watch.update(step, value)
        assert watch.flagged is None  # the stretch from 30 is 19 steps long at 49
    watch.update(50, 1.9)
    assert watch.flagged == 30
    watch.update(60, 5.0)  # recovering keeps the flag
    assert watch.flagged == 30 and "collapsing at step 30" in watch.message()


def test_records_hold_rank_diagnostics_within_their_bounds_E9_E12(tmp_path):
    cfg = load_config(None, [*TINY, "max_steps=4", "record.every=2"])  # records 0, 2, 4
    spectra = load_run(train(cfg | {"run_dir": str(tmp_path)})).spectra
    B, d_z = cfg.batch_size, cfg.model.projector_out
    for part, d in (("backbone", 8 * cfg.model.width), ("projector", d_z)):
        rank = spectra[f"{part}_rankme"]
        assert rank.shape == (3,) and np.all((rank >= 1) & (rank <= min(2 * B, d) + 1e-3))
        assert np.all(spectra[f"{part}_lidar"] <= min(d, B - 1) * (1 + 1e-6))
        assert np.all((spectra[f"{part}_l2_std"] >= 0) & (spectra[f"{part}_l2_std"] <= 1))
        assert np.all(np.isfinite(spectra[f"{part}_alpha_req"]))


def test_a_run_below_the_floor_is_flagged_in_metrics_and_status(tmp_path):
    """A floor no RankMe reaches: flagged at the record that closes the window, the flag's
    step being the first record below it; the run still finishes."""
    overrides = ["max_steps=8", "record.every=2", "record.collapse_floor=1e6"]
    cfg = load_config(None, [*TINY, *overrides, "record.collapse_window=4"])
    run_dir = train(cfg | {"run_dir": str(tmp_path)})
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["collapsing_since"] == 2
    assert status["warning"].startswith("collapsing at step 2")
    metrics = load_run(run_dir).metrics
    # records 2, 4, 6 close the window at 6, completed (written) one step later, at 7
    flagged = metrics.set_index("step")["collapsing_since"]
    assert flagged.loc[[2, 4, 6]].isna().all() and (flagged.loc[[8]] == 2).all()


def test_stop_on_collapse_stops_with_a_checkpoint_and_a_one_line_reason(tmp_path):
    overrides = ["max_steps=20", "record.every=2", "record.collapse_floor=1e6"]
    cfg = load_config(None, [*TINY, *overrides, "record.collapse_window=0"])
    cfg.record.stop_on_collapse = True
    with pytest.raises(CollapseError, match="collapsing at step 2") as info:
        train(cfg | {"run_dir": str(tmp_path)})
    assert "\n" not in str(info.value)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "failed" and status["collapsing_since"] == 2 and status["step"] == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000004.pt"]


def test_stop_on_collapse_without_records_is_a_config_error():
    with pytest.raises(ValueError, match="record.every > 0"):
        load_config(None, ["record.every=0", "record.stop_on_collapse=true"])
