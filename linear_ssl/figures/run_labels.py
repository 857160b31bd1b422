"""What the run figures share: reading a run, checking its records, and its labels
(method, predictor, EMA and the T1 flow values of its hyper-parameters)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from linear_ssl.runs import Run, load_run

__all__ = ["RunLike", "load", "need", "run_label", "run_title", "settings_lines"]

RunLike = Run | str | Path


def load(run: RunLike) -> Run:
    """The run itself, or the run directory read back."""
    return run if isinstance(run, Run) else load_run(run)


def need(run: Run, keys: Sequence[str], figure: str) -> None:
    """One-line ValueError unless the run's spectra records hold ``keys``."""
    missing = [k for k in keys if k not in run.spectra]
    if len(run.spectra.steps) == 0 or missing:
        what = ", ".join(missing) if missing else "any spectra record"
        raise ValueError(
            f"{run.path} has no {what}: {figure} needs them (train with record.every > 0 "
            "and a matrix predictor)"
        )


def run_label(run: Run) -> str:
    """Short legend label from the config: method, predictor, EMA, alpha_p."""
    cfg = run.config
    pred = cfg.get("predictor", {})
    kind = pred.get("kind", "?")
    head = pred.get("rule", kind) if kind == "closed_form" else kind
    if pred.get("symmetric"):
        head += " (sym.)"
    try:
        ema_target = run.method_facts["ema_target"]
    except ValueError:
        ema_target = True
    ema = f"EMA {cfg.get('method', {}).get('ema', '?')}" if ema_target else "no EMA"
    try:
        alpha = f", α_p={run.hyper().alpha_p:g}"
    except (KeyError, TypeError, ValueError):
        alpha = ""
    return f"{cfg.get('name', run.path.name)}: {head}, {ema}{alpha}"


def run_title(run: Run) -> str:
    """Title line with the run's training hyper-parameters and their T1 flow values."""
    cfg = run.config
    optim = cfg.get("optim", {})
    parts = [f"lr={optim.get('lr', '?')}", f"momentum={optim.get('momentum', '?')}"]
    parts.append(f"wd={optim.get('weight_decay', '?')}")
    try:
        h = run.hyper()
        beta = "None (SimSiam)" if h.beta is None else f"{h.beta:.3g}"
        flow = f"α_p={h.alpha_p:.3g}, β={beta}, η={h.eta:.3g}"
    except (KeyError, TypeError, ValueError):
        flow = "flow hyper-parameters unavailable"
    return f"{run_label(run)}\n{', '.join(parts)}  →  T1: {flow}"


def settings_lines(title: str) -> str:
    """The hyper-parameter line of a ``run_title`` (its second line), split before T1."""
    return title.split("\n", 1)[-1].replace("  →  T1:", "\nT1:")
