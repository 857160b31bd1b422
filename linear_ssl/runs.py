"""The run directory: written by linear_ssl.train, read back by bridge/figures/notebooks.

Layout (docs/run_format.md is the schema)::

    RUN/config.yaml                 the resolved config (plain YAML)
    RUN/status.json                 {"state": "running"|"finished"|"failed", "step", ...}
    RUN/metrics.jsonl               one JSON object per logged step
    RUN/spectra/step_XXXXXXXX.npz   one NPZ per record step (arrays named in the schema)
    RUN/checkpoints/step_XXXXXXXX.pt
    RUN/eval.json                   linear probe / kNN results (linear-ssl eval)
    RUN/config_history.jsonl        one line per resume: its step and overrides
    RUN/writer.lock                 while a process writes the run: its pid and host

Every file is written atomically (temporary file + os.replace) or, for metrics.jsonl,
appended one whole line per write() call; a reader ignores a final line without its
newline. Nothing here imports torch: a run is readable with NumPy, pandas and PyYAML-free
OmegaConf alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import re
import socket
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CONFIG_FILE = "config.yaml"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
SPECTRA_DIR = "spectra"
CHECKPOINT_DIR = "checkpoints"
HISTORY_FILE = "config_history.jsonl"
LOCK_FILE = "writer.lock"
#: ``method_facts`` of runs written before config.yaml carried that block (the trainer now
#: writes each method class's own facts, ``Method.facts()``; docs/run_format.md).
LEGACY_METHOD_FACTS = {
    "byol": {"name": "byol", "ema_target": True, "loss": "normalised", "c_loss": 4.0},
    "simsiam": {"name": "simsiam", "ema_target": False, "loss": "normalised", "c_loss": 4.0},
}
_STEP_FILE = re.compile(r"^step_(\d{8})\.(npz|pt)$")


def step_file(step: int, suffix: str) -> str:
    """File name of a per-step file: step_00000100.npz / step_00000100.pt."""
    return f"step_{step:08d}.{suffix}"


def _steps_in(folder: Path, suffix: str) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        match = _STEP_FILE.match(path.name)
        if match and match.group(2) == suffix:
            out.append((int(match.group(1)), path))
    return sorted(out)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _append_line(path: Path, row: Mapping[str, Any]) -> None:
    """One JSON line, written with a single write() on an O_APPEND descriptor."""
    line = (json.dumps(dict(row), allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class RunWriter:
    """Appends metrics and writes spectra / status into a run directory (the trainer's side)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        (self.dir / SPECTRA_DIR).mkdir(parents=True, exist_ok=True)
        (self.dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)

    def write_config(self, yaml_text: str) -> None:
        atomic_write_text(self.dir / CONFIG_FILE, yaml_text)

    def write_status(self, state: str, **info: Any) -> None:
        atomic_write_text(self.dir / STATUS_FILE, json.dumps({"state": state, **info}) + "\n")

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        _append_line(self.dir / METRICS_FILE, row)

    def write_spectra(self, step: int, arrays: Mapping[str, np.ndarray]) -> None:
        """One NPZ per record step; ``step`` is stored inside it as well."""
        buffer = io.BytesIO()
        np.savez(buffer, step=np.int64(step), **arrays)
        atomic_write_bytes(self.dir / SPECTRA_DIR / step_file(step, "npz"), buffer.getvalue())

    def append_history(self, step: int, overrides: list[str]) -> None:
        """A line of config_history.jsonl: a resume at ``step`` with its overrides."""
        row = {"step": step, "overrides": list(overrides), "time": time.strftime("%FT%T%z")}
        _append_line(self.dir / HISTORY_FILE, row)

    def truncate_after(self, step: int) -> None:
        """Drop every metrics row and spectra record newer than ``step`` (on resume)."""
        for s, path in _steps_in(self.dir / SPECTRA_DIR, "npz"):
            if s > step:
                path.unlink()
        metrics = self.dir / METRICS_FILE
        if metrics.exists():
            kept = [json.dumps(r) for r in _read_jsonl(metrics) if r["step"] <= step]
            atomic_write_text(metrics, "".join(line + "\n" for line in kept))
        for tmp in self.dir.rglob(".*.tmp*"):  # leftovers of a killed write
            tmp.unlink()

    def checkpoint_path(self, step: int) -> Path:
        return self.dir / CHECKPOINT_DIR / step_file(step, "pt")

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of every complete checkpoint, oldest first."""
        return _steps_in(self.dir / CHECKPOINT_DIR, "pt")

    def write_eval(self, results: Mapping[str, Any]) -> Path:
        path = self.dir / EVAL_FILE
        atomic_write_text(path, json.dumps(dict(results), indent=2) + "\n")
        return path


class RunLockedError(RuntimeError):
    """Another live process is writing this run directory."""


_HELD: dict[Path, int] = {}  # run directories this process has locked, with a depth


def _holder(path: Path) -> dict[str, Any]:
    """The pid and host a lock file names ({} when empty or unreadable)."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM  # exists, owned by someone else
    return True


def _describe_holder(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The {"pid", "host"} of the live process writing ``run_dir``, or None when none is
    (no lock file, or a stale one: its flock is free, the killed process is gone)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(path) or {}
    else:
        holder = _holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    # free flock: stale, unless its pid lives on this host (a file system without flock)
    here = holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)
    return holder if here and holder["pid"] != os.getpid() and _pid_alive(holder["pid"]) else None


def _acquire(run_dir: Path) -> int:
    """Take RUN/writer.lock (exclusive flock, our pid and host inside); its descriptor."""
    path = run_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _describe_holder(_holder(path))
            raise RunLockedError(
                f"run directory {run_dir} is being written by {holder}: wait for it to end "
                f"or stop it (linear-ssl status {run_dir})"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous writer removed the file we opened: take the new one
    holder = _holder(path)
    live = holder.get("host") == socket.gethostname() and holder.get("pid") != os.getpid()
    if live and isinstance(holder.get("pid"), int) and _pid_alive(holder["pid"]):
        os.close(fd)  # its flock was not seen (a file system without flock): still refuse
        raise RunLockedError(
            f"run directory {run_dir} is being written by {_describe_holder(holder)}: wait "
            "for it to end or stop it"
        )
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    os.fsync(fd)
    return fd


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's single-writer lock for the block (docs/run_format.md).

    A second process is refused with a one-line ``RunLockedError``; a lock left by a killed
    process is taken over (flock is released by the kernel, and its pid is gone). Nested
    use in one process (``train`` then its ``evaluate_run``) is allowed.
    """
    key = Path(run_dir).expanduser().resolve()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = _acquire(key)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            (key / LOCK_FILE).unlink()  # while still holding it: the next writer starts fresh
        os.close(fd)


def run_state(run_dir: str | Path) -> dict[str, Any]:
    """status.json, with ``state`` "stopped" (and ``message`` "process gone") for a run that
    says running but whose writer is gone (killed); a live writer adds ``pid`` / ``host``."""
    path = Path(run_dir).expanduser()
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a run directory: it has no {CONFIG_FILE}")
    status = _read_json(path / STATUS_FILE) or {"state": "not started", "step": 0}
    if status.get("state") == "running":
        holder = lock_holder(path)
        if holder is None:
            status = {**status, "state": "stopped", "message": "process gone"}
        else:
            status = {**status, **holder}
    return status


def describe_state(run_dir: str | Path) -> str:
    """One line: running / finished / failed / stopped at step N (``linear-ssl status``)."""
    st = run_state(run_dir)
    state, step = st.get("state"), st.get("step", 0)
    total = f" of {st['total_steps']}" if "total_steps" in st else ""
    if state == "running":
        return f"{run_dir}: running, step {step}{total} ({_describe_holder(st)})"
    if state == "stopped":
        return (
            f"{run_dir}: stopped at step {step}{total} (process gone): resume with "
            f"linear-ssl train --resume {run_dir}"
        )
    if state == "failed":
        return f"{run_dir}: failed at step {step}: {st.get('message', '')}"
    return f"{run_dir}: {state} at step {step}{total}"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a final line without its newline (a torn write) is ignored."""
    text = path.read_text()
    lines = text.split("\n")[:-1]  # the last piece is "" or a torn line
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(
                f"{path} line {number} is not JSON: the run's metrics are corrupt"
            ) from None
    return rows


@dataclass
class Spectra(Mapping[str, np.ndarray]):
    """The spectra records of a run: ``spectra["F_eigvals"]`` is (R, d), stacked over steps.

    ``steps`` (R,) are the record steps. Keys are the arrays named in docs/run_format.md;
    a quantity missing at some record steps is not offered.
    """

    steps: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise KeyError(f"no spectra quantity {key!r}: available are {sorted(self.arrays)}")
        return self.arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def at(self, step: int) -> dict[str, np.ndarray]:
        """Every quantity at one record step."""
        index = np.flatnonzero(self.steps == step)
        if index.size == 0:
            raise KeyError(
                f"no spectra record at step {step}: records are at {self.steps.tolist()}"
            )
        return {k: v[index[0]] for k, v in self.arrays.items()}


def _load_spectra(folder: Path) -> Spectra:
    records: list[dict[str, np.ndarray]] = []
    steps = []
    for step, path in _steps_in(folder, "npz"):
        try:
            with np.load(path, allow_pickle=False) as npz:
                records.append({k: npz[k] for k in npz.files if k != "step"})
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"spectra record {path} is corrupt ({err}): delete it") from None
        steps.append(step)
    if not records:
        return Spectra(np.zeros(0, dtype=np.int64))
    keys = [k for k in records[0] if all(k in r for r in records)]
    arrays = {}
    for key in keys:
        shapes = {r[key].shape for r in records}
        if len(shapes) == 1:
            arrays[key] = np.stack([r[key] for r in records])
    return Spectra(np.asarray(steps, dtype=np.int64), arrays)


@dataclass
class Run:
    """A run directory read back: ``config`` (dict), ``metrics`` (DataFrame), ``spectra``."""

    path: Path
    config: dict[str, Any]
    metrics: pd.DataFrame
    spectra: Spectra
    status: dict[str, Any]
    eval: dict[str, Any] | None

    @property
    def method_facts(self) -> dict[str, Any]:
        """What the run's method is (name, ema_target, loss, c_loss of theory.md N1), from
        config.yaml's ``method_facts``; for older runs, from ``LEGACY_METHOD_FACTS``."""
        facts = self.config.get("method_facts")
        if facts:
            return dict(facts)
        name = (self.config.get("method") or {}).get("name", "byol")
        if name not in LEGACY_METHOD_FACTS:
            raise ValueError(
                f"{self.path / CONFIG_FILE} has no method_facts and method.name={name!r} is "
                f"not one of {sorted(LEGACY_METHOD_FACTS)}: rewrite the run with the trainer"
            )
        return dict(LEGACY_METHOD_FACTS[name])

    def hyper(self, sigma2: float = 0.0, convention: str = "torch"):
        """T1: the flow's Hyper for this run's real lr / predictor lr / ema / wd / momentum.

        Runs without an EMA target (``method_facts``: SimSiam) give ema None (beta None,
        tau == 1). A config without a ``predictor``
        section (or without ``predictor.lr``) trains the predictor at the backbone's lr, as
        the trainer does, so alpha_p = 1. A missing ``optim`` or ``method`` entry is a
        one-line ValueError naming it.
        """
        from linear_ssl.theory.params import Hyper

        optim = self._section("optim", ("lr", "weight_decay", "momentum"))
        self._section("method", ("name",))
        predictor = self.config.get("predictor") or {}
        predictor_lr = predictor.get("lr") or optim["lr"]
        ema = self._section("method", ("ema",))["ema"] if self.method_facts["ema_target"] else None
        return Hyper.from_training(
            lr=optim["lr"],
            predictor_lr=predictor_lr,
            ema=ema,
            weight_decay=optim["weight_decay"],
            momentum=optim["momentum"],
            sigma2=sigma2,
            convention=convention,
        )

    def _section(self, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
        """config[name], after checking it holds ``keys`` (one-line ValueError otherwise)."""
        section = self.config.get(name)
        missing = [k for k in keys if not isinstance(section, dict) or k not in section]
        if missing:
            names = ", ".join(f"{name}.{k}" for k in missing)
            raise ValueError(
                f"{self.path / CONFIG_FILE} has no {names}: Run.hyper needs the training "
                "config (optim.lr, weight_decay, momentum; method.name, ema)"
            )
        return section


def read_yaml(path: str | Path) -> Any:
    """A YAML file through OmegaConf's safe loader, as a container; a syntax or constructor
    error (a ``!!python`` tag, a duplicate key) is a one-line ValueError naming the file and
    line."""
    import yaml
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
        raise ValueError(f"{where}: {problem} (not valid YAML)") from None


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory (see the module docstring); one-line errors when it is not one."""
    from omegaconf import OmegaConf

    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {path} does not exist")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{path} is not a run directory: it has no {CONFIG_FILE}")
    try:
        config = OmegaConf.to_container(read_yaml(config_path), resolve=True)
    except ValueError as err:
        raise ValueError(f"{err}: the run is corrupt") from None
    except Exception as err:  # noqa: BLE001 - an interpolation that does not resolve
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{config_path} does not resolve ({first}): the run is corrupt") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} does not hold a mapping: the run is corrupt")
    metrics_path = path / METRICS_FILE
    rows = _read_jsonl(metrics_path) if metrics_path.exists() else []
    metrics = _unique_steps(pd.DataFrame(rows), metrics_path)
    status = _read_json(path / STATUS_FILE) or {}
    return Run(
        path,
        config,
        metrics,
        _load_spectra(path / SPECTRA_DIR),
        status,
        _read_json(path / EVAL_FILE),
    )


def _unique_steps(metrics: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Metrics with one row per step: repeated steps (two processes once wrote the run) keep
    their last row, with a warning naming them."""
    if metrics.empty or "step" not in metrics or not metrics["step"].duplicated().any():
        return metrics
    repeated = sorted(set(metrics.loc[metrics["step"].duplicated(), "step"].tolist()))
    warnings.warn(
        f"{path} repeats steps {repeated}: two processes wrote this run; kept the last row "
        "of each step",
        stacklevel=3,
    )
    unique = metrics.drop_duplicates("step", keep="last").sort_values("step", kind="stable")
    return unique.reset_index(drop=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ValueError(f"{path} is not JSON: the run is corrupt") from None
