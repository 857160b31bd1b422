"""Synthetic runs of the linear model: minibatch SGD (``theory.sgd``) written in the
trainer's run format, so the bridge can be checked on a run whose theory is exact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linear_ssl import diagnostics
from linear_ssl.runs import RunWriter
from linear_ssl.theory import sgd
from linear_ssl.theory.params import Hyper

__all__ = ["aligned_init", "linear_method_facts", "linear_record", "write_linear_run"]


def linear_record(
    W: np.ndarray,
    Wp: np.ndarray,
    Wa: np.ndarray,
    X: np.ndarray,
    Xp: np.ndarray,
    tracker: diagnostics.EigenTracker,
) -> dict[str, np.ndarray]:
    """A spectra record of the linear model, in the trainer's names (docs/run_format.md).

    Exact expectations in place of the trainer's running estimates: F_hat = E[f f^T] over
    the two views = W (X + X') W^T, C_to = E[f_a f^T] = Wa X W^T; the arrays are those of
    ``diagnostics.spectra_record``, as in train.recorder.
    """
    return diagnostics.spectra_record(W @ (X + Xp) @ W.T, Wa @ X @ W.T, Wp, tracker)


def linear_method_facts(h: Hyper) -> dict[str, Any]:
    """The ``method_facts`` block of a linear-model run (docs/run_format.md): an EMA target
    unless h is SimSiam, and T1's squared error (its flow has no loss constant: c_L = 1)."""
    return {
        "name": "simsiam" if h.simsiam else "byol",
        "ema_target": not h.simsiam,
        "loss": "squared",
        "c_loss": 1.0,
    }


def _config_yaml(config: dict[str, Any]) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config))


def write_linear_run(
    run_dir: str | Path,
    h: Hyper,
    W0: np.ndarray,
    Wp0: np.ndarray,
    Wa0: np.ndarray,
    *,
    lr: float,
    steps: int,
    batch: int,
    momentum: float = 0.0,
    record_every: int = 10,
    seed: int = 0,
    name: str = "linear",
) -> Path:
    """Train the linear model by minibatch SGD (``theory.sgd.simulate``, X = I,
    X' = h.sigma2 I) and write it as a run directory the trainer's readers accept.

    config.yaml holds the optim / method / predictor settings ``Run.hyper`` maps back to h
    (torch convention: dt = lr / (1 - momentum)), the ``method_facts`` block, plus
    theory: {sigma2, linear_model}.
    spectra/ holds ``linear_record`` every record_every steps (step 0 included);
    metrics.jsonl the expected loss J (T1's objective) at each record.
    """
    run_dir = Path(run_dir)
    result = sgd.simulate(
        h, W0, Wp0, Wa0, lr=lr, steps=steps, batch=batch, momentum=momentum,
        seed=seed, record_every=record_every,
    )  # fmt: skip
    n1 = result.W.shape[-1]
    X, Xp = np.eye(n1), h.sigma2 * np.eye(n1)
    writer = RunWriter(run_dir)
    config = {
        "name": name,
        "method": {"name": "simsiam" if h.simsiam else "byol", "ema": result.ema or 0.0},
        "method_facts": linear_method_facts(h),
        "predictor": {"kind": "linear", "lr": result.predictor_lr, "rho": 0.0, "freq": 1},
        "optim": {
            "name": "sgd",
            "lr": lr,
            "momentum": momentum,
            "weight_decay": result.weight_decay,
        },
        "batch_size": batch,
        "max_steps": steps,
        "seed": seed,
        "record": {"every": record_every},
        "theory": {"sigma2": h.sigma2, "linear_model": True},
    }
    writer.write_config(_config_yaml(config))
    tracker = diagnostics.EigenTracker()
    for i, step in enumerate(result.steps):
        W, Wp, Wa = result.W[i, 0], result.Wp[i, 0], result.Wa[i, 0]
        writer.write_spectra(int(step), linear_record(W, Wp, Wa, X, Xp, tracker))
        loss = 0.5 * np.trace(Wp @ W @ (X + Xp) @ W.T @ Wp.T) - np.trace(Wp @ W @ X @ Wa.T)
        loss += 0.5 * np.trace(Wa @ (X + Xp) @ Wa.T)
        writer.append_metrics({"step": int(step), "loss": float(loss), "lr": lr})
    writer.write_status("finished", step=int(steps), total_steps=int(steps))
    return run_dir


def aligned_init(
    s0: Sequence[float],
    p0: Sequence[float],
    tau0: Sequence[float] | float = 1.0,
    n1: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W0, Wp0, Wa0) whose F = W W^T and Wp share random eigenvectors: F = U diag(s0) U^T,
    Wp = U diag(p0) U^T, Wa = U diag(tau0 sqrt(s0)) V^T (A1-A3 hold exactly at t = 0)."""
    s0, p0 = np.asarray(s0, dtype=float), np.asarray(p0, dtype=float)
    if s0.shape != p0.shape or s0.ndim != 1 or np.any(s0 < 0):
        raise ValueError("s0 and p0 must be 1-D of one length, s0 >= 0")
    n2 = s0.size
    n1 = n2 if n1 is None else n1
    if n1 < n2:
        raise ValueError(f"n1={n1} must be >= len(s0)={n2}")
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n2, n2)))[0]
    V = np.linalg.qr(rng.standard_normal((n1, n2)))[0]
    tau0 = np.broadcast_to(np.asarray(tau0, dtype=float), s0.shape)
    W0 = U @ np.diag(np.sqrt(s0)) @ V.T
    return W0, U @ np.diag(p0) @ U.T, U @ np.diag(tau0 * np.sqrt(s0)) @ V.T
