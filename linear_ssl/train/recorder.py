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

What theory.md section 8 needs is measured separately (``WindowEstimate``): over the last
``record.batches`` batches before each record (a plain mean, so a small mode is averaged
over batches x batch-size samples, not rho-weighted over about one batch), the N2
correlations C12 = sym E[f1 f2^T] (cross-view), C11 = E[f1 f1^T] (same view),
C_to = E[f_a2 f1^T], the means E[f] and E[f_a], and A4's per-sample spread (norms of
q = predictor(f1) and of f_a2, their cosine). The record keeps them uncentred and
centred, tracks the centred C12's eigenvectors (``mode12_*``: s_j, sigma_j^2, tau_j,
p_j of N2's operational form) and, for the balance (T2 on the linear encoder; its
network form on the projector's last layer), that layer's Gram and Wp^T Wp. The loop
takes a record at step 0 too (``Trainer.fit``).

Each record also holds the collapse and rank diagnostics E9-E12 (RankMe, LiDAR, alpha-ReQ,
the l2-normalised std) of the record step's backbone and projector features, both views
stacked, the two views of each image being LiDAR's groups (``collapse_diagnostics``); a
``CollapseWatch`` flags a run whose projector RankMe stays below ``record.collapse_floor``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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


_WINDOW_SUMS = ("C12", "C11", "C_to", "mean_f", "mean_fa", "qq", "aa", "qa")
_SAMPLE_SUMS = ("norm_q", "norm_q2", "norm_a", "norm_a2", "cos", "cos2")


