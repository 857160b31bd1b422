"""The bridge: the eigen-mode flow of theory.md section 2 seeded from a training run.

``compare_run(RUN)`` reads a run directory (``linear_ssl.runs``), takes the theory's inputs
from it and puts the flow's prediction beside the measurement:

- the flow's hyper-parameters are T1's map of the run's real ones (``Run.hyper``);
- the seed is the spectra record at step t0 (``seed_from_run``): per tracked eigenvector
  u_j of the recorded F_hat (``mode_*`` arrays, same mode through training), s_j, p_j =
  u_j^T Wp u_j and tau_j = u_j^T C_to u_j / s_j;
- the flow: T7 (``modes.integrate``) for a trained predictor, or, for a closed-form
  predictor (``predictor.kind: closed_form``), the rule's own reduced flow
  (``rule_flow``): p_j is not a state there but the rule applied to the current spectrum,
  and only s and tau evolve;
- flow time is mapped back to training steps with ``Hyper.step_of_time``.

The recorded F_hat is E[f f^T] over both augmented views, W (X + X') W^T, while T7's s_j
is an eigenvalue of F = W X W^T; likewise C_to = Wa X W^T = tau F. Under A2 (X = I,
X' = sigma2 I) the seed is therefore s_j = s_hat_j / (1 + sigma2) and tau_j = (1 + sigma2)
tau_hat_j; with sigma2 = 0 (the default for a network, whose sigma2 is unknown) they are
the recorded values as they are. A run written by ``write_linear_run`` stores its sigma2
in its config (``theory.sigma2``) and compare uses it.

The agreement (``Comparison.agreement``) is measured, never assumed: per-mode relative
errors; the fit of the measured (p_j, s_j) to T8's parabola s = p^2 / alpha_p; the trend
of the commutator ||[F_hat, Wp]|| (T6); the collapsed fraction by T9 / by the flow against
the modes the run lost; and how far the run is from the assumptions A1-A3.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from linear_ssl import diagnostics
from linear_ssl.predictors import PredictorRule, get_rule
from linear_ssl.runs import Run, RunWriter, load_run
from linear_ssl.theory import modes as theory_modes
from linear_ssl.theory import sgd
from linear_ssl.theory.modes import ModeSolution
from linear_ssl.theory.params import Hyper

__all__ = [
    "LOST_THRESHOLD",
    "Comparison",
    "aligned_init",
    "parabola_fit",
    "Seed",
    "compare_cli",
    "compare_run",
    "linear_record",
    "rule_flow",
    "rule_from_config",
    "rule_spectrum",
    "seed_from_run",
    "write_linear_run",
]

FlowKind = Literal["auto", "t7", "rule"]

LOST_THRESHOLD = 1e-3
"""A mode is lost (collapsed) when its s_j falls below this fraction of the largest s_k
among the compared modes at the last record (measured and predicted alike)."""

QUANTITIES = ("s", "p", "tau")


# --------------------------------------------------------------------------- the seed


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


def _require_spectra(run: Run, keys: Sequence[str]) -> None:
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


def _measured(run: Run, sigma2: float) -> dict[str, np.ndarray]:
    """Measured T7 states per record (R, d): s, p, tau, converted with sigma2."""
    sp = run.spectra
    return {
        "s": np.asarray(sp["mode_s"], dtype=float) / (1.0 + sigma2),
        "p": np.asarray(sp["mode_p"], dtype=float),
        "tau": np.asarray(sp["mode_tau"], dtype=float) * (1.0 + sigma2),
    }


def _sigma2_of(run: Run, sigma2: float | None) -> float:
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
    SimSiam runs get tau = 1.
    """
    run = run if isinstance(run, Run) else load_run(run)
    _require_spectra(run, ("mode_s", "mode_p", "mode_tau"))
    steps = run.spectra.steps
    step = int(steps[0]) if t0_step is None else int(t0_step)
    if step not in steps:
        raise ValueError(f"t0_step={step} is not a record step: records are at {steps.tolist()}")
    i0 = int(np.flatnonzero(steps == step)[0])
    h_simsiam = run.config.get("method", {}).get("name") == "simsiam"
    sigma2 = _sigma2_of(run, sigma2)
    m = _measured(run, sigma2)
    s, p, tau = m["s"][i0], m["p"][i0], m["tau"][i0]
    usable = (s > 0) & np.isfinite(p) & (h_simsiam | (tau > 0))
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
    tau_seed = np.ones(index.size) if h_simsiam else tau[index]
    return Seed(step, index, p[index].copy(), s[index].copy(), tau_seed.copy(), sigma2)


