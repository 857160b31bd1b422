"""benchmarks/gpu_session.py end to end on tiny settings (CPU, embedded data): each phase
writes its numbers, the Table 8 row is a probe accuracy in [0, 100], and missing zips are
a one-line error naming the file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.py"


def _session():
    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_session_writes_every_phase(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    args = ["--tiny", "--phases", "throughput", "table8", "--budget", "60", "60"]
    assert _session().main([*args, "--runs", str(tmp_path / "runs")]) == 0
    report = json.loads((tmp_path / "out" / "session.json").read_text())
    eager = report["throughput"]["b16-false"]
    assert eager["steps"] == 3 and eager["images_per_s"] > 0
    assert report["table8"]["steps"] == 4  # max_steps of --tiny
    assert 0 <= report["table8"]["eval"]["probe_final"] <= 100
    assert "paper 85.21" in (tmp_path / "out" / "session.md").read_text()
    assert (tmp_path / "out" / "profile.txt").read_text().count("aten::") >= 3


def test_missing_zip_is_named(tmp_path):
    with pytest.raises(SystemExit, match="train.zip, cifar10-jpeg-test.zip missing") as err:
        _session().main(["--phases", "table8", "--budget", "9", "--data", str(tmp_path)])
    assert "\n" not in str(err.value)
