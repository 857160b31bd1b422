"""The comparison: the flow seeded from a run (``seed``), integrated over the run's later
records, beside what the run measured (theory.md sections 2 and 3).

- the flow's hyper-parameters are T1's map of the run's real ones (``Run.hyper``);
- the flow: T7 (``modes.integrate``) for a trained predictor, or, for a closed-form
  predictor, the rule's own reduced flow (``rule_flow``);
- flow time is mapped back to training steps with ``Hyper.step_of_time``.

The agreement (``Comparison.agreement``) is measured, never assumed: per-mode relative
errors; the fit of the measured (p_j, s_j) to T8's parabola s = p^2 / alpha_p; the trend
of the commutator ||[F_hat, Wp]|| (T6); the collapsed fraction by T9 / by the flow against
the modes the run lost; and how far the run is from the assumptions A1-A3. The same spectra
give the rank the flow predicts (E9: ``Comparison.rank``, RankMe of the compared modes, run
and flow, beside the recorded batch RankMe) and the step each mode is lost (per_mode's
``lost_step_flow`` / ``lost_step_run``, ``diagnostics.mode_loss_times``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linear_ssl import diagnostics
from linear_ssl.bridge import report
from linear_ssl.bridge.rule_flow import rule_flow, rule_from_config
from linear_ssl.bridge.seed import Seed, measured_states, seed_from_run, sigma2_of
from linear_ssl.runs import Run, load_run
from linear_ssl.theory import modes as theory_modes
from linear_ssl.theory.params import Hyper

__all__ = ["LOST_THRESHOLD", "Comparison", "compare_run", "parabola_fit"]

FlowKind = Literal["auto", "t7", "rule"]

LOST_THRESHOLD = 1e-3
"""A mode is lost (collapsed) when its s_j falls below this fraction of the largest s_k
among the compared modes at the last record (measured and predicted alike)."""

QUANTITIES = ("s", "p", "tau")


@dataclass
class Comparison:
    """The flow seeded from a run, beside the run.

    table: tidy DataFrame (step, mode, quantity in s/p/tau, measured, predicted) over the
    record steps >= t0. per_mode: one row per mode (seed values, relative errors, collapse
    calls, the step each is lost). parabola: the T8 fit per record step (scale, r2).
    agreement: the summary (``to_markdown`` prints it, every entry explained). notes: where
    the run breaks the theory's assumptions or the comparison had to approximate. rank:
    E9 per record step >= t0 (``_rank_table``).
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
    rank: pd.DataFrame | None = None

    def to_markdown(self) -> str:
        """The agreement table, the top modes and the notes, as Markdown."""
        name = self.run.config.get("name", self.run.path.name)
        note = report.by_construction(self.run).strip()
        return report.agreement_markdown(
            f"{name} ({self.run.path})",
            self.agreement,
            self.per_mode,
            [*self.notes, *([note] if note else [])],
            constructed=report.built_in(self.run),
            label=report.construction_label(self.run),
        )

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


def _rankme_rows(s) -> np.ndarray:
    """E9 per row of s (records x modes), nan where a row is not finite (a flow that
    stopped: nan from its failure on)."""
    s = np.asarray(s, dtype=float)
    out = np.full(s.shape[0], np.nan)
    finite = np.all(np.isfinite(s), axis=1)
    if finite.any():
        out[finite] = diagnostics.rankme_spectrum(s[finite])
    return out


def _rank_table(run: Run, steps: np.ndarray, later: np.ndarray, s_run, s_flow) -> pd.DataFrame:
    """E9 over the record steps >= t0: RankMe of the compared modes' s_j, measured (from the
    tracked F_hat eigenvalues) and predicted by the flow (``diagnostics.rankme_spectrum``,
    the uncentred RankMe of the features F_hat averages), and the recorded RankMe of the
    record step's projector features (``projector_rankme``; nan when not recorded)."""
    batch = run.spectra["projector_rankme"][later] if "projector_rankme" in run.spectra else np.nan
    return pd.DataFrame(
        {
            "step": steps,
            "rankme_run": _rankme_rows(s_run),
            "rankme_flow": _rankme_rows(s_flow),
            "projector_rankme": batch,
        }
    )


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
    sigma2 = sigma2_of(run, sigma2)
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
    measured = {k: v[later][:, seed.modes] for k, v in measured_states(run, sigma2).items()}

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
            "lost_step_flow": seed.step
            + h.step_of_time(diagnostics.mode_loss_times(t, pred["s"], lost_threshold)),
            "lost_step_run": diagnostics.mode_loss_times(rec_steps, measured["s"], lost_threshold),
        }
    )
    rank = _rank_table(run, rec_steps, later, measured["s"], pred["s"])

    all_m = measured_states(run, sigma2)
    para = [parabola_fit(all_m["p"][i], all_m["s"][i]) for i in range(len(steps))]
    parabola = pd.DataFrame(
        {"step": steps, "scale": [k for k, _ in para], "r2": [r for _, r in para]}
    )
    agreement = _agreement(run, h, seed, errors, per_mode, parabola, lost_threshold)
    agreement["flow"] = flow_name
    agreement["rankme_run_last"] = float(rank["rankme_run"].iloc[-1])
    agreement["rankme_flow_last"] = float(rank["rankme_flow"].iloc[-1])
    agreement["rankme_err"] = float(
        _relative_rms(rank["rankme_flow"].to_numpy()[1:], rank["rankme_run"].to_numpy()[1:])
    )
    notes.extend(_assumption_notes(run, h, agreement))
    return Comparison(
        run, h, seed, flow_name, table, per_mode, parabola, agreement, notes, rank=rank
    )


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
