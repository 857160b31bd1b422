"""Running estimates of F = E[f f^T] and C_to = E[f_a f^T] over training (theory.md
section 3): ``RunningCorrelation``, and ``PartitionedCorrelation`` for R1's partition
variant. Both blend each batch in by the same EMA (``_Ema``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from linear_ssl._arrays import Array, finite, same_shape
from linear_ssl.predictors.registry import PartitionedRule

__all__ = ["PartitionedCorrelation", "RunningCorrelation"]


def _views(name: str, views: Array | Sequence[Array]) -> list[Array]:
    views = [views] if hasattr(views, "ndim") else list(views)
    if not views:
        raise ValueError(f"{name} is empty: pass one (batch, n) array per view")
    shape = tuple(views[0].shape)
    for v in views:
        if v.ndim != 2 or tuple(v.shape) != shape:
            raise ValueError(
                f"{name} has views of shapes {[tuple(u.shape) for u in views]}: "
                "each must be (batch, n), all alike"
            )
    return views


class _Ema:
    """The blend both estimates use: X <- rho X + (1 - rho) X_batch, the first batch as is.

    ``count`` is the number of batches seen; ``_check_state`` refuses a checkpoint (the
    subclass's ``state_dict``) saved with other ``settings``.
    """

    settings: tuple[str, ...] = ("rho",)

    def __init__(self, rho: float) -> None:
        rho = finite("rho", rho)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho={rho!r} is invalid: it must be in [0, 1)")
        self.rho = rho
        self.count = 0

    def _blend(self, old: Array | None, new: Array) -> Array:
        return new if old is None else self.rho * old + (1.0 - self.rho) * new

    def _check_state(self, state: dict[str, Any]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"state has keys {sorted(state)}: expected {sorted(expected)}")
        for key in self.settings:
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"state was saved with {key}={state[key]!r} but this estimate has "
                    f"{key}={getattr(self, key)!r}: build it with the same settings"
                )


class RunningCorrelation(_Ema):
    """EMA estimates of F = E[f f^T] and (cross=True) C_to = E[f_a f^T] (theory.md section 3).

    F_hat <- rho F_hat + (1 - rho) mean_batch(f f^T); the first batch is stored as is. Not
    centred by default ([T] reports centring hurts); centre=True keeps EMA means too and
    returns F_hat - m m^T and C_to_hat - m_a m^T.

    Both views enter F by concatenation: the batches of the k views are stacked into one
    (k * batch, n) sample. C_to pairs each target view with the online features of the
    other views (the pairs the loss compares): for two views
    C_to_batch = (f_a2^T f_1 + f_a1^T f_2) / (2 batch) (rows are samples).
    Works on NumPy arrays or torch tensors (detach them first); ``state_dict`` holds plain
    arrays for checkpoints.
    """

    settings = ("rho", "cross", "centre")

    def __init__(self, rho: float = 0.3, cross: bool = False, centre: bool = False) -> None:
        super().__init__(rho)
        self.cross = bool(cross)
        self.centre = bool(centre)
        self._F: Array | None = None
        self._C_to: Array | None = None
        self._mean: Array | None = None
        self._mean_target: Array | None = None

    def update(
        self,
        online: Array | Sequence[Array],
        target: Array | Sequence[Array] | None = None,
    ) -> None:
        """Add one batch: ``online`` (and, when cross, ``target``) holds one (batch, n) per view."""
        online = _views("online", online)
        xp = array_namespace(*online)
        stacked = xp.concat(online, axis=0)
        self._F = self._blend(self._F, stacked.T @ stacked / stacked.shape[0])
        if self.centre:
            self._mean = self._blend(self._mean, xp.mean(stacked, axis=0))
        if self.cross:
            if target is None:
                raise ValueError("cross=True needs the target views: update(online, target)")
            target = _views("target", target)
            if len(target) != len(online) or len(online) < 2:
                raise ValueError(
                    f"got {len(online)} online and {len(target)} target views: C_to needs the "
                    "same number (>= 2), one per augmentation"
                )
            same_shape("online view", online[0], "target view", target[0])
            k, batch = len(online), online[0].shape[0]
            C = sum(target[j].T @ online[i] for i in range(k) for j in range(k) if i != j)
            self._C_to = self._blend(self._C_to, C / (k * (k - 1) * batch))
            if self.centre:
                self._mean_target = self._blend(
                    self._mean_target, xp.mean(xp.concat(target, axis=0), axis=0)
                )
        self.count += 1

    @property
    def F(self) -> Array:
        """F_hat = C_oo (centred when centre=True)."""
        if self._F is None:
            raise ValueError("no batch yet: call update() first")
        if self.centre:
            return self._F - self._mean[:, None] * self._mean[None, :]
        return self._F

    @property
    def C_to(self) -> Array:
        """C_to_hat = E[f_a f^T] (cross=True only; centred when centre=True)."""
        if not self.cross:
            raise ValueError("this estimate was built with cross=False: it has no C_to")
        if self._C_to is None:
            raise ValueError("no batch yet: call update() first")
        if self.centre:
            return self._C_to - self._mean_target[:, None] * self._mean[None, :]
        return self._C_to

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays (and numbers) that ``load_state_dict`` restores."""
        return {
            "rho": self.rho,
            "cross": self.cross,
            "centre": self.centre,
            "count": self.count,
            "F": self._F,
            "C_to": self._C_to,
            "mean": self._mean,
            "mean_target": self._mean_target,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_state(state)
        self.count = int(state["count"])
        self._F, self._C_to = state["F"], state["C_to"]
        self._mean, self._mean_target = state["mean"], state["mean_target"]


class PartitionedCorrelation(_Ema):
    """EMA of the per-side F_hat of a ``PartitionedRule``: a (K, 2, n, n) array.

    Per batch, each side's estimate is the mean of f f^T over the samples of all views on
    that side (zero when the side is empty), blended as in ``RunningCorrelation``:
    F <- rho F + (1 - rho) F_batch, the first batch stored as is.
    """

    def __init__(self, rule: PartitionedRule, rho: float = 0.3) -> None:
        super().__init__(rho)
        self.rule = rule
        self._F: Array | None = None

    def batch_estimate(self, online: Array | Sequence[Array]) -> Array:
        """(K, 2, n, n) side means of f f^T over the views' samples (theory.md section 3)."""
        views = _views("online", online)
        xp = array_namespace(*views)
        total, counts = 0.0, 0.0
        for v in views:
            weight = xp.astype(self.rule.sides(v), v.dtype)  # (batch, K)
            weights = xp.stack([weight, 1.0 - weight], axis=1)  # (batch, 2, K)
            weights = xp.permute_dims(weights, (2, 1, 0))[:, :, None, :]  # (K, 2, 1, batch)
            total = total + (v.T[None, None, :, :] * weights) @ v
            counts = counts + xp.sum(weights, axis=3)[..., None]
        return total / xp.maximum(counts, xp.ones_like(counts))

    def update(self, online: Array | Sequence[Array]) -> None:
        """Add one batch (one (batch, n) array per view)."""
        self._F = self._blend(self._F, self.batch_estimate(online))
        self.count += 1

    @property
    def F(self) -> Array:
        """The (K, 2, n, n) per-side F_hat."""
        if self._F is None:
            raise ValueError("no batch yet: call update() first")
        return self._F

    def state_dict(self) -> dict[str, Any]:
        return {"rho": self.rho, "count": self.count, "F": self._F}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_state(state)
        self.count, self._F = int(state["count"]), state["F"]
