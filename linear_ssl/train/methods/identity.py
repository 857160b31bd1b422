"""Predictor kind "none": the identity (Wp = I), the collapse baseline of [T] (T3)."""

from __future__ import annotations

import torch

from linear_ssl.train.methods.base import PredictorHead, register_predictor


@register_predictor("none")
class IdentityPredictor(PredictorHead):
    """No predictor at all: BYOL/SimSiam without it collapse ([T] Table 1, T3)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z
