"""The two registries, the symmetric normalised regression loss and the base classes.

A ``Method`` owns the online encoder (backbone + projector), the target and a
``PredictorHead``; its ``forward(v1, v2)`` returns the loss of theory.md section 5 and
the detached features the recorder and closed-form rules need. The loop calls
``after_optimizer_step(step)`` after every optimiser step (EMA target update, then the
predictor's own hook, e.g. a closed-form rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

_T = TypeVar("_T")
#: builds one (backbone, projector) pair: the online encoder, and an independent target
EncoderBuilder = Callable[[], tuple[nn.Module, nn.Module]]
METHODS: dict[str, type[Method]] = {}
PREDICTORS: dict[str, type[PredictorHead]] = {}


def _register(registry: dict[str, type], name: str) -> Callable[[type[_T]], type[_T]]:
    """Class decorator: put the class in `registry` under `name` (its ``registry_name``)."""

    def add(cls: type[_T]) -> type[_T]:
        registry[name] = cls
        cls.registry_name = name
        return cls

    return add


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a Method selectable as ``method.name=<name>``."""
    return _register(METHODS, name)


def register_predictor(name: str) -> Callable[[type[PredictorHead]], type[PredictorHead]]:
    """Class decorator: make a PredictorHead selectable as ``predictor.kind=<name>``."""
    return _register(PREDICTORS, name)


def regression_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Normalised regression loss of one term: -2 cos(p, StopGrad(z)), batch mean."""
    return -2.0 * (F.normalize(p, dim=-1) * F.normalize(z.detach(), dim=-1)).sum(-1).mean()


def squared_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """T1's squared error of one term: 1/2 ||p - StopGrad(z)||^2, batch mean."""
    return 0.5 * (p - z.detach()).pow(2).sum(-1).mean()


LOSSES = {"normalised": regression_loss, "squared": squared_loss}
#: method.loss -> the constant of ``symmetric_loss`` in theory.md's flows: -2 cos per term,
#: two terms, is N1's c_L = 4; the mean of the two 1/2 ||p - z||^2 terms is T1's (c_L = 1)
LOSS_CONSTANTS = {"normalised": 4.0, "squared": 1.0}


def symmetric_loss(
    p1: torch.Tensor,
    p2: torch.Tensor,
    t1: torch.Tensor,
    t2: torch.Tensor,
    loss: str = "normalised",
) -> torch.Tensor:
    """Both symmetric terms, view 1 predicts view 2 and back.

    normalised (theory.md section 5): the two -2 cos terms summed (c_L = 4 in N1);
    squared: the mean of the two 1/2 ||.||^2 terms, so its gradient flow is T1 itself.
    """
    if loss == "squared":
        return 0.5 * (squared_loss(p1, t2) + squared_loss(p2, t1))
    return regression_loss(p1, t2) + regression_loss(p2, t1)


@dataclass
class StepOutput:
    """What one forward pass gives the loop: the loss and detached features.

    h1, h2: backbone features of views 1 and 2; z1, z2: online projector outputs; t1, t2:
    target projector outputs (all detached, on the training device).
    """

    loss: torch.Tensor
    h1: torch.Tensor
    z1: torch.Tensor
    z2: torch.Tensor
    t1: torch.Tensor
    t2: torch.Tensor
    h2: torch.Tensor | None = None


class PredictorHead(nn.Module):
    """Base of predictor kinds. Subclasses set ``forward`` and may override the hooks.

    ``matrix`` is the linear Wp (dim, dim) when the head is linear, else None (the
    recorder then records only what applies).
    """

    registry_name = ""

    def __init__(self, dim: int, cfg: Any) -> None:
        super().__init__()
        self.dim = dim

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Raise a one-line ValueError naming the key of an invalid predictor option."""

    @property
    def matrix(self) -> torch.Tensor | None:
        return None

    def observe(self, z1: torch.Tensor, z2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor):
        """Called with the step's detached projector outputs, before the backward pass."""

    def after_optimizer_step(self, step: int) -> None:
        """Called after optimiser step number ``step`` (1-based) and the target update."""

    def raise_deferred(self) -> None:
        """Called at log steps: raise the one-line error of a check the head kept on the
        device since the last call (the closed-form rules' trusted path); none here."""


class Method(nn.Module):
    """Online encoder + target + predictor, and the symmetric loss (theory.md section 5).

    A subclass declares its facts (``ema_target``; with ``method.loss``, the loss and its
    constant c_L of theory.md N1 / T1, ``LOSS_CONSTANTS``) and checks the ``method.*``
    config fields it reads (``check_config``).
    The trainer writes ``facts()`` into the run's config.yaml, so a run is read back
    (``runs.Run.method_facts``) without this class.
    """

    registry_name = ""
    ema_target: ClassVar[bool] = False
    """True: the target is an EMA of the online network (T1's beta); False: Wa == W."""

    @classmethod
    def facts(cls, loss: str = "normalised") -> dict[str, Any]:
        """The ``method_facts`` block of a run's config.yaml (docs/run_format.md): the
        method, its target, and ``method.loss`` with its constant (``LOSS_CONSTANTS``)."""
        if loss not in LOSS_CONSTANTS:
            raise ValueError(f"method.loss={loss!r} is invalid: use {' or '.join(LOSSES)}")
        return {
            "name": cls.registry_name,
            "ema_target": cls.ema_target,
            "loss": loss,
            "c_loss": LOSS_CONSTANTS[loss],
        }

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Raise a one-line ValueError naming the key of an invalid ``method.*`` field."""

    def __init__(self, build_encoder: EncoderBuilder, predictor: PredictorHead, cfg: Any) -> None:
        super().__init__()
        self.backbone, self.projector = build_encoder()
        self.predictor = predictor
        self.loss = str(getattr(cfg, "loss", "normalised"))  # method.loss

    def targets(
        self, v1: torch.Tensor, v2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached target projector outputs of both views (given the online ones)."""
        raise NotImplementedError

    def online_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.projector.parameters()]

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> StepOutput:
        h1 = self.backbone(v1)
        z1 = self.projector(h1)
        h2 = self.backbone(v2)
        z2 = self.projector(h2)
        t1, t2 = self.targets(v1, v2, z1, z2)
        loss = symmetric_loss(self.predictor(z1), self.predictor(z2), t1, t2, self.loss)
        z1d, z2d = z1.detach(), z2.detach()
        self.predictor.observe(z1d, z2d, t1, t2)
        return StepOutput(loss, h1.detach(), z1d, z2d, t1, t2, h2=h2.detach())

    def after_optimizer_step(self, step: int) -> None:
        self.update_target()
        self.predictor.after_optimizer_step(step)

    def update_target(self) -> None:
        """Move the target after an optimiser step (BYOL: EMA; SimSiam: nothing)."""


def build_predictor(cfg: Any, dim: int) -> PredictorHead:
    """The predictor head named by ``cfg.kind`` for projector outputs of size ``dim``."""
    if cfg.kind not in PREDICTORS:
        raise ValueError(f"predictor.kind={cfg.kind!r} is unknown: use one of {sorted(PREDICTORS)}")
    return PREDICTORS[cfg.kind](dim, cfg)


def build_method(cfg: Any, build_encoder: EncoderBuilder, predictor: PredictorHead) -> Method:
    """The method named by ``cfg.name`` (a MethodConfig)."""
    if cfg.name not in METHODS:
        raise ValueError(f"method.name={cfg.name!r} is unknown: use one of {sorted(METHODS)}")
    return METHODS[cfg.name](build_encoder, predictor, cfg)
