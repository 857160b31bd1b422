"""Predictor kind "mlp": the 2-layer predictor, shaped like the projector ([T] section 5)."""

from __future__ import annotations

from typing import Any

import torch

from linear_ssl.train.methods.base import PredictorHead, register_predictor
from linear_ssl.train.nets import mlp


@register_predictor("mlp")
class MLPPredictor(PredictorHead):
    """dim -> hidden_dim -> BatchNorm1d -> ReLU -> dim, trained by the optimiser."""

    def __init__(self, dim: int, cfg: Any) -> None:
        super().__init__(dim, cfg)
        self.net = mlp(dim, int(cfg.hidden_dim), dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
