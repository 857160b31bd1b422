"""Checkpoints and resume: a run killed for real (SIGKILL, in a subprocess) and resumed ends
bitwise equal to one never stopped; non-finite losses and bad checkpoints are clear errors."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL, train_until_checkpoint  # noqa: E402

from linear_ssl.runs import load_run  # noqa: E402
from linear_ssl.train import (  # noqa: E402
    NonFiniteLossError,
    evaluate_run,
    load_config,
    resume,
    train,
    train_from_cli,
)
from linear_ssl.train.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    *TINY_MODEL,
    "data.limit=160",  # 10 steps an epoch: the run crosses epochs
    "record.every=4",
    "record.log_every=3",
    "checkpoint.every=5",
    "checkpoint.keep=2",
]


def _final_state(run_dir: Path) -> dict:
    last = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]
    return torch.load(last, map_location="cpu", weights_only=True)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """A resumed run's final parameters, optimiser state, spectra and metrics are bitwise
    those of the run that was never stopped (CPU, one thread), online probe included."""
    steps = 30
    overrides = [
        *TINY,
        f"max_steps={steps}",
        "epochs=100",
        "predictor.rule=directpred",
        "eval.online_probe=true",
    ]
    killed = tmp_path / "killed"
    proc = train_until_checkpoint(overrides, killed)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    status = json.loads((killed / "status.json").read_text())
    assert status["state"] == "running"  # killed mid-run, not after the end
    assert _final_state(killed)["step"] < steps

    resume(killed)
    straight = train(load_config(None, [*overrides, f"run_dir={tmp_path / 'straight'}"]))

    a, b = _final_state(straight), _final_state(killed)
    assert a["step"] == b["step"] == steps
    assert a["method"].keys() == b["method"].keys()
    for key, value in a["method"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["method"][key]), key
    for pa, pb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(pa["momentum_buffer"], pb["momentum_buffer"])
    for key, value in a["probe"]["module"].items():  # the online probe resumes too
        assert torch.equal(value, b["probe"]["module"][key]), key
    ra, rb = load_run(straight), load_run(killed)
    acc = ra.metrics["online_probe_acc"]
    assert acc.notna().all() and acc.between(0, 100).all()
    assert ra.spectra.steps.tolist() == rb.spectra.steps.tolist() == list(range(0, steps + 1, 4))
    assert set(ra.spectra) == set(rb.spectra)
    for key in ra.spectra:
        np.testing.assert_array_equal(ra.spectra[key], rb.spectra[key], err_msg=key)
    timing = ["img_per_s"]
    assert ra.metrics.drop(columns=timing).equals(rb.metrics.drop(columns=timing))
    assert rb.status["state"] == "finished"


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    """A NaN weight at step 5 (checkpoints every 2): the error names step 5, the step-4
    checkpoint stays loadable, and status.json says failed."""
    cfg = load_config(None, [*TINY, "max_steps=8", "checkpoint.every=2", "record.every=0"])
    trainer = Trainer(cfg, tmp_path)
    original = trainer.train_step

    def poisoned(batch):
        if trainer.step == 4:
            with torch.no_grad():
                next(trainer.method.backbone.parameters()).fill_(float("nan"))
        return original(batch)

    trainer.train_step = poisoned
    with pytest.raises(NonFiniteLossError, match="non-finite at step 5") as err:
        trainer.fit()
    assert "\n" not in str(err.value) and "step_00000004.pt" in str(err.value)
    assert [p.name for p in sorted((tmp_path / "checkpoints").glob("*.pt"))][-1] == (
        "step_00000004.pt"
    )
    assert _final_state(tmp_path)["step"] == 4
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "failed"


def test_huge_learning_rate_stops_with_a_non_finite_loss(tmp_path):
    cfg = load_config(
        None,
        [
            *TINY,
            "max_steps=30",
            "optim.lr=1e30",
            "predictor.kind=linear",
            f"run_dir={tmp_path / 'run'}",
        ],
    )
    with pytest.raises(NonFiniteLossError, match=r"non-finite at step \d+"):
        train(cfg)


def test_missing_or_corrupt_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        resume(tmp_path / "nothing")
    run = train_from_cli("smoke", [*TINY, "max_steps=3", f"run_dir={tmp_path / 'run'}"])
    results = evaluate_run(run, probe_epochs=1, knn_k=5, train_limit=100, test_limit=50)
    assert load_run(run).eval == json.loads(json.dumps(results))  # eval.json, plain JSON
    assert results["step"] == 3 and results["test_images"] == 50
    assert 0 <= results["probe_final"] <= 100 and len(results["probe_per_epoch"]) == 1
    with pytest.raises(ValueError, match="not empty"):
        train(load_config(None, [*TINY, "max_steps=3", f"run_dir={run}"]))
    for ckpt in (run / "checkpoints").glob("*.pt"):
        ckpt.unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume(run)
    (run / "checkpoints" / "step_00000003.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match="corrupt") as err:
        resume(run)
    assert "\n" not in str(err.value)
