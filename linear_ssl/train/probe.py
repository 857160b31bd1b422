"""The optional online probe (``eval.online_probe``): a linear classifier trained alongside.

A ``torch.nn.Linear`` on the detached backbone features of the first view (``out.h1``),
with its own Adam optimiser (``eval.online_probe_lr``, default 3e-4), takes one
cross-entropy step per training step on that batch's labels. Its running accuracy (the
batch predictions made before each of its steps, i.e. on features it has not fitted yet)
accumulates on the device and is read only at log steps, so a step never synchronises
with the host. The probe never touches the SSL gradients (features are detached), and
its weights, optimiser and running counts travel in the trainer's checkpoint. Under
torchrun (``ctx`` a ``distributed.Dist``) its gradients are averaged over ranks, so every
rank holds the probe of the global batch, and the accuracy counts are summed over ranks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from linear_ssl.train.distributed import Dist, all_reduce_gradients


class OnlineProbe(nn.Module):
    """Linear probe on detached features: ``step(h, labels)``, ``metrics()`` at log steps."""

    def __init__(self, dim: int, classes: int, lr: float = 3e-4) -> None:
        super().__init__()
        if classes < 2:
            raise ValueError(
                f"the online probe needs labelled data with >= 2 classes, got {classes}: "
                "set eval.online_probe=false"
            )
        self.linear = nn.Linear(dim, classes)
        self.optimizer = torch.optim.Adam(self.linear.parameters(), lr=lr)
        self.register_buffer("correct", torch.zeros((), dtype=torch.int64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))

    def step(self, h: torch.Tensor, labels: torch.Tensor, ctx: Dist | None = None) -> None:
        """One Adam step of cross-entropy on (h, labels); counts the hits before it."""
        with torch.enable_grad():
            logits = self.linear(h.detach().float())
            loss = F.cross_entropy(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if ctx is not None:
            all_reduce_gradients(self.linear.parameters(), ctx)
        self.optimizer.step()
        self.correct += (logits.detach().argmax(1) == labels).sum()
        self.seen += labels.numel()

    def metrics(self, ctx: Dist | None = None) -> dict[str, float]:
        """``online_probe_acc``: percent correct since the last call (nan if none), over
        every rank's rows when ``ctx`` is given; resets."""
        counts = torch.stack([self.correct, self.seen])
        correct, seen = (int(c) for c in (ctx.sum(counts) if ctx is not None else counts))
        acc = 100.0 * correct / seen if seen else float("nan")
        self.correct.zero_()
        self.seen.zero_()
        return {"online_probe_acc": acc}

    def checkpoint(self) -> dict[str, Any]:
        return {"module": self.state_dict(), "optimizer": self.optimizer.state_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
