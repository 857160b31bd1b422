"""The spectra recorder: what the theory speaks of, measured on the network as it trains.

Every step (cheap, no host sync) it updates its own running F_hat = E[f f^T] and
C_to = E[f_a f^T] (``predictors.RunningCorrelation``, rate rho, both views, online and
target projector outputs, detached), whatever the predictor. Every ``record.every``
steps it moves F_hat, C_to and Wp to the host and computes, in float64, the arrays that
docs/run_format.md lists (``diagnostics.spectra_record``, shared with the linear bridge).
Per-mode arrays come in two orders: ``F_eigvals``, ``alignment``, ``alignment_matrix`` by
descending eigenvalue ([T] Fig. 2), and ``mode_*`` along F_hat's eigenvectors tracked
across records (``EigenTracker``: same mode, same sign, through level crossings),
which the bridge to T7 needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from linear_ssl import diagnostics
from linear_ssl.predictors import RunningCorrelation


def _host(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


def centred_covariance(x: torch.Tensor) -> np.ndarray:
    """Covariance of the rows of x (batch, n) around their mean, on the host in float64."""
    x = x.detach().to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    return _host(x.T @ x / max(x.shape[0] - 1, 1))


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
        (h1) and projector (z1) features: the collapse measure (calibration.md)."""
        return {
            "backbone_pr": diagnostics.participation_ratio(centred_covariance(out.h1)),
            "projector_pr": diagnostics.participation_ratio(centred_covariance(out.z1)),
        }

    @torch.no_grad()
    def record(self, method: Any, out: Any) -> dict[str, np.ndarray]:
        """The arrays of one spectra record (names and shapes: docs/run_format.md)."""
        matrix = method.predictor.matrix
        Wp = None if matrix is None else _host(matrix)
        rec = diagnostics.spectra_record(
            _host(self.estimate.F), _host(self.estimate.C_to), Wp, self.tracker
        )
        return {**{k: np.asarray(v) for k, v in self.feature_pr(out).items()}, **rec}

    def state_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate.state_dict(), "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        est = {
            k: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v
            for k, v in state["estimate"].items()
        }
        self.estimate.load_state_dict(est)
        self.tracker.load_state_dict(state["tracker"])