# --------------------------------------------------------------------------- closed-form flows


def rule_from_config(config: dict[str, Any]) -> PredictorRule | None:
    """The R-rule of a closed-form run's config (without its R10 EMA), or None (not closed
    form, or R1's partition variant: a piecewise predictor, no per-mode p)."""
    pred = config.get("predictor") or {}
    if pred.get("kind") != "closed_form" or "partitions" in (pred.get("params") or {}):
        return None
    params = {k: v for k, v in dict(pred.get("params") or {}).items() if k != "ema"}
    return get_rule(pred["rule"], **params)


def rule_spectrum(
    rule: PredictorRule, s: np.ndarray, tau: np.ndarray | float = 1.0, sigma2: float = 0.0
) -> np.ndarray:
    """p_j that ``rule`` sets when F_hat and C_to share eigenvectors (A1-A3).

    The rule is applied, as it is in training, to F_hat = diag((1 + sigma2) s) and
    C_to = diag(tau s); every R-rule maps commuting diagonal inputs to a diagonal Wp, whose
    diagonal is returned (e.g. R1 DirectPred: p_j = sqrt(s_j / s_max) + eps). Computed on
    the diagonals (``rule.spectrum``, O(n)) when the rule offers it, else on the matrices.
    """
    s = np.asarray(s, dtype=float)
    f = (1.0 + sigma2) * s
    c = np.broadcast_to(tau, s.shape) * s if rule.needs_cross else None
    if getattr(rule, "has_spectrum", False):
        return np.asarray(rule.spectrum(f, c), dtype=float)
    return np.diagonal(rule(np.diag(f), None if c is None else np.diag(c))).copy()


def rule_flow(
    h: Hyper,
    rule: PredictorRule,
    s0: np.ndarray,
    t: np.ndarray,
    tau0: np.ndarray | float = 1.0,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> ModeSolution:
    """T7 with the predictor set by a closed-form rule: p_j = rule(s, tau)_j at each instant.

    Only s and tau evolve (T7's second and third lines, with the rule's p):
    d log s_j / dt = 2 Delta_j (T10's Delta, so s stays positive) and
    dtau_j / dt = beta (1 - tau_j) - tau_j Delta_j. The rule couples the modes (R1's s_max,
    R2's norm), so every mode of s0 is integrated together (scipy's RK45). Assumes the rule
    is applied every step from the same F_hat the flow tracks (freq = 1, F_hat ~ F).
    Returns a ``modes.ModeSolution`` with p the rule's output along the trajectory.
    """
    s0 = np.asarray(s0, dtype=float)
    if s0.ndim != 1 or np.any(~(s0 > 0)):
        raise ValueError("s0 must be a 1-D array of positive eigenvalues (one per mode)")
    tau0 = np.broadcast_to(np.asarray(tau0, dtype=float), s0.shape).copy()
    if h.simsiam and np.any(tau0 != 1):
        raise ValueError("SimSiam (beta None) has tau == 1: drop tau0 or give Hyper a beta")
    t = np.asarray(t, dtype=float)
    n = s0.size
    c1 = 1.0 + h.sigma2

    def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.exp(y[:n]), (np.ones(n) if h.simsiam else y[n:])

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        s, tau = split(y)
        p = rule_spectrum(rule, s, tau, h.sigma2)
        delta = p * (tau - c1 * p) - h.eta
        if h.simsiam:
            return 2.0 * delta
        return np.concatenate([2.0 * delta, h.beta * (1.0 - tau) - tau * delta])

    y0 = np.log(s0) if h.simsiam else np.concatenate([np.log(s0), tau0])
    sol = solve_ivp(rhs, (t[0], t[-1]), y0, t_eval=t, rtol=rtol, atol=atol, method="RK45")
    ok = sol.status == 0
    y = np.full((t.size, y0.size), np.nan)
    y[: sol.y.shape[1]] = sol.y.T
    s = np.exp(y[:, :n])
    tau = np.ones_like(s) if h.simsiam else y[:, n:]
    p = np.full_like(s, np.nan)
    for i in range(sol.y.shape[1]):
        p[i] = rule_spectrum(rule, s[i], tau[i], h.sigma2)
    t_fail = np.full(n, np.nan if ok else float(sol.t[-1]) if sol.t.size else 0.0)
    return ModeSolution(t, p, s, tau, np.full(n, ok), t_fail, np.full(n, sol.nfev))


# --------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """The flow seeded from a run, beside the run.

    table: tidy DataFrame (step, mode, quantity in s/p/tau, measured, predicted) over the
    record steps >= t0. per_mode: one row per mode (seed values, relative errors, collapse
    calls). parabola: the T8 fit per record step (scale, r2). agreement: the summary
    (``to_markdown`` prints it, every entry explained). notes: where the run breaks the
    theory's assumptions or the comparison had to approximate.
    """

    run: Run
    hyper: Hyper
    seed: Seed
    flow: str
    table: pd.DataFrame
    per_mode: pd.DataFrame
    parabola: pd.DataFrame
    agreement: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        return _markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()


def _relative_rms(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """Per column: sqrt(mean_t (pred - meas)^2) / sqrt(mean_t meas^2) (nan if none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        num = np.sqrt(np.nanmean((pred - meas) ** 2, axis=0))
        den = np.sqrt(np.nanmean(meas**2, axis=0))
        return num / den


def parabola_fit(p: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """T8: least-squares scale k of s = k p^2 (through the origin) and its R^2.

    R^2 = 1 - sum (s - k p^2)^2 / sum (s - mean s)^2; the theory's k is 1 / alpha_p.
    """
    keep = np.isfinite(p) & np.isfinite(s)
    x, y = p[keep] ** 2, s[keep]
    if x.size < 2 or not np.any(x > 0):
        return math.nan, math.nan
    k = float(x @ y / (x @ x))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - k * x) ** 2)) / total if total > 0 else math.nan
    return k, r2


