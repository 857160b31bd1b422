"""theory.md section 8's scoring: shapes, baselines, skill, the fitting window, intervals.

Every function here is plain NumPy/SciPy on per-mode trajectories s (records R, modes m)
with one shared convention, so that a flow, a baseline and a run are scored alike:

- shape (N1: never absolute scales): log s^_j with s^_j = s_j / sum_k s_k over the m
  compared modes;
- err = RMS of the difference of log shapes over the records and modes of a window;
- skill = 1 - err(flow) / err(baseline) on the held-out window, against persistence
  (the shape at the end of the fitting window, held) and per-mode log-linear
  extrapolation of the fitting window. 0: no better than the baseline; 1: perfect;
  below 0: worse;
- a flow may carry at most three global fitted numbers (``fit_globals``), fitted on the
  fitting window only, then frozen;
- "agrees" only where the 95 % interval over seeds of both skills is above zero;
- what a closed-form predictor makes true by construction (``built_in``,
  ``construction_label``, ``by_construction``: defined in ``bridge.report``, torch- and
  scipy.stats-free, for the report and the figures) is labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from linear_ssl.bridge.report import built_in, by_construction, construction_label

__all__ = [
    "MAX_FITTED",
    "Windows",
    "agrees",
    "built_in",
    "by_construction",
    "construction_label",
    "fit_globals",
    "grow_shrink_auc",
    "interval",
    "log_shape",
    "loglinear_baseline",
    "persistence_baseline",
    "shape_error",
    "skill",
    "split_windows",
]

MAX_FITTED = 3
"""theory.md section 8: at most three global fitted numbers per flow."""

FLOOR = 1e-3
"""A mode below FLOOR times the largest of its record counts as lost, at that level
(compare.LOST_THRESHOLD's convention; the cross-view C12 of a mode lost in noise can
even be negative): a collapse costs a bounded log error."""


def log_shape(s: np.ndarray) -> np.ndarray:
    """log(s_j / sum_k s_k) along the last axis (the modes), s_j floored at FLOOR times
    the record's largest s_k."""
    s = np.asarray(s, dtype=float)
    top = np.max(s, axis=-1, keepdims=True)
    s = np.maximum(s, FLOOR * np.where(top > 0, top, 1.0))
    return np.log(s) - np.log(np.sum(s, axis=-1, keepdims=True))


def shape_error(pred: np.ndarray, meas: np.ndarray) -> float:
    """RMS over records and modes of log_shape(pred) - log_shape(meas); inf if pred is
    not finite anywhere (a flow that blew up)."""
    diff = log_shape(pred) - log_shape(meas)
    if not np.all(np.isfinite(diff)):
        return math.inf
    return float(np.sqrt(np.mean(diff**2)))


def skill(err_flow: float, err_baseline: float) -> float:
    """1 - err(flow) / err(baseline) (nan when the baseline is exact)."""
    if not err_baseline > 0:
        return math.nan
    return 1.0 - err_flow / err_baseline


@dataclass(frozen=True)
class Windows:
    """Record indices: the seed, the fitting window (after the seed, up to fit_end) and
    the held-out window (after it)."""

    seed: int
    fit: np.ndarray
    held: np.ndarray


def split_windows(steps: Sequence[int], fit_fraction: float = 1 / 3, seed: int = 0) -> Windows:
    """Seed at record ``seed``; fit on the records up to fit_fraction of the steps after
    it (at least one); hold out the rest (at least one). ValueError if too few records."""
    steps = np.asarray(steps)
    if steps.size < seed + 3:
        raise ValueError(
            f"{steps.size} records: the protocol needs a seed, a fitting and a held-out "
            "record (at least 3 after the seed index); record more often"
        )
    end = steps[seed] + fit_fraction * (steps[-1] - steps[seed])
    after = np.arange(seed + 1, steps.size)
    fit = after[steps[after] <= end]
    if fit.size == 0:
        fit = after[:1]
    if fit[-1] == after[-1]:
        fit = fit[:-1]
    return Windows(seed, fit, after[after > fit[-1]])


def persistence_baseline(meas: np.ndarray, windows: Windows) -> np.ndarray:
    """ "Nothing changes": the shape at the last fitting record, for every held-out one."""
    last = meas[windows.fit[-1]]
    return np.broadcast_to(last, (windows.held.size, *last.shape))


def loglinear_baseline(t: np.ndarray, meas: np.ndarray, windows: Windows) -> np.ndarray:
    """Per-mode least-squares line through log shape over the seed and fitting records,
    extrapolated to the held-out times (a shape, up to normalisation)."""
    rows = np.r_[windows.seed, windows.fit]
    x, y = np.asarray(t, dtype=float)[rows], log_shape(meas[rows])
    slope, intercept = np.polyfit(x, y, 1)
    return np.exp(np.asarray(t, dtype=float)[windows.held, None] * slope + intercept)


def fit_globals(
    loss: Callable[[np.ndarray], float],
    x0: Sequence[float],
    bounds: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Minimise loss over at most MAX_FITTED global numbers within bounds (bounded
    Brent for one, Powell otherwise); the minimiser, to be frozen before the held-out
    window is looked at."""
    if not 0 < len(x0) <= MAX_FITTED or len(bounds) != len(x0):
        raise ValueError(f"fit 1 to {MAX_FITTED} global numbers, one bound each, got {len(x0)}")
    if len(x0) == 1:
        ((lo, hi),) = bounds
        res = optimize.minimize_scalar(
            lambda v: loss(np.array([v])), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-3},
        )  # fmt: skip
        return np.array([res.x])
    res = optimize.minimize(loss, np.asarray(x0, dtype=float), method="Powell", bounds=bounds)
    return np.asarray(res.x)


def grow_shrink_auc(predicted_change: np.ndarray, run_change: np.ndarray) -> float:
    """AUC of the flow's predicted change of log shape as a score for the run's modes
    that grew (change > 0) against those that shrank: 1 perfect, 0.5 chance, nan when
    every mode went one way."""
    grew = np.asarray(run_change) > 0
    if grew.all() or not grew.any():
        return math.nan
    score = np.asarray(predicted_change, dtype=float)
    res = stats.mannwhitneyu(score[grew], score[~grew])
    return float(res.statistic / (grew.sum() * (~grew).sum()))


def interval(values: Sequence[float], level: float = 0.95) -> list[float]:
    """[mean, lo, hi]: the Student-t interval of the mean over seeds (lo = hi = nan for
    fewer than two finite values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [math.nan, math.nan, math.nan]
    mean = float(v.mean())
    if v.size < 2:
        return [mean, math.nan, math.nan]
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return [mean, mean - half, mean + half]


def agrees(skill_persistence: Sequence[float], skill_loglinear: Sequence[float]) -> bool:
    """theory.md section 8: the flow agrees only where the interval's lower end of the
    skill against both baselines is above zero."""
    return bool(skill_persistence[1] > 0 and skill_loglinear[1] > 0)
