"""The run directory (linear_ssl.runs): round trip, torn and corrupt files, truncation on
resume, and the T1 map of a run's hyper-parameters. No torch needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linear_ssl.runs import RunWriter, load_run

CONFIG = """name: test
optim: {{lr: 0.05, momentum: 0.9, weight_decay: 0.0004}}
method: {{name: {method}, ema: 0.99}}
predictor: {{kind: closed_form, lr: {plr}}}
"""


def _write_run(path, method="byol", plr="null", steps=(10, 20, 30)):
    writer = RunWriter(path)
    writer.write_config(CONFIG.format(method=method, plr=plr))
    rng = np.random.default_rng(0)
    records = {}
    for step in steps:
        writer.append_metrics({"step": step, "epoch": step / 10, "loss": -float(step)})
        arrays = {
            "F_eigvals": rng.random(4),
            "alignment_matrix": rng.random((4, 4)),
            "asymmetry": np.asarray(rng.random()),
        }
        writer.write_spectra(step, arrays)
        records[step] = arrays
    return writer, records


def test_run_round_trip_stacks_spectra_over_record_steps(tmp_path):
    _, records = _write_run(tmp_path)
    run = load_run(tmp_path)
    assert run.config["optim"]["lr"] == 0.05
    assert run.metrics["step"].tolist() == [10, 20, 30]
    assert run.metrics["loss"].tolist() == [-10.0, -20.0, -30.0]
    assert run.spectra.steps.tolist() == [10, 20, 30]
    assert run.spectra["F_eigvals"].shape == (3, 4)
    assert run.spectra["alignment_matrix"].shape == (3, 4, 4)
    for i, step in enumerate((10, 20, 30)):
        np.testing.assert_array_equal(run.spectra["F_eigvals"][i], records[step]["F_eigvals"])
        np.testing.assert_array_equal(run.spectra.at(step)["asymmetry"], records[step]["asymmetry"])
    with pytest.raises(KeyError, match="available"):
        run.spectra["nope"]
    assert not list(tmp_path.rglob(".*.tmp*"))  # atomic writes leave no temporary files


def test_a_torn_final_metrics_line_is_ignored_and_truncation_drops_newer_records(tmp_path):
    writer, _ = _write_run(tmp_path)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 40, "lo')  # a write cut short by a kill
    assert load_run(tmp_path).metrics["step"].tolist() == [10, 20, 30]
    (tmp_path / "spectra" / ".step_00000040.npz.tmp123").write_bytes(b"partial")
    writer.truncate_after(20)
    run = load_run(tmp_path)
    assert run.metrics["step"].tolist() == [10, 20]
    assert run.spectra.steps.tolist() == [10, 20]
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_hyper_maps_the_run_through_T1(tmp_path):
    """T1 (torch convention): dt = lr / (1 - m), alpha_p = predictor lr / lr,
    beta = (1 - ema) / dt, eta = wd; SimSiam has beta None."""
    _write_run(tmp_path / "byol", plr="0.1")
    h = load_run(tmp_path / "byol").hyper()
    dt = 0.05 / (1 - 0.9)
    assert h.dt == pytest.approx(dt)
    assert h.alpha_p == pytest.approx(0.1 / 0.05)
    assert h.beta == pytest.approx((1 - 0.99) / dt)
    assert h.eta == pytest.approx(0.0004)
    _write_run(tmp_path / "simsiam", method="simsiam")
    h = load_run(tmp_path / "simsiam").hyper()
    assert h.beta is None and h.alpha_p == pytest.approx(1.0)


def test_method_facts_decide_the_target_not_the_method_name(tmp_path):
    """T1: config.yaml's method_facts (written by the trainer) say whether the target is an
    EMA; a method the reader has never heard of maps through T1 by its facts alone, and an
    old run without the block falls back to the facts of byol / simsiam."""
    for name, ema_target in (("noema", False), ("emalike", True)):
        _write_run(tmp_path / name, method=name)
        with open(tmp_path / name / "config.yaml", "a") as fh:
            fh.write(f"method_facts: {{name: {name}, ema_target: {str(ema_target).lower()}, "
                     "loss: cosine, c_loss: 4.0}\n")  # fmt: skip
        run = load_run(tmp_path / name)
        assert run.method_facts["ema_target"] is ema_target
        h = run.hyper()
        if ema_target:
            assert h.beta == pytest.approx((1 - 0.99) / (0.05 / (1 - 0.9)))
        else:
            assert h.beta is None
    _write_run(tmp_path / "old", method="simsiam")
    assert load_run(tmp_path / "old").method_facts["ema_target"] is False
    _write_run(tmp_path / "unknown", method="mystery")
    with pytest.raises(ValueError, match="no method_facts and method.name='mystery'") as err:
        load_run(tmp_path / "unknown").hyper()
    assert "\n" not in str(err.value)


def test_hyper_without_predictor_section_uses_the_backbone_lr_T1(tmp_path):
    """T1 with no predictor section (a linear or baseline run): predictor lr = lr, so
    alpha_p = 1, beta and dt as with one; a missing optim entry is a one-line error."""
    _write_run(tmp_path / "a")
    config = (tmp_path / "a" / "config.yaml").read_text()
    no_predictor = "\n".join(ln for ln in config.splitlines() if not ln.startswith("predictor"))
    (tmp_path / "a" / "config.yaml").write_text(no_predictor + "\n")
    h = load_run(tmp_path / "a").hyper()
    dt = 0.05 / (1 - 0.9)
    assert h.alpha_p == pytest.approx(1.0) and h.dt == pytest.approx(dt)
    assert h.beta == pytest.approx((1 - 0.99) / dt)
    (tmp_path / "a" / "config.yaml").write_text("method: {name: byol}\n")
    with pytest.raises(ValueError, match="has no optim.lr, optim.weight_decay") as err:
        load_run(tmp_path / "a").hyper()
    assert "\n" not in str(err.value)


def test_missing_or_corrupt_run_directories_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        load_run(tmp_path)
    _write_run(tmp_path / "a")
    (tmp_path / "a" / "config.yaml").write_text("optim: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML") as err:
        load_run(tmp_path / "a")
    assert "\n" not in str(err.value)
    _write_run(tmp_path / "b")
    (tmp_path / "b" / "spectra" / "step_00000020.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt"):
        load_run(tmp_path / "b")
    _write_run(tmp_path / "c")
    lines = (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()
    lines[1] = "{broken"
    (tmp_path / "c" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        load_run(tmp_path / "c")


def test_metrics_are_plain_jsonl_readable_without_the_package(tmp_path):
    _write_run(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    with np.load(tmp_path / "spectra" / "step_00000010.npz") as npz:
        assert int(npz["step"]) == 10 and npz["F_eigvals"].shape == (4,)