def _lost(s: np.ndarray, threshold: float) -> np.ndarray:
    """Modes whose s_j is below threshold * max_k s_k (NaN counts as lost)."""
    top = np.nanmax(s) if np.any(np.isfinite(s)) else np.nan
    return ~(s >= threshold * top)


def _collapse_t9(h: Hyper, seed: Seed) -> np.ndarray:
    """T9's collapse basin at the seeded tau: p_j < p_-(tau_j), or no p_- at all (eta past
    the threshold tau^2 / (4 (1 + sigma2)), or tau <= 0). Exact on the parabola with tau
    held fixed; applied to the seeded p_j as the theory's one-line call."""
    p_minus, _ = theory_modes.fixed_points(h, 1.0 if h.simsiam else seed.tau)
    p_minus = np.broadcast_to(p_minus, seed.p.shape)
    return ~(seed.p >= p_minus)


def _commutator_trend(steps: np.ndarray, comm: np.ndarray) -> float:
    """Slope of log ||[F, Wp]|| per 1000 training steps (least squares; < 0: aligning)."""
    keep = np.isfinite(comm) & (comm > 0)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(steps[keep] / 1000.0, np.log(comm[keep]), 1)[0])


def _offdiag_fraction(matrix: np.ndarray) -> float:
    """Share of ||U^T Wp U||_F^2 off the diagonal (0 when Wp shares F's eigenvectors)."""
    total = float(np.sum(matrix.astype(float) ** 2))
    diag = float(np.sum(np.diagonal(matrix).astype(float) ** 2))
    return math.nan if total == 0 else 1.0 - diag / total


def _network_note(config: dict[str, Any]) -> str:
    model = config.get("model")
    if (config.get("theory") or {}).get("linear_model"):
        return "linear model (A1-A3 testable; data X = I, X' = sigma2 I)"
    if not model:
        return "not a linear-model run and no model config: A1-A3 are not guaranteed"
    depth = model.get("depth", "?")
    return (
        f"non-linear network (ResNet-{depth}, projector {model.get('projector_hidden', '?')}"
        f"->{model.get('projector_out', '?')}): T7 describes its projector output only "
        "through the linear model, and its data are not isotropic (A2)"
    )


