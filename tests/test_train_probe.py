"""The online probe (eval.online_probe): its running accuracy counts the predictions made
before each Adam step, resets at each read, and it learns separable features."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from linear_ssl.train.probe import OnlineProbe  # noqa: E402


def _separable(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    centres = 4.0 * torch.eye(3, 6)
    return centres[labels] + torch.randn(n, 6, generator=g), labels


def test_running_accuracy_counts_predictions_before_each_step_and_resets():
    """acc = 100 * hits / samples over the steps since the last read, the hits taken from
    the logits before each step (recomputed here from a copy of the weights)."""
    torch.manual_seed(0)
    probe = OnlineProbe(6, 3, lr=1e-2)
    hits = seen = 0
    for seed in range(4):
        h, y = _separable(32, seed)
        with torch.no_grad():
            hits += int((probe.linear(h).argmax(1) == y).sum())
        seen += y.numel()
        before = probe.linear.weight.detach().clone()
        probe.step(h, y)
        assert not torch.equal(before, probe.linear.weight)  # Adam moved it
    assert probe.metrics()["online_probe_acc"] == pytest.approx(100.0 * hits / seen)
    assert probe.metrics()["online_probe_acc"] != probe.metrics()["online_probe_acc"]  # nan


def test_probe_learns_separable_features_and_never_touches_the_features():
    torch.manual_seed(0)
    probe = OnlineProbe(6, 3, lr=3e-2)
    h = torch.zeros(1)
    for seed in range(60):
        h, y = _separable(64, seed)
        h.requires_grad_(True)
        probe.step(h, y)
        if seed == 49:
            probe.metrics()  # reset: the last read covers the final 10 steps
    assert h.grad is None  # detached: no gradient flows back to the backbone
    assert probe.metrics()["online_probe_acc"] > 90.0
    with pytest.raises(ValueError, match="online_probe=false"):
        OnlineProbe(6, 1)
