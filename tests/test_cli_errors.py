"""Bad input to `linear-ssl` is exit status 2 with one line on stderr, never a traceback:
the reported cases of `simulate`, and a fuzz test (hypothesis, bounded) of random bad
values per config field for `train` and per flag for `simulate`, which also asserts that
a refused `train` leaves no run directory behind."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl.cli import main  # noqa: E402
from linear_ssl.theory import Hyper, modes  # noqa: E402


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--p0", "nan"], "--p0 nan is invalid"),  # was: "--p0 has 1 values but --s0 has 3"
        (["--s0", "1", "inf", "1"], "--s0 1.0 inf 1.0 is invalid"),
        (["--points", "0"], "--points 0 is invalid"),  # was: "t must be a 1-D array"
        (["--t-end", "-5"], "--t-end -5.0 is invalid"),
        (["--t-end", "nan"], "--t-end nan is invalid"),
        (["--eta", "abc"], "argument --eta: invalid float value: 'abc'"),  # was: usage block
    ],
)
def test_simulate_bad_flags_name_the_flag(capsys, argv, says):
    assert main(["simulate", *argv]) == 2
    assert says in _error_line(capsys)


def test_simulate_out_into_a_missing_folder_creates_it(tmp_path, capsys):
    """--out a/b/flow.csv with a/b absent: the folder is made and the table is T7's."""
    out = tmp_path / "a" / "b" / "flow.csv"
    assert main(["simulate", "--p0", "0.3", "--s0", "0.7", "--points", "5", "--out", str(out)]) == 0
    sol = modes.integrate(Hyper(eta=0.01), np.array([0.3]), np.array([0.7]), np.linspace(0, 50, 5))
    np.testing.assert_allclose(pd.read_csv(out)["p"], sol.p[:, 0], rtol=1e-12)


# ----------------------------------------------------------------------------- fuzz
_WORDS = {"nan", "inf", "null", "none", "true", "false", "yes", "no", "on", "off", "y", "n"}
words = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda w: w not in _WORDS
)
not_a_number = words | st.sampled_from(["1x", "0.5.5", "--1"])
non_finite = st.sampled_from(["nan", "inf", "-inf"])


def _floats(**bounds) -> st.SearchStrategy[str]:
    return st.floats(allow_nan=False, allow_infinity=False, **bounds).map(repr)


def _ints(**bounds) -> st.SearchStrategy[str]:
    return st.integers(**bounds).map(str)


positive = _floats(max_value=0.0) | non_finite | not_a_number
unit_interval = _floats(max_value=-1e-9) | _floats(min_value=1.0) | non_finite | not_a_number
non_negative_float = _floats(max_value=-1e-9) | non_finite | not_a_number
positive_int = _ints(max_value=0) | _floats(min_value=0.1, max_value=9.9) | not_a_number
non_negative_int = _ints(max_value=-1) | not_a_number
boolean = words.filter(lambda w: w not in ("t", "f"))


def _pairs(specs: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[tuple[str, str]]:
    """(name, bad value) with the name drawn first, then a value from its strategy."""
    return st.sampled_from(sorted(specs)).flatmap(lambda k: st.tuples(st.just(k), specs[k]))


def _choice(*allowed: str) -> st.SearchStrategy[str]:
    return words.filter(lambda w: w not in allowed)


TRAIN_FIELDS: dict[str, st.SearchStrategy[str]] = {
    **dict.fromkeys(["optim.lr", "predictor.lr", "eval.online_probe_lr"], positive),
    **dict.fromkeys(["optim.momentum", "method.ema", "predictor.rho", "record.rho"], unit_interval),
    "optim.weight_decay": non_negative_float,
    **dict.fromkeys(
        [
            "batch_size",
            "predictor.freq",
            "record.log_every",
            "checkpoint.every",
            "checkpoint.keep",
            "data.limit",
            "model.width",
            "model.projector_out",
            "augment.image_size",
            "eval.knn_k",
        ],
        positive_int,
    ),
    **dict.fromkeys(
        ["epochs", "max_steps", "record.every", "optim.warmup_steps", "data.workers"],
        non_negative_int,
    ),
    "seed": not_a_number,
    "model.depth": st.integers(-5, 200).filter(lambda d: d not in (18, 34, 50, 101)).map(str),
    "model.stem": _choice("cifar", "imagenet"),
    "data.name": _choice("cifar10", "cifar100", "stl10", "imagefolder", "embedded"),
    "augment.recipe": _choice("cifar10", "stl10", "byol"),
    "augment.crop_scale": st.sampled_from(["[0.5]", "[0.9,0.1]", "[0,1]", "[0.1,2]", "abc"]),
    "optim.name": _choice("sgd", "lars"),
    "optim.schedule": _choice("none", "cosine"),
    "method.name": _choice("byol", "simsiam"),
    "method.target_init": _choice("copy", "independent"),
    "predictor.kind": _choice("closed_form", "linear", "mlp", "none"),
    "predictor.rule": _choice("ns", "ne", "copy"),
    "speed.amp": _choice("fp32", "bf16"),
    "distributed.backend": _choice("auto", "nccl", "gloo"),
    "device": _choice("auto", "cpu", "cuda", "mps"),
    **dict.fromkeys(["model.bn_affine", "record.progress", "eval.online_probe"], boolean),
}


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(sorted(TRAIN_FIELDS)).flatmap(lambda k: st.tuples(st.just(k), TRAIN_FIELDS[k]))
)
def test_fuzz_train_rejects_bad_values_in_one_line_leaving_no_run_directory(
    tmp_path, capsys, field_value
):
    key, value = field_value
    run = tmp_path / "run"
    argv = ["train", "smoke", *TINY_MODEL, "max_steps=1", "data.limit=32", f"run_dir={run}"]
    assert main([*argv, f"{key}={value}"]) == 2, (key, value)
    line = _error_line(capsys)
    assert key.rsplit(".", 1)[-1] in line or value in line, line  # it names what was wrong
    assert not run.exists(), (key, value)


SIMULATE_FLAGS: dict[str, st.SearchStrategy[str]] = {
    "--alpha-p": positive,
    "--beta": positive,
    "--eta": non_negative_float,
    "--sigma2": non_negative_float,
    "--tau0": non_finite | not_a_number,
    "--t-end": positive,
    "--points": _ints(max_value=1) | not_a_number,
    "--p0": non_finite | not_a_number,
    "--s0": non_finite | not_a_number,
}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_pairs(SIMULATE_FLAGS))
def test_fuzz_simulate_rejects_bad_flags_in_one_line(flag_value):
    flag, value = flag_value
    argv = ["simulate", "--points", "3", "--t-end", "1"]
    if flag in ("--p0", "--s0"):
        argv += ["--p0", "0.5", "--s0", "0.5"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([*argv, f"{flag}={value}"])
    assert code == 2, (flag, value)
    line = err.getvalue().strip()
    assert line and "\n" not in line and "Traceback" not in line, line
    assert flag in line or flag[2:].replace("-", "_") in line, line  # it names the flag