def compare_run(
    run_dir: str | Path | Run,
    t0_step: int | None = None,
    modes: int | Sequence[int] | None = None,
    flow: FlowKind = "auto",
    sigma2: float | None = None,
    convention: str = "torch",
    lost_threshold: float = LOST_THRESHOLD,
) -> Comparison:
    """Seed the flow from a run at t0_step, integrate it over the run's later records, compare.

    flow: "t7" (modes.integrate, p free), "rule" (``rule_flow``, closed-form runs only) or
    "auto" (rule for closed-form predictors, else t7). sigma2: X' = sigma2 I for the seed
    conversion and the flow (None: the run config's theory.sigma2, else 0). convention: T1's
    ("torch" default, or "paper"). lost_threshold: a mode is lost when its s_j is below
    this fraction of the largest s_k of the compared modes at the last record (measured
    and predicted alike; ``LOST_THRESHOLD``).
    """
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    sigma2 = _sigma2_of(run, sigma2)
    seed = seed_from_run(run, t0_step, modes, sigma2)
    h = run.hyper(sigma2=sigma2, convention=convention)
    notes: list[str] = []
    rule = rule_from_config(run.config)
    if flow not in ("auto", "t7", "rule"):
        raise ValueError(f"flow={flow!r} is invalid: use 'auto', 't7' or 'rule'")
    if flow == "rule" and rule is None:
        raise ValueError("flow='rule' needs a closed-form predictor run: use flow='t7'")
    use_rule = rule is not None and flow != "t7"

    steps = run.spectra.steps
    later = steps >= seed.step
    rec_steps = steps[later]
    if rec_steps.size < 2:
        raise ValueError(f"t0_step={seed.step} is the last record: choose an earlier one")
    t = h.time_of_step(rec_steps - seed.step).astype(float)
    measured = {k: v[later][:, seed.modes] for k, v in _measured(run, sigma2).items()}

    if use_rule:
        pred_cfg = run.config["predictor"]
        if int(pred_cfg.get("freq", 1)) != 1:
            notes.append(
                f"predictor.freq={pred_cfg['freq']}: the rule flow sets Wp every instant; the "
                "run took SGD steps on Wp between rule applications"
            )
        if (pred_cfg.get("params") or {}).get("ema"):
            notes.append("the rule's R10 EMA is left out of the reduced flow")
        # the rule couples every mode: integrate all usable modes, keep the selected ones
        full = seed_from_run(run, seed.step, None, sigma2)
        sol_all = rule_flow(h, rule, full.s, t, full.tau)
        cols = np.searchsorted(full.modes, seed.modes)
        pred = {"s": sol_all.s[:, cols], "p": sol_all.p[:, cols], "tau": sol_all.tau[:, cols]}
        flow_name = f"rule:{rule.name}"
        ok = sol_all.all_ok
    else:
        tau0 = 1.0 if h.simsiam else seed.tau
        sol = theory_modes.integrate(h, seed.p, seed.s, t, tau0, on_failure="ignore")
        pred = {"s": sol.s, "p": sol.p, "tau": sol.tau}
        flow_name = "t7"
        ok = sol.all_ok
        if rule is not None:
            notes.append(f"flow='t7' on a closed-form run: T7 lets p evolve, {rule.name} sets it")
    if not ok:
        notes.append("the flow blew up for some modes: their predictions are nan from then on")

    table = _tidy(rec_steps, seed.modes, measured, pred)
    later_rows = slice(1, None)  # errors over the steps after t0
    errors = {q: _relative_rms(pred[q][later_rows], measured[q][later_rows]) for q in QUANTITIES}

    lost_run = _lost(measured["s"][-1], lost_threshold)
    lost_flow = _lost(pred["s"][-1], lost_threshold)
    collapsed_t9 = _collapse_t9(h, seed)
    per_mode = pd.DataFrame(
        {
            "mode": seed.modes,
            "s0": seed.s,
            "p0": seed.p,
            "tau0": seed.tau,
            **{f"err_{q}": errors[q] for q in QUANTITIES},
            "collapsed_t9": collapsed_t9,
            "lost_flow": lost_flow,
            "lost_run": lost_run,
        }
    )

    all_m = _measured(run, sigma2)
    para = [parabola_fit(all_m["p"][i], all_m["s"][i]) for i in range(len(steps))]
    parabola = pd.DataFrame(
        {"step": steps, "scale": [k for k, _ in para], "r2": [r for _, r in para]}
    )
    agreement = _agreement(run, h, seed, errors, per_mode, parabola, lost_threshold)
    agreement["flow"] = flow_name
    notes.extend(_assumption_notes(run, h, agreement))
    return Comparison(run, h, seed, flow_name, table, per_mode, parabola, agreement, notes)


def _tidy(steps, mode_index, measured, pred) -> pd.DataFrame:
    R, m = measured["s"].shape
    frames = [
        pd.DataFrame(
            {
                "step": np.repeat(steps, m),
                "mode": np.tile(mode_index, R),
                "quantity": q,
                "measured": measured[q].ravel(),
                "predicted": pred[q].ravel(),
            }
        )
        for q in QUANTITIES
    ]
    return pd.concat(frames, ignore_index=True)


def _usable_count(run: Run, seed: Seed) -> int:
    return len(seed_from_run(run, seed.step, None, seed.sigma2).modes)


