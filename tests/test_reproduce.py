"""experiments/reproduce_table8.py: the [T] Table 8 commands are the experiment configs
plus valid overrides, its paper column is theory.md section 6, and --quick runs the whole
pipeline (train -> offline probe -> table) on the embedded data."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("torch")

from linear_ssl.train.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "reproduce_table8.py"


@pytest.fixture(scope="module")
def t8():
    spec = importlib.util.spec_from_file_location("reproduce_table8", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper_column_is_theory_section_6(t8):
    """PAPER holds [T] Table 8's CIFAR-10 rows of theory.md section 6, number for number."""
    text = (ROOT / "docs" / "theory.md").read_text()
    label = {
        "directpred": "CIFAR-10 DirectPred |",
        "directpred_freq5": "CIFAR-10 DirectPred freq=5",
        "linear": "CIFAR-10 trained linear predictor",
    }
    for config, row in t8.PAPER.items():
        line = next(ln for ln in text.splitlines() if label[config] in ln)
        pairs = [(float(m), float(s)) for m, s in re.findall(r"(\d+\.\d+) \+- (\d+\.\d+)", line)]
        assert pairs == [row[100], row[300], row[500]]


def test_dry_run_prints_the_configs_and_their_overrides(t8, capsys, tmp_path):
    """One `linear-ssl train cifar10/<config>` per (config, seed), whose overrides load
    into a valid config with the seed, epochs, data root and run folder asked for."""
    runs = tmp_path / "runs"
    argv = ["--data", "/data/cifar", "--epochs", "300", "--seeds", "3", "4", "--runs", str(runs)]
    assert t8.main([*argv, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    jobs = [(c, s) for c in ("directpred", "directpred_freq5", "linear") for s in (3, 4)]
    assert len(lines) == len(jobs) and not runs.exists()
    for line, (config, seed) in zip(lines, jobs, strict=True):
        words = shlex.split(line)
        assert words[:3] == ["linear-ssl", "train", f"cifar10/{config}"]
        cfg = load_config(words[2], words[3:])
        assert (cfg.seed, cfg.epochs, cfg.data.root) == (seed, 300, "/data/cifar")
        assert cfg.run_dir == str(runs / f"{config}-seed{seed}") and cfg.eval.at_end
        assert cfg.predictor.kind == ("linear" if config == "linear" else "closed_form")
        assert cfg.predictor.freq == (5 if config == "directpred_freq5" else 1)


def test_set_adds_overrides_that_validate(t8, capsys, tmp_path):
    """--set passes more overrides (here the JPEG zips of an ImageFolder copy); they load."""
    extra = ["data.name=imagefolder", "data.root=/z/train.zip", "data.test_root=/z/test.zip"]
    t8.main(["--seeds", "0", "--runs", str(tmp_path), "--dry-run", "--set", *extra])
    for line in capsys.readouterr().out.splitlines():
        words = shlex.split(line)
        assert all(item in words for item in extra)
        cfg = load_config(words[2], words[3:])
        assert (cfg.data.name, cfg.data.root, cfg.data.test_root) == (
            "imagefolder",
            "/z/train.zip",
            "/z/test.zip",
        )
    with pytest.raises(SystemExit):
        t8.main(["--dry-run", "--set", "data.name"])


def test_quick_run_trains_probes_and_prints_the_table(t8, capsys, tmp_path):
    """--quick: three tiny runs, each probed (eval.json at step 3); the table has one row
    a method beside the paper's 100-epoch numbers; a second call has nothing left to run,
    and a run without its eval.json is resumed and evaluated."""
    runs = tmp_path / "runs"
    assert t8.main(["--quick", "--seeds", "0", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    for config in t8.PAPER:
        result = json.loads((runs / f"{config}-seed0" / "eval.json").read_text())
        assert result["step"] == 3 and 0 <= result["probe_final"] <= 100
    table = out[out.index("[T] Table 8") :].splitlines()
    for label, config in zip(table[2:5], t8.PAPER, strict=True):
        mean, std = t8.PAPER[config][100]
        assert f"{mean:.2f} +- {std:.2f}" in label and label.rstrip().endswith("1")
    t8.main(["--quick", "--seeds", "0", "--runs", str(runs), "--dry-run"])
    assert capsys.readouterr().out == ""
    (runs / "linear-seed0" / "eval.json").unlink()
    t8.main(["--quick", "--seeds", "0", "--runs", str(runs), "--dry-run"])
    assert capsys.readouterr().out.split() == [
        "linear-ssl",
        "train",
        "--resume",
        str(runs / "linear-seed0"),
        "linear-ssl",
        "eval",
        str(runs / "linear-seed0"),
    ]
