"""BYOL: an EMA target network (theory.md T1, third line; [T] section 5)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from linear_ssl.train.methods.base import EncoderBuilder, Method, PredictorHead, register_method


@register_method("byol")
class BYOL(Method):
    """Target = EMA of the online encoder: Wa <- ema Wa + (1 - ema) W after each step.

    ``cfg.target_init``: "copy" starts the target as a copy of the online encoder;
    "independent" builds it afresh (its own random initialisation), as [T]'s reference
    code did. Target BatchNorm layers use batch statistics (train mode) like the online.
    """

    ema_target = True

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """BYOL reads method.ema (in [0, 1)) and method.target_init (copy | independent)."""
        if not 0 <= cfg.ema < 1:
            raise ValueError(f"config method.ema={cfg.ema!r} is invalid: it must be in [0, 1)")
        if cfg.target_init not in ("copy", "independent"):
            raise ValueError(
                f"config method.target_init={cfg.target_init!r} is invalid: it must be "
                "'copy' or 'independent'"
            )

    def __init__(self, build_encoder: EncoderBuilder, predictor: PredictorHead, cfg: Any) -> None:
        super().__init__(build_encoder, predictor, cfg)
        self.ema = float(cfg.ema)
        if cfg.target_init == "copy":
            self.target_backbone = copy.deepcopy(self.backbone)
            self.target_projector = copy.deepcopy(self.projector)
        else:
            self.target_backbone, self.target_projector = build_encoder()
        for p in self.target_parameters():
            p.requires_grad_(False)

    def target_parameters(self) -> list[nn.Parameter]:
        return [*self.target_backbone.parameters(), *self.target_projector.parameters()]

    @torch.no_grad()
    def targets(self, v1, v2, z1, z2):
        return (
            self.target_projector(self.target_backbone(v1)),
            self.target_projector(self.target_backbone(v2)),
        )

    @torch.no_grad()
    def update_target(self) -> None:
        """T1: Wa <- Wa + (1 - ema)(W - Wa), one fused _foreach pass over all tensors."""
        torch._foreach_lerp_(self.target_parameters(), self.online_parameters(), 1.0 - self.ema)