def _nan_stat(stat, values: np.ndarray) -> float:
    """stat over the finite values (nan when there are none)."""
    values = np.asarray(values, dtype=float)
    return float(stat(values)) if np.any(np.isfinite(values)) else math.nan


def _agreement(run, h, seed, errors, per_mode, parabola, lost_threshold) -> dict[str, Any]:
    sp = run.spectra
    steps = sp.steps
    later = steps >= seed.step
    a: dict[str, Any] = {
        "t0_step": seed.step,
        "last_step": int(steps[-1]),
        "modes": len(seed.modes),
        "modes_unusable": int(np.asarray(sp["mode_s"]).shape[1] - _usable_count(run, seed)),
        "alpha_p": h.alpha_p,
        "beta": h.beta,
        "eta": h.eta,
        "sigma2": h.sigma2,
        "dt": h.dt,
    }
    top = per_mode.nlargest(min(8, len(per_mode)), "s0")
    for q in QUANTITIES:
        a[f"err_{q}_median"] = (
            float(np.nanmedian(errors[q])) if np.any(np.isfinite(errors[q])) else math.nan
        )
        a[f"err_{q}_top"] = (
            float(np.nanmean(top[f"err_{q}"])) if top[f"err_{q}"].notna().any() else math.nan
        )
    last = parabola.iloc[-1]
    a["parabola_scale"] = float(last["scale"])
    a["parabola_scale_theory"] = 1.0 / h.alpha_p
    a["parabola_r2"] = float(last["r2"])
    if "commutator" in sp:
        comm = np.asarray(sp["commutator"], dtype=float)[later]
        a["commutator_t0"] = float(comm[0])
        a["commutator_last"] = float(comm[-1])
        a["commutator_slope"] = _commutator_trend(steps[later], comm)
        a["commutator_decreases"] = bool(comm[-1] < comm[0])
        if "Wp_singvals" in sp and "F_eigvals" in sp:
            size = np.linalg.norm(sp["F_eigvals"][later][-1]) * np.linalg.norm(
                sp["Wp_singvals"][later][-1]
            )
            a["commutator_relative_last"] = float(comm[-1] / size) if size > 0 else math.nan
    a["collapsed_t9"] = float(per_mode["collapsed_t9"].mean())
    a["lost_flow"] = float(per_mode["lost_flow"].mean())
    a["lost_run"] = float(per_mode["lost_run"].mean())
    a["lost_at_t0"] = float(_lost(seed.s, lost_threshold).mean())
    a["collapse_agreement"] = float((per_mode["lost_flow"] == per_mode["lost_run"]).mean())
    a["lost_threshold"] = lost_threshold
    if "asymmetry" in sp:
        asym = np.asarray(sp["asymmetry"], dtype=float)[later]
        a["asymmetry_mean"] = float(np.nanmean(asym))
        a["asymmetry_max"] = float(np.nanmax(asym))
    if "alignment_matrix" in sp:
        a["offdiag_last"] = _offdiag_fraction(sp["alignment_matrix"][later][-1])
    tau = seed.tau if not h.simsiam else np.asarray(sp["mode_tau"])[later][0][seed.modes]
    a["tau_spread"] = float(np.nanstd(tau))
    a["tau_range"] = (float(np.nanmin(tau)), float(np.nanmax(tau)))
    return a


def _assumption_notes(run: Run, h: Hyper, a: dict[str, Any]) -> list[str]:
    notes = [_network_note(run.config)]
    if "asymmetry_mean" in a:
        notes.append(
            f"A3 (symmetric Wp): measured ||Wp - Wp^T||/||Wp|| = {a['asymmetry_mean']:.3g} "
            f"on average, {a['asymmetry_max']:.3g} at most"
        )
    if "offdiag_last" in a:
        notes.append(
            f"A1/T6 (Wp shares F's eigenvectors): {100 * a['offdiag_last']:.3g}% of "
            "||U^T Wp U||_F^2 lies off the diagonal at the last record"
        )
    lo, hi = a["tau_range"]
    label = "measured tau_hat (SimSiam: T7 uses tau = 1)" if h.simsiam else "seeded tau_j"
    notes.append(
        f"A1 (Wa = tau W per mode): {label} spans [{lo:.3g}, {hi:.3g}], std {a['tau_spread']:.3g}"
    )
    return notes


# --------------------------------------------------------------------------- printing

