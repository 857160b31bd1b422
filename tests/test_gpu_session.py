"""benchmarks/gpu_session.py on tiny settings (CPU, embedded data): every phase writes its
numbers flat under $OUT within the device tool's return limits, a run stopped at its
budget resumes from the checkpoint of the step it stopped at, the packed zips unpack to
the same bytes, and missing zips are a one-line error naming the files."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.py"
BATCH = 16  # the script's --tiny batch


def _session():
    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path, monkeypatch, *args: str) -> dict:
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    assert _session().main(["--tiny", "--runs", str(tmp_path / "runs"), *args]) == 0
    return json.loads((tmp_path / "out" / "session.json").read_text())


@pytest.mark.slow
def test_tiny_session_writes_every_phase_flat_under_out(tmp_path, monkeypatch):
    """All three phases (about 15 s): the throughput row's rate is batch / step time, the
    Table 8 row is the probe of the run's last step (a top-1 % in [0, 100]) with its
    metrics up to that step, Fig. 2 is drawn, and $OUT holds at most 8 plain files of
    < 16 MiB with plain names (what the device tool returns)."""
    report = _run(tmp_path, monkeypatch, "--budget", "60")
    row = report["throughput"]["b16-false"]
    assert row["steps"] == 3 and row["graphs_traced_while_timed"] == 0
    assert row["images_per_s"] * row["ms_per_step"] / 1e3 == pytest.approx(BATCH)
    t8 = report["table8"]
    assert t8["steps"] == 4 and t8["eval"]["step"] == 4  # max_steps of --tiny
    assert 0 <= t8["eval"]["probe_final"] <= 100 and "stopped" not in t8
    out = tmp_path / "out"
    assert json.loads((out / "table8_eval.json").read_text()) == t8["eval"]
    assert pd.read_csv(out / "table8_metrics.csv")["step"].iloc[-1] == 4
    assert report["fig2"]["steps"] == 4
    assert "paper 85.21" in (out / "session.md").read_text()
    assert (out / "profile.txt").read_text().count("aten::") >= 3
    entries = list(out.iterdir())
    assert {p.name for p in entries} >= {"session.json", "fig2_spectra.png", "profile.txt"}
    assert len(entries) <= 8 and all(p.is_file() for p in entries)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in entries)
    assert all(p.stat().st_size < 16 << 20 for p in entries)


def test_a_run_stopped_at_its_budget_resumes_from_that_step(tmp_path, monkeypatch):
    """A budget spent after the first step stops the run at step 1 with a checkpoint (the
    probe reads it); the same command again resumes from step 1 to max_steps 4."""
    first = _run(tmp_path, monkeypatch, "--phases", "table8", "--budget", "0.001")["table8"]
    assert first["steps"] == 1 and first["eval"]["step"] == 1
    assert first["stopped"].startswith("stopped at step 1")
    second = _run(tmp_path, monkeypatch, "--phases", "table8", "--budget", "60")["table8"]
    assert second["resumed_from"] == 1 and second["steps"] == 4
    assert second["eval"]["step"] == 4 and "stopped" not in second


def test_packed_zips_unpack_to_the_same_bytes(tmp_path, monkeypatch):
    """--pack gzips each zip; a missing zip is restored from its .gz and checked by its
    sha256; a .gz that does not match is a one-line error."""
    import hashlib

    session = _session()
    source = tmp_path / "shared"
    source.mkdir()
    blobs = {name: bytes(range(256)) * (i + 3) for i, name in enumerate(session.SHA256)}
    for name, blob in blobs.items():
        (source / name).write_bytes(blob)
    digests = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    monkeypatch.setattr(session, "SHA256", digests)
    data = tmp_path / "data"
    assert session.main(["--pack", str(source), "--data", str(data)]) == 0
    assert sorted(p.name for p in data.iterdir()) == sorted(f"{n}.gz" for n in blobs)
    session.unpack(data)
    assert all((data / name).read_bytes() == blob for name, blob in blobs.items())
    name = next(iter(blobs))
    (data / name).unlink()
    monkeypatch.setitem(digests, name, "0" * 64)
    with pytest.raises(SystemExit, match="does not unpack to") as err:
        session.unpack(data)
    assert "\n" not in str(err.value)


def test_missing_zip_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    args = ["--phases", "table8", "--budget", "9", "--data", str(tmp_path / "data")]
    with pytest.raises(SystemExit, match="train.zip, cifar10-jpeg-test.zip missing") as err:
        _session().main([*args, "--runs", str(tmp_path / "runs")])
    assert "\n" not in str(err.value)
