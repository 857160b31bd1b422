"""The theory's initial condition taken from a run's spectra record (theory.md section 2).

Per tracked eigenvector u_j of the recorded F_hat (``mode_*`` arrays, same mode through
training): s_j, p_j = u_j^T Wp u_j and tau_j = u_j^T C_to u_j / s_j (T7's states).

The recorded F_hat is E[f f^T] over both augmented views, W (X + X') W^T, while T7's s_j
is an eigenvalue of F = W X W^T; likewise C_to = Wa X W^T = tau F. Under A2 (X = I,
X' = sigma2 I) the seed is therefore s_j = s_hat_j / (1 + sigma2) and tau_j = (1 + sigma2)
tau_hat_j; with sigma2 = 0 (the default for a network, whose sigma2 is unknown) they are
the recorded values as they are. A run written by ``write_linear_run`` stores its sigma2
in its config (``theory.sigma2``) and the bridge uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linear_ssl.runs import Run, load_run

__all__ = ["Seed", "measured_states", "require_spectra", "seed_from_run", "sigma2_of"]


@dataclass(frozen=True)
class Seed:
    """The theory's initial condition taken from a run at record step ``step``.

    modes: indices of the tracked modes (columns of the ``mode_*`` records) kept; p, s, tau:
    their T7 states (s and tau converted with sigma2, see the module docstring); sigma2:
    the isotropic augmentation variance (A2) the conversion used.
    """

    step: int
    modes: np.ndarray
    p: np.ndarray
    s: np.ndarray
    tau: np.ndarray
    sigma2: float = 0.0


def require_spectra(run: Run, keys: Sequence[str]) -> None:
    """One-line ValueError unless the run has spectra records holding ``keys``."""
    if len(run.spectra.steps) == 0:
        raise ValueError(
            f"{run.path} has no spectra records (spectra/step_*.npz): train it with "
            "record.every > 0 to compare it with the theory"
        )
    missing = [k for k in keys if k not in run.spectra]
    if missing:
        kind = run.config.get("predictor", {}).get("kind", "?")
        raise ValueError(
            f"{run.path} records no {', '.join(missing)} (predictor.kind={kind!r}): compare "
            "needs a matrix predictor (linear or closed_form) and the trainer's mode_* records"
        )


def measured_states(run: Run, sigma2: float) -> dict[str, np.ndarray]:
    """Measured T7 states per record (R, d): s, p, tau, converted with sigma2."""
    sp = run.spectra
    return {
        "s": np.asarray(sp["mode_s"], dtype=float) / (1.0 + sigma2),
        "p": np.asarray(sp["mode_p"], dtype=float),
        "tau": np.asarray(sp["mode_tau"], dtype=float) * (1.0 + sigma2),
    }


def sigma2_of(run: Run, sigma2: float | None) -> float:
    """sigma2 as given, else the run config's theory.sigma2, else 0; checked >= 0."""
    if sigma2 is None:
        sigma2 = (run.config.get("theory") or {}).get("sigma2", 0.0)
    sigma2 = float(sigma2)
    if not (math.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2={sigma2!r} is invalid: it must be a finite number >= 0")
    return sigma2


def seed_from_run(
    run: Run | str | Path,
    t0_step: int | None = None,
    modes: int | Sequence[int] | None = None,
    sigma2: float | None = None,
) -> Seed:
    """The T7 seed at record step t0_step (default: the first record).

    modes: None (every usable mode), an int k (the k largest usable s_j at t0) or explicit
    mode indices. Usable: s_j > 0 and, for an EMA target, tau_j > 0 (T7's tau equation
    runs to -infinity in finite time from tau < 0, and A1 has no meaning there).
    Runs without an EMA target (``Run.method_facts``: SimSiam) get tau = 1.
    """
    run = run if isinstance(run, Run) else load_run(run)
    require_spectra(run, ("mode_s", "mode_p", "mode_tau"))
    steps = run.spectra.steps
    step = int(steps[0]) if t0_step is None else int(t0_step)
    if step not in steps:
        raise ValueError(f"t0_step={step} is not a record step: records are at {steps.tolist()}")
    i0 = int(np.flatnonzero(steps == step)[0])
    no_target = not run.method_facts["ema_target"]
    sigma2 = sigma2_of(run, sigma2)
    m = measured_states(run, sigma2)
    s, p, tau = m["s"][i0], m["p"][i0], m["tau"][i0]
    usable = (s > 0) & np.isfinite(p) & (no_target | (tau > 0))
    if modes is None:
        index = np.flatnonzero(usable)
    elif isinstance(modes, (int, np.integer)):
        if modes < 1:
            raise ValueError(f"modes={modes} is invalid: give a positive count or indices")
        order = np.argsort(-np.where(usable, s, -np.inf), kind="stable")
        index = np.sort(order[: min(int(modes), int(usable.sum()))])
    else:
        index = np.asarray(modes, dtype=int)
        if index.ndim != 1 or np.any((index < 0) | (index >= s.size)):
            raise ValueError(f"modes={list(modes)} is invalid: indices must be in [0, {s.size})")
        bad = index[~usable[index]]
        if bad.size:
            raise ValueError(
                f"modes {bad.tolist()} have s <= 0 or tau <= 0 at step {step}: drop them"
            )
    if index.size == 0:
        raise ValueError(f"no mode has s > 0 and tau > 0 at step {step}: nothing to seed")
    tau_seed = np.ones(index.size) if no_target else tau[index]
    return Seed(step, index, p[index].copy(), s[index].copy(), tau_seed.copy(), sigma2)
