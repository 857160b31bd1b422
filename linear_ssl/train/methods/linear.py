"""Predictor kind "linear": a trainable Wp (bias on/off, the symmetrised variant)."""

from __future__ import annotations

from typing import Any

import torch

from linear_ssl.train.methods.base import PredictorHead, register_predictor
from linear_ssl.train.nets import linear_predictor


@register_predictor("linear")
class LinearPredictorHead(PredictorHead):
    """Wp trained by the optimiser ([T] Table 8's "trained linear predictor").

    ``cfg.symmetric`` trains A with Wp = (A + A^T)/2 ([T] Table 3); ``cfg.bias`` adds b.
    """

    def __init__(self, dim: int, cfg: Any) -> None:
        super().__init__(dim, cfg)
        self.net = linear_predictor(dim, bias=bool(cfg.bias), symmetric=bool(cfg.symmetric))

    @property
    def matrix(self) -> torch.Tensor:
        return self.net.matrix

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
