"""Files people download and share never run code: a pickle whose unpickling would create
a marker file is refused with a one-line error on every path that reads a run (resume,
eval, load_run, compare / the bridge), and the marker never appears; old checkpoints load
only through the explicit, documented conversion (docs/run_format.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl import bridge  # noqa: E402
from linear_ssl.cli import main  # noqa: E402
from linear_ssl.runs import load_run  # noqa: E402
from linear_ssl.train import evaluate_run, load_config, resume, train_from_cli  # noqa: E402
from linear_ssl.train.checkpoint import convert_checkpoint, load_checkpoint  # noqa: E402

TINY = [*TINY_MODEL, "data.limit=64", "record.every=2", "checkpoint.every=2", "max_steps=4"]


class Payload:
    """Unpickling this object calls open(marker, "w"): the file appears iff code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_from_cli("smoke", [*TINY, f"run_dir={tmp_path_factory.mktemp('r') / 'run'}"])


@pytest.fixture
def run(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def _newest_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step_*.pt"))[-1]


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text, text
    return text


@pytest.mark.parametrize("path", ["resume", "eval", "cli resume", "cli eval"])
def test_a_malicious_checkpoint_is_refused_and_never_runs(run, tmp_path, capsys, path):
    marker = tmp_path / "marker"
    torch.save({"format": 2, "step": 4, "method": Payload(marker)}, _newest_checkpoint(run))
    if path.startswith("cli"):
        argv = ["train", "--resume", str(run)] if path == "cli resume" else ["eval", str(run)]
        assert main(argv) == 2
        message = _one_line(capsys.readouterr().err)
    else:
        with pytest.raises(ValueError) as err:
            resume(run) if path == "resume" else evaluate_run(run, probe_epochs=1, knn_k=1)
        message = _one_line(str(err.value))
    assert "refused" in message and "open" in message and "--trust-source" in message
    assert not marker.exists()


def test_a_malicious_spectra_record_or_config_is_refused_by_load_run_and_the_bridge(
    run, tmp_path, capsys
):
    """An NPZ holding a pickled object array and a config.yaml with a !!python tag: load_run,
    compare_run (the bridge) and `linear-ssl compare` refuse both; no code runs."""
    marker = tmp_path / "marker"
    record = sorted((run / "spectra").glob("*.npz"))[-1]
    with open(record, "wb") as fh:
        np.savez(fh, F_eigvals=np.array([Payload(marker)], dtype=object))
    for read in (load_run, bridge.compare_run):
        with pytest.raises(ValueError, match="corrupt") as err:
            read(run)
        _one_line(str(err.value))
    assert main(["compare", str(run)]) != 0
    _one_line(capsys.readouterr().err)
    record.unlink()
    (run / "config.yaml").write_text(
        f"name: !!python/object/apply:builtins.open ['{marker}', 'w']\n"
    )
    with pytest.raises(ValueError, match=r"config.yaml line 1: .*constructor") as err:
        load_run(run)
    _one_line(str(err.value))
    with pytest.raises(ValueError, match="line 1"):
        resume(run)
    assert not marker.exists()


def test_yaml_syntax_errors_name_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("name: x\noptim: {lr: 0.1\nseed: 1\n")
    with pytest.raises(ValueError, match=r"exp.yaml line 3"):
        load_config(config)
    assert main(["train", str(config), f"run_dir={tmp_path / 'r'}"]) == 2
    assert "exp.yaml line 3" in _one_line(capsys.readouterr().err)
    config.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ValueError, match=r"exp.yaml line 2: found duplicate key"):
        load_config(config)
    assert not (tmp_path / "r").exists()


def test_an_old_checkpoint_converts_only_by_explicit_trust(run, tmp_path, capsys):
    """A format-1 checkpoint (the recorder's eigenbasis a NumPy array) is refused by the safe
    loader, naming the conversion; converting it needs --trust-source; the converted file
    loads safely with the same basis (as a tensor) and the run resumes from it."""
    newest = _newest_checkpoint(run)
    state = load_checkpoint(newest)
    basis = state["recorder"]["tracker"]["basis"].numpy()
    old = {**state, "format": 1}
    old["recorder"] = {**state["recorder"], "tracker": {"basis": basis}}
    torch.save(old, newest)
    with pytest.raises(ValueError, match="numpy.*--trust-source") as err:
        load_checkpoint(newest)
    _one_line(str(err.value))
    converted = tmp_path / "converted.pt"
    assert main(["convert-checkpoint", str(newest), str(converted)]) == 2
    assert "--trust-source" in _one_line(capsys.readouterr().err)
    assert not converted.exists()
    assert main(["convert-checkpoint", str(newest), str(converted), "--trust-source"]) == 0
    new = load_checkpoint(converted)
    assert new["format"] == 2
    np.testing.assert_array_equal(new["recorder"]["tracker"]["basis"].numpy(), basis)
    for key, value in state["method"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, new["method"][key]), key
    shutil.move(converted, newest)
    resume(run, ["max_steps=6"])  # it trains on from the converted checkpoint
    assert load_run(run).status == {"state": "finished", "step": 6, "total_steps": 6}
    with pytest.raises(ValueError, match="not over itself"):
        convert_checkpoint(newest, newest, trust_source=True)
