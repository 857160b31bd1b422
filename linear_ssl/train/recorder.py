"""The spectra recorder: what the theory speaks of, measured on the network as it trains.

Every step (cheap, no host sync) it updates its own running F_hat = E[f f^T] and
C_to = E[f_a f^T] (``predictors.RunningCorrelation``, rate rho, both views, online and
target projector outputs, detached), whatever the predictor. Every ``record.every``
steps it takes a ``snapshot``: F_hat, C_to, Wp and the step's centred feature covariances
queued to the host without waiting (on CUDA into pinned memory behind an event). The
loop ``complete``s it one step later, when the copies are long done and the next step is
already queued, so a record never stalls the device; it computes, in float64, the arrays
that docs/run_format.md lists (``diagnostics.spectra_record``, shared with the linear
bridge).
Per-mode arrays come in two orders: ``F_eigvals``, ``alignment``, ``alignment_matrix`` by
descending eigenvalue ([T] Fig. 2), and ``mode_*`` along F_hat's eigenvectors tracked
across records (``EigenTracker``: same mode, same sign, through level crossings),
which the bridge to T7 needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linear_ssl import diagnostics
from linear_ssl.predictors import RunningCorrelation


def _host(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


def _centred_cov(x: torch.Tensor) -> torch.Tensor:
    """Covariance of the rows of x (batch, n) around their mean, float64, on x's device."""
    x = x.detach().to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    return x.T @ x / max(x.shape[0] - 1, 1)


def centred_covariance(x: torch.Tensor) -> np.ndarray:
    """Covariance of the rows of x (batch, n) around their mean, on the host in float64."""
    return _host(_centred_cov(x))


def _to_host_async(x: torch.Tensor) -> torch.Tensor:
    """A host copy of ``x``: queued into pinned memory from a GPU, made at once on the CPU."""
    x = x.detach()
    if not x.is_cuda:
        return x.clone()
    copy = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    return copy.copy_(x, non_blocking=True)


def _feature_prs(cov_h: np.ndarray, cov_z: np.ndarray) -> dict[str, float]:
    """The collapse measure (docs/run_format.md): participation ratios of the centred backbone
    (h1) and projector (z1) feature covariances."""
    return {
        "backbone_pr": diagnostics.participation_ratio(cov_h),
        "projector_pr": diagnostics.participation_ratio(cov_z),
    }


@dataclass
class Snapshot:
    """What record ``step`` reads, on its way to the host (``Recorder.snapshot``)."""

    step: int
    tensors: dict[str, torch.Tensor]
    copied: Any = None  # the torch.cuda.Event after the copies (None on the CPU)


class Recorder:
    """Running F_hat / C_to and the per-record spectra (see the module docstring)."""

    def __init__(self, rho: float) -> None:
        self.estimate = RunningCorrelation(rho, cross=True)
        self.tracker = diagnostics.EigenTracker()

    def observe(self, out: Any) -> None:
        """Add the step's online (z1, z2) and target (t1, t2) projector outputs."""
        self.estimate.update([out.z1, out.z2], [out.t1, out.t2])

    @staticmethod
    def feature_pr(out: Any) -> dict[str, float]:
        """Participation ratio of the centred covariance of the current batch's backbone
        (h1) and projector (z1) features: the collapse measure (docs/run_format.md)."""
        return _feature_prs(centred_covariance(out.h1), centred_covariance(out.z1))

    @torch.no_grad()
    def snapshot(self, step: int, method: Any, out: Any) -> Snapshot:
        """Queue the copies record ``step`` reads (F_hat, C_to, Wp when linear, the centred
        covariances of h1 and z1) to the host; nothing waits for them here."""
        tensors = {
            "F": self.estimate.F,
            "C_to": self.estimate.C_to,
            "cov_h": _centred_cov(out.h1),
            "cov_z": _centred_cov(out.z1),
        }
        if method.predictor.matrix is not None:
            tensors["Wp"] = method.predictor.matrix
        host = {name: _to_host_async(t) for name, t in tensors.items()}
        copied = None
        if self.estimate.F.is_cuda:
            copied = torch.cuda.Event()
            copied.record()
        return Snapshot(step, host, copied)

    def complete(self, snap: Snapshot) -> dict[str, np.ndarray] | None:
        """The arrays of a snapshot's record (names and shapes: docs/run_format.md), once its
        copies are done; None when an input is not finite (nothing worth writing: the
        loop's next finiteness check stops the run)."""
        if snap.copied is not None:
            snap.copied.synchronize()
        a = {name: _host(t) for name, t in snap.tensors.items()}
        if not all(np.isfinite(v).all() for v in a.values()):
            return None
        rec = diagnostics.spectra_record(a["F"], a["C_to"], a.get("Wp"), self.tracker)
        prs = _feature_prs(a["cov_h"], a["cov_z"])
        return {**{k: np.asarray(v) for k, v in prs.items()}, **rec}

    def record(self, method: Any, out: Any) -> dict[str, np.ndarray] | None:
        """A record of the current state at once (``snapshot`` then ``complete``)."""
        return self.complete(self.snapshot(0, method, out))

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain containers only (a checkpoint loads with weights_only=True):
        the tracker's NumPy basis travels as a tensor."""
        basis = self.tracker.state_dict()["basis"]
        if basis is not None:
            basis = torch.from_numpy(np.ascontiguousarray(basis))
        tracker = {"basis": basis}
        return {"estimate": self.estimate.state_dict(), "tracker": tracker}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        est = {
            k: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v
            for k, v in state["estimate"].items()
        }
        self.estimate.load_state_dict(est)
        basis = state["tracker"]["basis"]  # a tensor (format 2) or a NumPy array (format 1)
        if isinstance(basis, torch.Tensor):
            basis = basis.numpy()
        self.tracker.load_state_dict({"basis": basis})