class WindowEstimate:
    """Sums over the batches of one record window (module docstring), on the device.

    ``add`` takes the step's online (z1, z2), target (t1, t2) and predicted (q1, q2)
    outputs; ``means`` the window's averages; ``reset`` starts the next window.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def add(self, z1, z2, t1, t2, q1, q2) -> None:
        z1, z2, t1, t2, q1, q2 = (x.detach().to(torch.float64) for x in (z1, z2, t1, t2, q1, q2))
        n = z1.shape[0]
        c12 = z1.T @ z2 / n
        pairs_q, pairs_a = torch.cat([q1, q2]), torch.cat([t2, t1])  # q1 predicts t2, back
        norm_q, norm_a = pairs_q.norm(dim=1), pairs_a.norm(dim=1)
        cos = (pairs_q * pairs_a).sum(1) / (norm_q * norm_a).clamp_min(1e-30)
        new = {
            "C12": (c12 + c12.T) / 2,
            "C11": (z1.T @ z1 + z2.T @ z2) / (2 * n),
            "C_to": (t2.T @ z1 + t1.T @ z2) / (2 * n),
            "mean_f": (z1.mean(0) + z2.mean(0)) / 2,
            "mean_fa": (t1.mean(0) + t2.mean(0)) / 2,
            "qq": norm_q.pow(2).mean(),
            "aa": norm_a.pow(2).mean(),
            "qa": (pairs_q * pairs_a).sum(1).mean(),
            "norm_q": norm_q.mean(),
            "norm_q2": norm_q.pow(2).mean(),
            "norm_a": norm_a.mean(),
            "norm_a2": norm_a.pow(2).mean(),
            "cos": cos.mean(),
            "cos2": cos.pow(2).mean(),
        }
        for key, value in new.items():
            self.sums[key] = value if key not in self.sums else self.sums[key] + value
        self.count += 1

    def means(self) -> dict[str, torch.Tensor]:
        return {k: v / self.count for k, v in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count}

    def load_state_dict(self, state: dict[str, Any], device=None) -> None:
        self.sums = {k: v.to(device) if device else v for k, v in state["sums"].items()}
        self.count = int(state["count"])


def window_record(
    w: dict[str, np.ndarray], Wp: np.ndarray | None, tracker: diagnostics.EigenTracker
) -> dict[str, np.ndarray]:
    """The section-8 arrays of a record from a window's means (docs/run_format.md).

    Centred: C12c = C12 - m m^T, C11c = C11 - m m^T, C_toc = C_to - m_a m^T; along the
    tracked eigenvectors u_j of C12c (N2's operational form): s_j = u^T C12c u,
    sigma_j^2 = u^T (C11c - C12c) u / s_j, tau_j = u^T C_toc u / s_j, p_j = u^T Wp u.
    A4: N_q, N_a, kappa = E[q . f_a] / (N_q N_a), the coefficients of variation of the
    per-sample norms and the mean and std of the per-sample cosine.
    """
    m, ma = w["mean_f"], w["mean_fa"]
    C12c = w["C12"] - np.outer(m, m)
    C11c = w["C11"] - np.outer(m, m)
    C_toc = w["C_to"] - np.outer(ma, m)
    s, U = tracker.update(C12c)
    quad = lambda M: np.einsum("ij,ik,kj->j", U, M, U)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = {
            "C12": w["C12"].astype(np.float32),
            "C11": w["C11"].astype(np.float32),
            "C_to": w["C_to"].astype(np.float32),
            "mean_f": m,
            "mean_fa": ma,
            "C12_eigvals": np.linalg.eigvalsh((w["C12"] + w["C12"].T) / 2)[::-1].copy(),
            "C12c_eigvals": np.linalg.eigvalsh(C12c)[::-1].copy(),
            "mode12_s": s,
            "mode12_sigma2": quad(C11c - C12c) / s,
            "mode12_tau": quad(C_toc) / s,
            "N_q": np.sqrt(w["qq"]),
            "N_a": np.sqrt(w["aa"]),
            "kappa": w["qa"] / np.sqrt(w["qq"] * w["aa"]),
            "norm_q_cv": np.sqrt(max(w["norm_q2"] - w["norm_q"] ** 2, 0.0)) / w["norm_q"],
            "norm_a_cv": np.sqrt(max(w["norm_a2"] - w["norm_a"] ** 2, 0.0)) / w["norm_a"],
            "cos_mean": w["cos"],
            "cos_std": np.sqrt(max(w["cos2"] - w["cos"] ** 2, 0.0)),
        }
    if Wp is not None:
        rec["mode12_p"] = quad(Wp)
        rec["Wp"] = Wp
    return {k: np.asarray(v) for k, v in rec.items()}


def _last_layer_gram(method: Any) -> torch.Tensor | None:
    """W_L W_L^T (+ b b^T) of the online encoder's last linear layer (projector, or the
    pixel encoder itself): the network side of the T2 balance."""
    from linear_ssl.train.nets import last_linear

    layer = last_linear(method.projector) or last_linear(method.backbone)
    if layer is None:
        return None
    W = layer.weight.detach().to(torch.float64)
    gram = W @ W.T
    if layer.bias is not None:
        b = layer.bias.detach().to(torch.float64)
        gram = gram + torch.outer(b, b)
    return gram


def _tracker_state(tracker: diagnostics.EigenTracker) -> dict[str, Any]:
    basis = tracker.state_dict()["basis"]
    return {"basis": None if basis is None else torch.from_numpy(np.ascontiguousarray(basis))}


def _load_tracker(tracker: diagnostics.EigenTracker, state: dict[str, Any]) -> None:
    basis = state["basis"]  # a tensor (format 2) or a NumPy array (format 1)
    tracker.load_state_dict({"basis": basis.numpy() if isinstance(basis, torch.Tensor) else basis})


def _gram_eigvals(X: np.ndarray) -> np.ndarray:
    """The top min(N, d) eigenvalues of X^T X (X: (N, d)), descending: the squared singular
    values of X, from the smaller Gram matrix (X X^T when N < d)."""
    N, d = X.shape
    return np.linalg.eigvalsh(X @ X.T if N < d else X.T @ X)[::-1]


def collapse_diagnostics(h: np.ndarray, z: np.ndarray) -> dict[str, float]:
    """E9-E12 of the backbone (h) and projector (z) features of one batch, both views
    stacked as [view 1; view 2] (2B rows): image i's views are rows i and B + i, LiDAR's
    groups (E10). RankMe uncentred (E9, the paper's), as ``rankme_spectrum`` of the
    eigenvalues of X^T X / 2B; alpha-ReQ (E11) on those of the centred covariance; l2_std
    (E12). Both spectra come from the smaller of the two Gram matrices (eigvalsh), about ten
    times cheaper than an SVD of X. LiDAR is nan for a batch of one image."""
    B = h.shape[0] // 2
    groups = np.tile(np.arange(B), 2)
    out = {}
    for name, X in (("backbone", h), ("projector", z)):
        centred = X - X.mean(axis=0, keepdims=True)
        moment = _gram_eigvals(X) / X.shape[0]
        out[f"{name}_rankme"] = float(diagnostics.rankme_spectrum(moment))
        out[f"{name}_lidar"] = diagnostics.lidar(X, groups) if B >= 2 else math.nan
        out[f"{name}_alpha_req"] = diagnostics.alpha_req(_gram_eigvals(centred) / (X.shape[0] - 1))
        out[f"{name}_l2_std"] = diagnostics.l2_std(X)
    return out


@dataclass
class CollapseWatch:
    """Flags a run whose projector RankMe (E9) is below ``floor`` at every record of a
    stretch of at least ``window`` steps (``record.collapse_floor``, ``collapse_window``;
    floor 0: off). A nan RankMe (all features zero) counts as below. Once raised, the flag
    stays: ``flagged`` is the step the stretch began."""

    floor: float = 0.0
    window: int = 0
    since: int | None = None  # first record step of the current stretch below the floor
    flagged: int | None = None

    def update(self, step: int, rankme: float) -> None:
        if self.floor <= 0:
            return
        if rankme >= self.floor:
            self.since = None
            return
        if self.since is None:
            self.since = step
        if self.flagged is None and step - self.since >= self.window:
            self.flagged = self.since

    def message(self) -> str:
        return (
            f"collapsing at step {self.flagged}: projector RankMe below "
            f"record.collapse_floor={self.floor:g} for record.collapse_window={self.window} "
            "steps or more"
        )

    def state_dict(self) -> dict[str, int | None]:
        return {"since": self.since, "flagged": self.flagged}

    def load_state_dict(self, state: dict[str, int | None]) -> None:
        self.since, self.flagged = state["since"], state["flagged"]


@dataclass
class Snapshot:
    """What record ``step`` reads, on its way to the host (``Recorder.snapshot``)."""

    step: int
    tensors: dict[str, torch.Tensor]
    copied: Any = None  # the torch.cuda.Event after the copies (None on the CPU)


class Recorder:
    """Running F_hat / C_to and the per-record spectra (see the module docstring)."""

    def __init__(
        self,
        rho: float,
        every: int = 0,
        batches: int = 8,
        collapse_floor: float = 0.0,
        collapse_window: int = 0,
    ) -> None:
        self.estimate = RunningCorrelation(rho, cross=True)
        self.tracker = diagnostics.EigenTracker()
        self.tracker12 = diagnostics.EigenTracker()
        self.window = WindowEstimate()
        self.every, self.batches = every, min(batches, every) if every else batches
        self.collapse = CollapseWatch(collapse_floor, collapse_window)
        # the window's means over ranks (torchrun: ``distributed.mean_over_ranks``)
        self.reduce: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None

    def in_window(self, step: int) -> bool:
        """Whether step's batch enters the record window (the last ``batches`` steps up to
        a record step; step 0's record averages its own ``batches`` batches)."""
        return step == 0 or (self.every > 0 and (-step) % self.every < self.batches)

    def observe(self, out: Any, step: int | None = None, method: Any = None) -> None:
        """Add the step's online (z1, z2) and target (t1, t2) projector outputs; inside a
        record window (``in_window``) also to the window estimate (with the predictor's
        outputs, for A4)."""
        self.estimate.update([out.z1, out.z2], [out.t1, out.t2])
        if step is not None and method is not None and self.in_window(step):
            with torch.no_grad():  # float32: under bf16 autocast z is bf16, Wp float32
                q1, q2 = method.predictor(out.z1.float()), method.predictor(out.z2.float())
            self.window.add(out.z1, out.z2, out.t1, out.t2, q1, q2)

    @staticmethod
    def feature_pr(out: Any) -> dict[str, float]:
        """Participation ratio of the centred covariance of the current batch's backbone
        (h1) and projector (z1) features: the collapse measure (docs/run_format.md)."""
        return _feature_prs(centred_covariance(out.h1), centred_covariance(out.z1))

    @torch.no_grad()
    def snapshot(self, step: int, method: Any, out: Any) -> Snapshot:
        """Queue the copies record ``step`` reads (F_hat, C_to, Wp when linear, the centred
        covariances of h1 and z1, both views' features) to the host; nothing waits here."""
        h2 = out.h2 if out.h2 is not None else out.h1  # a method without view 2's backbone
        tensors = {
            "F": self.estimate.F,
            "C_to": self.estimate.C_to,
            "cov_h": _centred_cov(out.h1),
            "cov_z": _centred_cov(out.z1),
            "h": torch.cat([out.h1, h2]),
            "z": torch.cat([out.z1, out.z2]),
        }
        if method.predictor.matrix is not None:
            tensors["Wp"] = method.predictor.matrix
        if self.window.count:
            means = self.window.means()
            if self.reduce is not None:  # collective: every rank records at the same steps
                means = self.reduce(means)
            tensors.update({f"w_{k}": v for k, v in means.items()})
            self.window.reset()
            gram = _last_layer_gram(method)
            if gram is not None:
                tensors["last_gram"] = gram
            weight = getattr(method.backbone, "weight", None)
            if isinstance(weight, torch.Tensor):  # the linear encoder: W and Wa of T1
                tensors["W_online"] = weight
                target = getattr(method, "target_backbone", None)
                tensors["W_target"] = target.weight if target is not None else weight
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
        scalars = {**_feature_prs(a["cov_h"], a["cov_z"]), **collapse_diagnostics(a["h"], a["z"])}
        if snap.step > 0:  # the step-0 record is the initial network, not a training outcome
            self.collapse.update(snap.step, scalars["projector_rankme"])
        window = {k[2:]: v for k, v in a.items() if k.startswith("w_")}
        if window:
            rec.update(window_record(window, a.get("Wp"), self.tracker12))
            for key in ("last_gram", "W_online", "W_target"):
                if key in a:
                    rec[key] = a[key]
            if "Wp" in a and "last_gram" in a:
                rec["Wp_gram"] = a["Wp"].T @ a["Wp"]
        return {**{k: np.asarray(v) for k, v in scalars.items()}, **rec}

    def record(self, method: Any, out: Any) -> dict[str, np.ndarray] | None:
        """A record of the current state at once (``snapshot`` then ``complete``)."""
        return self.complete(self.snapshot(0, method, out))

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain containers only (a checkpoint loads with weights_only=True):
        the trackers' NumPy bases travel as tensors, the collapse watch as ints / None."""
        return {
            "estimate": self.estimate.state_dict(),
            "tracker": _tracker_state(self.tracker),
            "tracker12": _tracker_state(self.tracker12),
            "window": self.window.state_dict(),
            "collapse": self.collapse.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        est = {
            k: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v
            for k, v in state["estimate"].items()
        }
        self.estimate.load_state_dict(est)
        _load_tracker(self.tracker, state["tracker"])
        if "tracker12" in state:  # checkpoints before the section-8 records lack these
            _load_tracker(self.tracker12, state["tracker12"])
            self.window.load_state_dict(state["window"], device)
        if "collapse" in state:  # checkpoints from before E9-E12 have no watch
            self.collapse.load_state_dict(state["collapse"])
