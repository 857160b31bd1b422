"""A run directory has one writer (docs/run_format.md, "writer.lock"): a second writer is
refused, a killed run is reported stopped at its last checkpoint, a failed start leaves no
stub, repeated metrics steps are deduplicated with a warning, and a resume may override
the documented keys (config_history.jsonl), refusing the rest."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL, train_until_checkpoint  # noqa: E402

from linear_ssl.cli import main  # noqa: E402
from linear_ssl.runs import (  # noqa: E402
    LOCK_FILE,
    RunLockedError,
    RunWriter,
    describe_state,
    load_run,
    run_lock,
)
from linear_ssl.train import load_config, resume, train, train_from_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = [*TINY_MODEL, "data.limit=64", "record.every=2", "record.log_every=1"]


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text, text
    return text


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow  # a training subprocess (~15 s on an idle 2-core CPU)
def test_a_second_writer_is_refused_and_a_killed_run_reads_stopped(tmp_path, capsys):
    """A run training in another process: resume and eval are refused naming its pid, and
    status says running; after SIGKILL, status.json holds the last checkpoint's step and
    `linear-ssl status` says "stopped at step N (process gone)"; the resume then runs, and
    metrics.jsonl has each step once."""
    run = tmp_path / "run"
    overrides = [*TINY, "epochs=1000", "max_steps=100000", "checkpoint.every=3"]
    proc = train_until_checkpoint(overrides, run)
    try:
        with pytest.raises(RunLockedError, match=f"being written by pid {proc.pid} ") as err:
            resume(run, ["max_steps=6"])
        _one_line(str(err.value))
        assert main(["eval", str(run)]) == 2
        assert f"pid {proc.pid}" in _one_line(capsys.readouterr().err)
        assert main(["status", str(run)]) == 0
        assert "running" in capsys.readouterr().out
    finally:
        proc.kill()
        proc.wait(timeout=30)
    status = json.loads((run / "status.json").read_text())
    checkpoints = sorted((run / "checkpoints").glob("step_*.pt"))
    assert status["state"] == "running" and status["step"] == int(checkpoints[-1].stem[5:]) > 0
    assert main(["status", str(run)]) == 0
    out = _one_line(capsys.readouterr().out)
    assert f"stopped at step {status['step']}" in out and "(process gone)" in out
    end = status["step"] + 2
    assert main(["train", "--resume", str(run), f"max_steps={end}"]) == 0
    assert "(process gone)" in capsys.readouterr().out  # the resume path says so too
    steps = load_run(run).metrics["step"].tolist()
    assert steps == list(range(1, end + 1))
    assert describe_state(run).endswith(f"finished at step {end} of {end}")
    assert not (run / LOCK_FILE).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    """A lock file naming a pid that no longer exists on this host: status says stopped,
    and the next writer takes the lock (holding it, a second one is refused)."""
    writer = RunWriter(tmp_path)
    writer.write_config("name: x\n")
    writer.write_status("running", step=7, total_steps=10)
    holder = {"pid": _dead_pid(), "host": socket.gethostname()}
    (tmp_path / LOCK_FILE).write_text(json.dumps(holder))
    assert "stopped at step 7 of 10 (process gone)" in describe_state(tmp_path)
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        code = f"from linear_ssl.runs import run_lock\nwith run_lock({str(tmp_path)!r}): pass"
        other = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and "being written by pid" in other.stderr
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize(
    "bad",
    [
        "model.depth=19",  # passes validation, fails building the network
        "data.name=imagefolder",  # a data error: the folder does not exist
    ],
)
def test_a_failed_start_leaves_no_run_directory(tmp_path, capsys, bad):
    """A start that fails before its first step removes what it created: no stub blocks a
    rerun; a run_dir given empty is left empty."""
    base = ["train", "smoke", *TINY, "max_steps=2", bad, f"data.root={tmp_path / 'absent'}"]
    run, empty = tmp_path / "run", tmp_path / "empty"
    assert main([*base, f"run_dir={run}"]) == 2
    _one_line(capsys.readouterr().err)
    assert not run.exists()
    empty.mkdir()
    assert main([*base, f"run_dir={empty}"]) == 2
    assert empty.is_dir() and not any(empty.iterdir())


def test_repeated_metrics_steps_are_deduplicated_with_a_warning(tmp_path):
    writer = RunWriter(tmp_path)
    writer.write_config("name: x\n")
    for step, loss in ((10, -1.0), (20, -2.0), (30, -3.0), (20, -2.5), (30, -3.5), (40, -4.0)):
        writer.append_metrics({"step": step, "loss": loss})
    with pytest.warns(UserWarning, match=r"repeats steps \[20, 30\]"):
        metrics = load_run(tmp_path).metrics
    assert metrics["step"].tolist() == [10, 20, 30, 40]
    assert metrics["loss"].tolist() == [-1.0, -2.5, -3.5, -4.0]  # the last row of each


def test_resume_overrides_learning_rate_and_length_and_records_them(tmp_path, capsys):
    """optim.lr and max_steps change on resume: the rows after the checkpoint have the new
    lr (schedule none: lr = optim.lr), config.yaml holds the effective config and
    config_history.jsonl the step and overrides; other keys are refused, changing nothing."""
    run = train_from_cli(
        "smoke",
        [*TINY, "max_steps=4", "checkpoint.every=2", "optim.lr=0.05", f"run_dir={tmp_path}"],
    )
    before = (run / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"'model.width=8' is not allowed.*optim.lr") as err:
        resume(run, ["optim.lr=0.01", "model.width=8"])
    _one_line(str(err.value))
    assert main(["train", "--resume", str(run), "optim.momentum=0.5"]) == 2
    assert "optim.momentum=0.5" in _one_line(capsys.readouterr().err)
    assert (run / "config.yaml").read_text() == before
    assert not (run / "config_history.jsonl").exists()
    resume(run, ["optim.lr=0.01", "max_steps=6"])
    metrics = load_run(run).metrics.set_index("step")
    assert metrics.loc[[1, 2, 3, 4], "lr"].tolist() == [0.05] * 4
    assert metrics.loc[[5, 6], "lr"].tolist() == [0.01] * 2
    config = load_run(run).config
    assert config["optim"]["lr"] == 0.01 and config["max_steps"] == 6
    history = [json.loads(line) for line in (run / "config_history.jsonl").open()]
    assert [(h["step"], h["overrides"]) for h in history] == [(4, ["optim.lr=0.01", "max_steps=6"])]
    cfg = load_config(run / "config.yaml")
    assert cfg.optim.lr == 0.01  # a later plain resume keeps the effective config


def test_a_run_directory_in_use_refuses_a_new_run(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(ValueError, match="not empty"):  # the lock file is in it
            train(load_config(None, [*TINY, "max_steps=1", f"run_dir={tmp_path}"]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad_step", [1, 3])
def test_a_failure_in_the_first_step_leaves_no_stub_but_a_later_one_keeps_the_run(
    tmp_path, monkeypatch, bad_step
):
    """An error in step 1 (a first batch that does not decode, say) removes the run
    directory; one at step 3 keeps it, with status.json "failed" at step 2 and its message."""
    from linear_ssl.train.loop import Trainer

    original = Trainer.train_step

    def failing(self, batch):
        if self.step + 1 == bad_step:
            raise ValueError("cannot decode image broken.jpg (test): replace or remove it")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", failing)
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="broken.jpg"):
        train(load_config(None, [*TINY, "max_steps=4", f"run_dir={run}"]))
    if bad_step == 1:
        assert not run.exists()
    else:
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "failed" and status["step"] == 2
        assert "broken.jpg" in status["message"] and not (run / LOCK_FILE).exists()
