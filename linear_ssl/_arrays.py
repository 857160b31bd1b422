"""Input checks shared by ``linear_ssl.predictors`` and ``linear_ssl.diagnostics``.

Every check is written against the array API (``array_api_compat``), so NumPy arrays and
torch tensors (CPU or GPU) go through the same code, and every failure is a one-line
ValueError (or TypeError) saying what was wrong and what to do.

Checks on array values go through ``require``. By default it reads the condition on the
host and raises at once. Inside ``DeferredChecks.collect(step)`` (the trainer's trusted
path) it records the condition on the array's device instead, with no host
synchronisation; ``DeferredChecks.raise_if_failed()`` reads all of them at once later and
raises the first failure, naming its step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from array_api_compat import array_namespace, to_device

__all__ = [
    "Array",
    "PSD_TOLERANCE",
    "DeferredChecks",
    "check_psd_diagonal",
    "check_psd_spectrum",
    "check_symmetric",
    "eye",
    "finite",
    "float_matrix",
    "float_pair",
    "float_vector",
    "positive_int",
    "require",
    "same_library",
    "same_shape",
]

Array = Any  # a NumPy array or a torch tensor

# The conditions collected by the innermost DeferredChecks.collect block (None: raise at once).
_COLLECTING: ContextVar[list[tuple[Array, str]] | None] = ContextVar("collecting", default=None)


def require(ok: Array, message: str, detail: Callable[[], str] | None = None) -> None:
    """Raise ValueError(message) unless the 0-d boolean ``ok`` holds.

    ``detail`` (called only on failure, outside ``DeferredChecks``) adds the offending
    numbers in parentheses. Inside ``DeferredChecks.collect`` an array ``ok`` is recorded
    on its device instead (a Python bool is still checked at once).
    """
    collecting = _COLLECTING.get()
    if collecting is not None and not isinstance(ok, (bool, np.bool_)):
        collecting.append((ok, message))
        return
    if not bool(ok):
        raise ValueError(message if detail is None else f"{message} ({detail()})")


class DeferredChecks:
    """The trusted path: ``require`` conditions kept on the device, read when asked.

    ``with checks.collect(step): Wp = rule(F, C_to)`` records, per message, the first step
    at which its condition failed, as a 0-d integer array on the inputs' device (-1: never),
    with no host synchronisation. ``raise_if_failed()`` reads them all in one transfer and
    raises the ValueError of the earliest failure, "NAME failed at step S: MESSAGE", then
    forgets them.
    """

    def __init__(self, name: str = "a deferred check") -> None:
        self.name = name
        self._first_failure: dict[str, Array] = {}

    @contextmanager
    def collect(self, step: int) -> Iterator[None]:
        """Record the checks made inside the block as failures at ``step``."""
        conditions: list[tuple[Array, str]] = []
        token = _COLLECTING.set(conditions)
        try:
            yield
        finally:
            _COLLECTING.reset(token)
        for ok, message in conditions:
            xp = array_namespace(ok)
            previous = self._first_failure.get(message)
            if previous is None:
                previous = xp.full_like(ok, -1, dtype=xp.int64)
            newly_failed = xp.logical_not(ok) & (previous < 0)
            self._first_failure[message] = xp.where(
                newly_failed, xp.full_like(previous, step), previous
            )

    def raise_if_failed(self) -> None:
        """Raise "NAME failed at step S: MESSAGE" for the earliest failure (one host transfer)."""
        if not self._first_failure:
            return
        messages = list(self._first_failure)
        values = list(self._first_failure.values())
        xp = array_namespace(*values)
        steps = np.asarray(to_device(xp.stack(values), "cpu")).tolist()
        self._first_failure = {}
        failed = [(s, m) for s, m in zip(steps, messages, strict=True) if s >= 0]
        if failed:
            step, message = min(failed)
            raise ValueError(f"{self.name} failed at step {step}: {message}")


# --------------------------------------------------------------------------- shapes and types


def float_matrix(name: str, M: Array, square: bool = True) -> tuple[Any, Array]:
    """(namespace, M as a floating array); one-line ValueError when M is not a finite matrix."""
    try:
        xp = array_namespace(M)
    except TypeError as err:
        raise ValueError(
            f"{name} is a {type(M).__name__}: pass a NumPy array or a torch tensor"
        ) from err
    if M.ndim != 2:
        raise ValueError(f"{name} has shape {tuple(M.shape)}: it must be a 2-D matrix")
    if square and M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} has shape {tuple(M.shape)}: it must be square")
    if not xp.isdtype(M.dtype, "real floating"):
        M = xp.astype(M, xp.float64)
    require(
        xp.all(xp.isfinite(M)), f"{name} has non-finite entries (nan or inf): check the estimate"
    )
    return xp, M


def float_vector(name: str, v: Array) -> tuple[Any, Array]:
    """(namespace, v as a floating 1-D array); one-line ValueError otherwise."""
    xp, M = float_matrix(name, v[None, :] if getattr(v, "ndim", 0) == 1 else v, square=False)
    if M.shape[0] != 1:
        raise ValueError(f"{name} has shape {tuple(v.shape)}: it must be a 1-D array")
    return xp, M[0]


def float_pair(
    name_a: str, A: Array, name_b: str, B: Array, square: bool = True
) -> tuple[Any, Array, Array]:
    """(namespace, A, B) for two matrices of one shape, one array library and one device.

    Mixed libraries (a NumPy array and a torch tensor) are a one-line TypeError, different
    devices or shapes a one-line ValueError; the dtypes are promoted to a common one.
    """
    same_library(name_a, A, name_b, B)
    xp, A = float_matrix(name_a, A, square)
    _, B = float_matrix(name_b, B, square)
    if A.device != B.device:
        raise ValueError(
            f"{name_a} is on {A.device} but {name_b} on {B.device}: move them to one device"
        )
    same_shape(name_a, A, name_b, B)
    dtype = xp.result_type(A, B)
    return xp, xp.astype(A, dtype, copy=False), xp.astype(B, dtype, copy=False)


def same_library(name_a: str, A: Array, name_b: str, B: Array) -> None:
    """One-line TypeError when A and B come from different array libraries."""
    try:
        array_namespace(A, B)
    except TypeError as err:
        raise TypeError(
            f"{name_a} is a {type(A).__name__} but {name_b} is a {type(B).__name__}: pass "
            "both as NumPy arrays or both as torch tensors"
        ) from err


def same_shape(name_a: str, A: Array, name_b: str, B: Array) -> None:
    """One-line ValueError unless A and B have the same shape."""
    if tuple(A.shape) != tuple(B.shape):
        raise ValueError(
            f"{name_a} has shape {tuple(A.shape)} but {name_b} has {tuple(B.shape)}: "
            "they must match"
        )


def eye(xp: Any, M: Array) -> Array:
    """The identity of M's size, dtype and device."""
    return xp.eye(M.shape[0], dtype=M.dtype, device=M.device)


