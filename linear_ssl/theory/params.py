"""Hyper-parameters of the linear BYOL flow and the map from discrete training (T1)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Convention = Literal["torch", "paper"]
PredictorDecay = Literal["coupled", "single"]


def _check(name: str, value: object, ok: Callable[[float], bool], allowed: str) -> None:
    """One-line errors: TypeError unless ``value`` is a real number (not a bool or string),
    ValueError unless it is finite and ``ok``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            f"Hyper.{name}={value!r} is a {type(value).__name__}: {name} must be a number {allowed}"
        )
    if not math.isfinite(value) or not ok(value):
        raise ValueError(f"Hyper.{name}={value!r} is invalid: {name} must be {allowed}")


@dataclass(frozen=True)
class Hyper:
    """Hyper-parameters of the flow T1 / T5 / T7.

    alpha_p: predictor learning-rate ratio (> 0).
    beta: EMA rate of the target, dWa/dt = beta (W - Wa) (> 0), or None for SimSiam
        (Wa == W, tau == 1).
    eta: weight decay of W in flow time (>= 0).
    sigma2: isotropic augmentation variance, X' = sigma2 I under assumption A2 (>= 0).
    eta_p: weight decay of the predictor Wp in flow time (>= 0; None: eta, [T]'s single
        decay). T1, T7 and N1 take it; T2 and T8 are exact only when eta_p == eta.
        None is resolved at construction, so dataclasses.replace(h, eta=...) keeps the
        old eta_p: pass eta_p too.
    dt: flow time advanced by one training step (set by `from_training`; None when the
        flow is not tied to a training run).
    """

    alpha_p: float = 1.0
    beta: float | None = None
    eta: float = 0.0
    sigma2: float = 0.0
    eta_p: float | None = None
    dt: float | None = None

    def __post_init__(self) -> None:
        _check("alpha_p", self.alpha_p, lambda v: v > 0, "> 0")
        if self.beta is not None:
            _check("beta", self.beta, lambda v: v > 0, "> 0, or None for SimSiam")
        _check("eta", self.eta, lambda v: v >= 0, ">= 0")
        _check("sigma2", self.sigma2, lambda v: v >= 0, ">= 0")
        if self.eta_p is None:
            object.__setattr__(self, "eta_p", self.eta)  # frozen: resolve the default once
        _check("eta_p", self.eta_p, lambda v: v >= 0, ">= 0, or None for eta")
        if self.dt is not None:
            _check("dt", self.dt, lambda v: v > 0, "> 0, or None")

    @property
    def simsiam(self) -> bool:
        """True when the target is the online network itself (tau == 1)."""
        return self.beta is None

    @property
    def collapse_threshold(self) -> float:
        """T9: eta above tau^2 / (4 (1 + sigma2)) (at tau = 1) collapses every mode."""
        return 1.0 / (4.0 * (1.0 + self.sigma2))

    def time_of_step(self, step):
        """T1: flow time reached after `step` training steps (step * dt)."""
        return step * self._require_dt()

    def step_of_time(self, t):
        """T1: the (fractional) training step at flow time t (t / dt)."""
        return t / self._require_dt()

    def _require_dt(self) -> float:
        if self.dt is None:
            raise ValueError(
                "this Hyper has no step size dt: build it with Hyper.from_training(...) "
                "or pass dt=... to map between training steps and flow time"
            )
        return self.dt

    @classmethod
    def from_training(
        cls,
        lr: float,
        predictor_lr: float | None = None,
        ema: float | None = 0.996,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        sigma2: float = 0.0,
        convention: Convention = "torch",
        predictor_weight_decay: float | None = None,
        predictor_decay: PredictorDecay | None = None,
    ) -> Hyper:
        """T1: the flow that discrete SGD training follows in the slow limit.

        convention="torch" (default; what the trainer runs): torch.optim.SGD with
        heavy-ball momentum m and coupled weight decay wd advances the flow by
        dt = lr / (1 - m) per step, so alpha_p = predictor_lr / lr,
        beta = (1 - ema) / dt and eta = wd.
        convention="paper": [T]'s looser per-step reading, dt = lr (momentum
        ignored), lr * beta = 1 - ema and lr * eta = wd (a decay applied once per step).
        ema=None means SimSiam (no EMA target: beta None).

        The predictor's decay eta_p (T1): predictor_weight_decay (None: weight_decay, one
        torch parameter group) is the predictor's own per-step setting.
        predictor_decay="coupled" (the torch default: what the trainer runs) reads it as
        torch's coupled decay on a predictor trained at lr alpha_p * lr, which shrinks Wp
        at eta_p = alpha_p * predictor_weight_decay in flow time; "single" (the paper
        default, [T]'s one decay) does not scale it by alpha_p, so eta_p = eta when the
        predictor shares W's weight decay.
        """
        _check("lr", lr, lambda v: v > 0, "> 0")
        _check("momentum", momentum, lambda v: 0 <= v < 1, "in [0, 1)")
        _check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        if predictor_lr is None:
            predictor_lr = lr
        _check("predictor_lr", predictor_lr, lambda v: v > 0, "> 0")
        if ema is not None:
            _check("ema", ema, lambda v: 0 <= v < 1, "in [0, 1), or None for SimSiam")
        if predictor_weight_decay is None:
            predictor_weight_decay = weight_decay
        _check("predictor_weight_decay", predictor_weight_decay, lambda v: v >= 0, ">= 0")
        if convention == "torch":
            dt = lr / (1.0 - momentum)
            eta, eta_p = weight_decay, predictor_weight_decay
        elif convention == "paper":
            dt = lr
            eta, eta_p = weight_decay / lr, predictor_weight_decay / lr
        else:
            raise ValueError(f"convention={convention!r} is invalid: use 'torch' or 'paper'")
        alpha_p = predictor_lr / lr
        if predictor_decay is None:
            predictor_decay = "coupled" if convention == "torch" else "single"
        if predictor_decay == "coupled":
            eta_p *= alpha_p
        elif predictor_decay != "single":
            raise ValueError(
                f"predictor_decay={predictor_decay!r} is invalid: use 'coupled' or 'single'"
            )
        beta = None if ema is None else (1.0 - ema) / dt
        return cls(alpha_p=alpha_p, beta=beta, eta=eta, sigma2=sigma2, eta_p=eta_p, dt=dt)