_DESCRIPTIONS = {
    "flow": "flow integrated (t7: p free; rule:NAME: p set by the closed-form rule)",
    "t0_step": "record step the flow is seeded at",
    "last_step": "last record step compared",
    "modes": "modes compared",
    "alpha_p": "alpha_p (T1)",
    "beta": "beta (T1; None: SimSiam)",
    "eta": "eta (T1)",
    "sigma2": "sigma2 (A2)",
    "dt": "flow time per training step (T1)",
    "err_s_median": "relative RMS error of s_j, median over modes",
    "err_p_median": "relative RMS error of p_j, median over modes",
    "err_tau_median": "relative RMS error of tau_j, median over modes",
    "err_s_top": "relative RMS error of s_j, mean over the 8 largest modes",
    "err_p_top": "relative RMS error of p_j, mean over the 8 largest modes",
    "err_tau_top": "relative RMS error of tau_j, mean over the 8 largest modes",
    "parabola_scale": "T8: fitted k in s = k p^2 at the last record",
    "parabola_scale_theory": "T8: the theory's k = 1/alpha_p",
    "parabola_r2": "T8: R^2 of that fit",
    "commutator_t0": "T6: ||[F_hat, Wp]||_F at t0",
    "commutator_last": "T6: ||[F_hat, Wp]||_F at the last record",
    "commutator_slope": "T6: slope of log ||[F_hat, Wp]|| per 1000 steps (< 0: aligning)",
    "commutator_decreases": "T6: last commutator below the one at t0",
    "commutator_relative_last": "T6: ||[F_hat, Wp]||_F / (||F_hat||_F ||Wp||_F), last record",
    "collapsed_t9": "T9: fraction of modes with p_j < p_-(tau_j) at the seed",
    "modes_unusable": "tracked modes left out at t0 (s_j <= 0, or tau_j <= 0 with an EMA)",
    "lost_flow": "fraction of modes the flow loses by the last step",
    "lost_run": "fraction of modes the run lost by the last step",
    "lost_at_t0": "fraction of modes already below the threshold at t0",
    "collapse_agreement": "fraction of modes where flow and run agree on lost / kept",
    "lost_threshold": "lost: s_j < threshold * max_k s_k",
    "asymmetry_mean": "A3: mean ||Wp - Wp^T||_F / ||Wp||_F",
    "asymmetry_max": "A3: max ||Wp - Wp^T||_F / ||Wp||_F",
    "offdiag_last": "A1/T6: off-diagonal share of ||U^T Wp U||^2, last record",
    "tau_spread": "A1: std of tau_j over modes at t0",
    "tau_range": "A1: (min, max) of tau_j at t0",
}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.4g}"


def _markdown(c: Comparison) -> str:
    name = c.run.config.get("name", c.run.path.name)
    lines = [f"## Theory vs run: {name} ({c.run.path})", ""]
    lines += ["| quantity | value | meaning |", "|---|---|---|"]
    for key, value in c.agreement.items():
        lines.append(f"| {key} | {_fmt(value)} | {_DESCRIPTIONS.get(key, '')} |")
    lines += ["", "Top modes (by s at t0):", ""]
    cols = ["mode", "s0", "p0", "tau0", "err_s", "err_p", "err_tau", "collapsed_t9", "lost_run"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in c.per_mode.nlargest(min(8, len(c.per_mode)), "s0").iterrows():
        lines.append("| " + " | ".join(_fmt(row[k]) for k in cols) + " |")
    if c.notes:
        lines += ["", "Assumptions and approximations:", ""]
        lines += [f"- {note}" for note in c.notes]
    return "\n".join(lines)


def compare_cli(run_dir: str | Path, out_dir: str | Path | None = None) -> int:
    """`linear-ssl compare RUN`: print the agreement table, draw the overlay (PNG and PDF).

    out_dir default RUN/figures/. Returns 0, or 1 with a one-line error on stderr.
    """
    from linear_ssl import plots_runs
    from linear_ssl.plots import save_figure

    try:
        comparison = compare_run(run_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"linear-ssl compare: {err}", file=sys.stderr)
        return 1
    print(comparison.to_markdown())
    out = Path(out_dir) if out_dir is not None else comparison.run.path / "figures"
    fig = plots_runs.draw_overlay(plots_runs.overlay_data(comparison))
    paths = save_figure(fig, out, "overlay")
    print("\n" + "\n".join(f"wrote {p}" for p in paths))
    return 0


# --------------------------------------------------------------------------- linear runs


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
    (torch convention: dt = lr / (1 - momentum)), plus theory: {sigma2, linear_model}.
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
