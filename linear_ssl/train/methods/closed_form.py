"""Predictor kind "closed_form": Wp set by an R-rule (theory.md section 3) during training.

F_hat (and C_to when the rule reads it) is the EMA (rate rho, first batch as is) of the
online projector outputs of both views, detached (``predictors.RunningCorrelation``).
After optimiser step s (1-based) the rule overwrites Wp whenever (s - 1) % freq == 0,
i.e. at steps 1, 1 + freq, 1 + 2 freq, ...; in between Wp takes ordinary optimiser
steps, as the reference code does with freq > 1. The plug-in optimum of [T] Table 1 is
``rule: lrp`` (R3, with ``params: {reg: ...}``).

``params: {partitions: K, partition_seed: s}`` selects R1's partition variant
(``predictors.PartitionedRule``): per-side F_hat (``PartitionedCorrelation``) and a
piecewise-linear prediction from the (K, 2, n, n) buffer ``Wp_sides``, which starts as
copies of the initial Wp and is overwritten by the rule on the same steps (it takes no
optimiser steps in between; ``matrix`` is None since no single Wp exists).

The rule runs on the trusted path (``predictors.DeferredChecks``): its input checks are
recorded on the training device instead of read on the host, so the step does not wait
for them; ``raise_deferred`` (called by the loop at its log steps) raises the first
failure, naming its step. On CUDA the matmul-only rules (directcopy, neumann, visser,
newton_schulz, ns2, stiefel) are then free of host synchronisation; those built on eigh
or solve (directpred, directset with alpha != 1, lrp) still wait for the solver's own
convergence flag (benchmarks/README.md, predictors).
"""

from __future__ import annotations

from typing import Any

import torch

from linear_ssl.predictors import (
    DeferredChecks,
    PartitionedCorrelation,
    PartitionedRule,
    RunningCorrelation,
    get_rule,
)
from linear_ssl.train.methods.base import PredictorHead, register_predictor
from linear_ssl.train.nets import linear_predictor


def _rule_from_config(cfg: Any):
    params = dict(cfg.params) if cfg.params is not None else {}
    try:
        return get_rule(cfg.rule, **params)
    except ValueError as err:
        raise ValueError(f"config predictor.rule={cfg.rule!r} / predictor.params: {err}") from None


@register_predictor("closed_form")
class ClosedFormPredictor(PredictorHead):
    """A linear Wp (``nets.linear_predictor``) overwritten by ``rule(F_hat, C_to)``."""

    def __init__(self, dim: int, cfg: Any) -> None:
        super().__init__(dim, cfg)
        self.net = linear_predictor(dim, bias=bool(cfg.bias), symmetric=bool(cfg.symmetric))
        self.rule = _rule_from_config(cfg)
        self.checks = DeferredChecks(f"predictor.rule={cfg.rule!r}")
        self.freq = int(cfg.freq)
        self.partitioned = isinstance(self.rule, PartitionedRule)
        if self.partitioned:
            self.estimate = PartitionedCorrelation(self.rule, float(cfg.rho))
            initial = self.net.matrix.detach().clone()
            sides = initial.expand(self.rule.partitions, 2, dim, dim).clone()
            self.register_buffer("Wp_sides", sides)
            self.net.requires_grad_(False)  # unused: the sides predict
        else:
            self.estimate = RunningCorrelation(float(cfg.rho), cross=self.rule.needs_cross)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        _rule_from_config(cfg)

    @property
    def matrix(self) -> torch.Tensor | None:
        return None if self.partitioned else self.net.matrix

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.rule.predict(z, self.Wp_sides) if self.partitioned else self.net(z)

    def observe(self, z1, z2, t1, t2) -> None:
        if self.partitioned:
            self.estimate.update([z1, z2])
        else:
            self.estimate.update([z1, z2], [t1, t2] if self.rule.needs_cross else None)

    def applies_at(self, step: int) -> bool:
        """Whether the rule overwrites Wp after optimiser step ``step`` (1-based)."""
        return (step - 1) % self.freq == 0

    @torch.no_grad()
    def after_optimizer_step(self, step: int) -> None:
        if not self.applies_at(step):
            return
        with self.checks.collect(step):
            if self.partitioned:
                self.Wp_sides.copy_(self.rule(self.estimate.F))
                return
            C_to = self.estimate.C_to if self.rule.needs_cross else None
            Wp = self.rule(self.estimate.F, C_to)
        self.net.set_matrix(Wp.to(self.net.weight.dtype))

    def raise_deferred(self) -> None:
        """Raise the rule's first failed input check since the last call, naming its step."""
        self.checks.raise_if_failed()

    # The running estimate and the rule's EMA (R10) travel in the module's state_dict.
    def get_extra_state(self) -> dict[str, Any]:
        return {"estimate": self.estimate.state_dict(), "rule": self.rule.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        device = self.net.weight.device

        def here(d: dict[str, Any]) -> dict[str, Any]:
            return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in d.items()}

        self.estimate.load_state_dict(here(state["estimate"]))
        self.rule.load_state_dict(here(state["rule"]))
