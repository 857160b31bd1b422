"""Closed-form predictors in the eigen-mode flow: T7 with p_j set by an R-rule (N2's last
remark; theory.md section 3).

For a closed-form predictor (``predictor.kind: closed_form``) p_j is not a state: it is the
rule applied to the current spectrum, and only s and tau evolve (``rule_flow``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linear_ssl.predictors import PredictorRule, get_rule
from linear_ssl.theory.modes import ModeSolution
from linear_ssl.theory.params import Hyper
from linear_ssl.theory.solvers import DEFAULT_MAX_STEPS, OnFailure, handle_failure, rk45_batched

__all__ = ["rule_flow", "rule_from_config", "rule_spectrum"]


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
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "ignore",
) -> ModeSolution:
    """T7 with the predictor set by a closed-form rule: p_j = rule(s, tau)_j at each instant.

    Only s and tau evolve (T7's second and third lines, with the rule's p):
    d log s_j / dt = 2 Delta_j (T10's Delta, so s stays positive) and
    dtau_j / dt = beta (1 - tau_j) - tau_j Delta_j. The rule couples the modes (R1's s_max,
    R2's norm), so the modes of s0 are one system of the shared batched RK45
    (``solvers.rk45_batched``; its step budget max_steps). Assumes the rule is applied
    every step from the same F_hat the flow tracks (freq = 1, F_hat ~ F).
    Returns a ``modes.ModeSolution`` with p the rule's output along the trajectory; a flow
    that blows up or exceeds its budget is nan from then on, ok False, as on_failure says
    ("ignore" by default: the bridge reports it).
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

    def rhs(y: np.ndarray, out: np.ndarray) -> np.ndarray:
        for j in range(y.shape[1]):  # one system per column: its modes are rows
            s = np.exp(y[:n, j])
            tau = np.ones(n) if h.simsiam else y[n:, j]
            p = rule_spectrum(rule, s, tau, h.sigma2)
            delta = p * (tau - c1 * p) - h.eta
            out[:n, j] = 2.0 * delta
            if not h.simsiam:
                out[n:, j] = h.beta * (1.0 - tau) - tau * delta
        return out

    y0 = np.log(s0) if h.simsiam else np.concatenate([np.log(s0), tau0])
    res = rk45_batched(rhs, y0[:, None], t, rtol=rtol, atol=atol, max_steps=max_steps)
    y = res.y[:, :, 0]
    s = np.exp(y[:, :n])
    tau = np.ones_like(s) if h.simsiam else y[:, n:]
    p = np.full_like(s, np.nan)
    for i in np.flatnonzero(np.all(np.isfinite(y), axis=1)):
        p[i] = rule_spectrum(rule, s[i], tau[i], h.sigma2)
    message = res.failure_message("rule_flow")
    handle_failure(res.ok, message, on_failure)
    return ModeSolution(
        t=t,
        p=p,
        s=s,
        tau=tau,
        ok=np.full(n, res.ok[0]),
        t_fail=np.full(n, res.t_fail[0]),
        n_steps=np.full(n, res.n_steps[0]),
        message=message,
        stats={"nfev": res.nfev, "n_steps": int(res.n_steps[0])},
    )