# --------------------------------------------------------------------------- values


def check_symmetric(name: str, M: Array, xp: Any) -> Array:
    """M symmetrised, after checking it is symmetric to a tolerance set by its dtype."""
    scale = xp.max(xp.abs(M))
    gap = xp.max(xp.abs(M - M.T))
    require(
        gap <= 1e3 * xp.finfo(M.dtype).eps * scale,
        f"{name} is not symmetric: pass a correlation matrix",
        lambda: f"max |{name} - {name}^T| = {float(gap):.3g}, max |{name}| = {float(scale):.3g}",
    )
    return (M + M.T) / 2


# How far below zero an eigenvalue of a PSD estimate may lie, relative to the largest:
# sqrt(eps) of float32, the roundoff of a float32 estimate (a trainer's), whatever dtype it
# reaches the rule in. It still refuses -F and any negative mode above 0.035 % of the top.
PSD_TOLERANCE = math.sqrt(float(np.finfo(np.float32).eps))


def _psd_tolerance(xp: Any, values: Array) -> Array:
    return PSD_TOLERANCE * xp.max(xp.abs(values))


def check_psd_spectrum(name: str, s: Array, xp: Any) -> None:
    """The eigenvalues s of a symmetric matrix are >= -PSD_TOLERANCE max |s|."""
    lowest = xp.min(s)
    require(
        lowest >= -_psd_tolerance(xp, s),
        f"{name} is not positive semi-definite: pass a correlation matrix",
        lambda: (
            f"lowest eigenvalue {float(lowest):.3g}, largest |eigenvalue| "
            f"{float(xp.max(xp.abs(s))):.3g}"
        ),
    )


def check_psd_diagonal(name: str, M: Array, xp: Any) -> None:
    """diag(M) >= -PSD_TOLERANCE max |M|: the necessary PSD condition that needs no
    decomposition (it catches -F and any negative variance)."""
    lowest = xp.min(xp.linalg.diagonal(M))
    require(
        lowest >= -_psd_tolerance(xp, M),
        f"{name} is not positive semi-definite (a negative diagonal entry): pass a "
        "correlation matrix",
        lambda: f"lowest diagonal entry {float(lowest):.3g}",
    )


def positive_int(name: str, n: int) -> int:
    """n itself; one-line ValueError unless it is an integer >= 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}={n!r} is invalid: it must be an integer >= 1")
    return n


def finite(name: str, value: float, low: float | None = None) -> float:
    """value as a float; one-line ValueError unless it is a finite number (>= low if given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid: it must be a finite number")
    if low is not None and value < low:
        raise ValueError(f"{name}={value!r} is invalid: it must be >= {low}")
    return float(value)
