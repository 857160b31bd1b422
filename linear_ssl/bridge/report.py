"""The comparison's report: the agreement table, every entry explained, as Markdown
(what ``linear-ssl compare RUN`` prints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from linear_ssl.bridge.rule_flow import rule_from_config

__all__ = [
    "CONSTRUCTED",
    "DESCRIPTIONS",
    "RULE_LABELS",
    "agreement_markdown",
    "built_in",
    "by_construction",
    "construction_label",
]

CONSTRUCTED = {
    "symmetry": ("asymmetry_mean", "asymmetry_max"),
    "alignment": (
        "commutator_t0", "commutator_last", "commutator_slope", "commutator_decreases",
        "commutator_relative_last", "offdiag_last",
    ),
    "parabola": ("parabola_scale", "parabola_r2"),
}  # fmt: skip
"""The agreement entries that show each quantity of ``protocol.built_in``."""

DESCRIPTIONS = {
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
    "rankme_run_last": "E9: RankMe of the compared modes' s_j (F_hat), last record",
    "rankme_flow_last": "E9: RankMe the flow predicts for them, last record",
    "rankme_err": "E9: relative RMS error of the flow's RankMe(t) after t0",
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


def agreement_markdown(
    title: str,
    agreement: Mapping[str, Any],
    per_mode: pd.DataFrame,
    notes: Sequence[str] = (),
    constructed: Sequence[str] = (),
    label: str = "",
) -> str:
    """Markdown: the agreement table (``DESCRIPTIONS`` as its meaning column), the 8 top
    modes by seeded s_j, and the notes on assumptions and approximations. constructed: the
    quantities true by construction (``protocol.built_in``): their entries (``CONSTRUCTED``)
    carry ``label`` ("by construction (DirectPred)")."""
    marked = {key for q in constructed for key in CONSTRUCTED[q]}
    lines = [f"## Theory vs run: {title}", ""]
    lines += ["| quantity | value | meaning |", "|---|---|---|"]
    for key, value in agreement.items():
        meaning = DESCRIPTIONS.get(key, "")
        if key in marked:
            meaning += f" — {label}"
        lines.append(f"| {key} | {_fmt(value)} | {meaning} |")
    lines += ["", "Top modes (by s at t0):", ""]
    cols = ["mode", "s0", "p0", "tau0", "err_s", "err_p", "err_tau", "collapsed_t9", "lost_run"]
    cols += ["lost_step_flow", "lost_step_run"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in per_mode.nlargest(min(8, len(per_mode)), "s0").iterrows():
        lines.append("| " + " | ".join(_fmt(row[k]) for k in cols) + " |")
    if notes:
        lines += ["", "Assumptions and approximations:", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


RULE_LABELS = {"directpred": "DirectPred", "directset": "DirectSet", "directcopy": "DirectCopy"}
"""How a figure or table names a closed-form rule (others: their registry name)."""


def built_in(run) -> tuple[str, ...]:
    """theory.md section 8: the quantities a run's closed-form predictor makes true by
    construction, from its config: for a rule of F_hat alone (R1 DirectPred, R2 DirectSet /
    DirectCopy, the [E] iterations on F: Wp a symmetric function of F_hat) "symmetry" (of
    Wp) and "alignment" (of Wp with F_hat's eigenvectors: the commutator, the off-diagonal
    share, [T] Fig. 2's cos(u_j, Wp u_j)); for DirectPred also "parabola" (R1 sets
    p_j = sqrt(s_j / s_max) + eps, so s ~ p^2). Empty for a trained predictor and for a
    rule that reads C_to (R3, R4: Wp = C_to C_oo^-1 need not be symmetric)."""
    pred = run.config.get("predictor") or {}
    if pred.get("kind") != "closed_form":
        return ()
    try:
        rule = rule_from_config(run.config)
    except (KeyError, TypeError, ValueError):  # an unknown rule: claim nothing
        return ()
    if rule is None or rule.needs_cross:
        return ()
    return ("symmetry", "alignment") + (("parabola",) if rule.name == "directpred" else ())


def construction_label(run) -> str:
    """ "by construction (DirectPred)" (the run's rule) when ``built_in(run)`` is not empty,
    else "": the label each such quantity carries on a figure or table."""
    if not built_in(run):
        return ""
    rule = (run.config.get("predictor") or {}).get("rule", "?")
    return f"by construction ({RULE_LABELS.get(rule, rule)})"


def by_construction(run) -> str:
    """theory.md section 8: the note a figure or table of a closed-form run carries, or "":
    which quantities hold by construction (``built_in``) and prove nothing about the
    dynamics."""
    quantities = built_in(run)
    if not quantities:
        return ""
    names = {"symmetry": "Wp's symmetry", "alignment": "its alignment with F_hat",
             "parabola": "s ∝ p²"}  # fmt: skip
    listed = ", ".join(names[q] for q in quantities)
    return f"\n({listed}: {construction_label(run)}, not evidence)"
