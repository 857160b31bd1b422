"""The closed-form head's trusted path (issue 15): the rule's input checks stay on the
device during the step and the loop raises them at its log steps; on CUDA the matmul-only
rules (R2 alpha = 1, R4-R8) run a step with no host synchronisation at all."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl import predictors as P  # noqa: E402
from linear_ssl.train.config import load_config  # noqa: E402
from linear_ssl.train.loop import Trainer  # noqa: E402
from linear_ssl.train.methods import build_predictor  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_a_failed_rule_check_is_raised_at_the_next_log_step_naming_its_step(tmp_path):
    """R1 on an F_hat made negative definite after step 5: steps 6 and 7 run (Wp = eps I,
    finite loss), the log step 8 raises the one-line error naming step 6, status failed."""
    cfg = load_config(
        None,
        [
            *TINY_MODEL,
            "data.limit=160",
            "max_steps=10",
            "record.every=0",
            "record.log_every=4",
            "checkpoint.every=100",
            "predictor.rho=0.9",
        ],
    )
    trainer = Trainer(cfg, tmp_path)
    head, original = trainer.method.predictor, trainer.train_step
    steps_run = []

    def poisoned(batch):
        if trainer.step == 5:
            state = head.estimate.state_dict()
            head.estimate.load_state_dict({**state, "F": -100.0 * state["F"]})
        out = original(batch)
        steps_run.append(trainer.step)
        return out

    trainer.train_step = poisoned
    with pytest.raises(ValueError) as info:
        trainer.fit()
    message = str(info.value)
    assert message.startswith("predictor.rule='directpred' failed at step 6: F is not positive")
    assert "\n" not in message and steps_run[-1] == 8
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "failed"


SYNC_FREE = [
    ("directcopy", {}),
    ("neumann", {}),
    ("newton_schulz", {"source": "F"}),
    ("newton_schulz", {}),
    ("ns2", {}),
    ("stiefel", {}),
    ("visser", {"n": 10}),
]


def _head_on_cuda(rule: str, params: dict, dim: int = 32):
    cfg = load_config(None, [*TINY_MODEL, f"predictor.rule={rule}"])
    cfg.predictor.params = params
    return build_predictor(cfg.predictor, dim).cuda()


@needs_cuda
@pytest.mark.parametrize("rule, params", SYNC_FREE, ids=str)
def test_a_closed_form_step_never_synchronises_the_host_on_cuda(rule, params):
    """Under torch.cuda.set_sync_debug_mode("error") the estimate update and the rule
    (checks included) run without one host synchronisation; the Wp they set equals the
    checked rule on the same estimate, and no check failed."""
    head = _head_on_cuda(rule, params)
    g = torch.Generator(device="cuda").manual_seed(0)
    base = torch.randn(64, 32, device="cuda", generator=g)
    z1, z2, t1, t2 = (base + 0.1 * torch.randn_like(base) for _ in range(4))  # 4 views alike
    head.observe(z1, z2, t1, t2)
    head.after_optimizer_step(1)  # warm-up: cuBLAS handles, allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in (2, 3):
            head.observe(z1 + 0.1 * step, z2, t1, t2)
            head.after_optimizer_step(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    head.raise_deferred()
    C_to = head.estimate.C_to if head.rule.needs_cross else None
    expected = P.get_rule(rule, **params)(head.estimate.F, C_to)
    torch.testing.assert_close(head.matrix.detach(), expected.to(head.matrix.dtype))


@needs_cuda
def test_eigh_is_the_one_host_synchronisation_left_in_R1_on_cuda():
    """torch's linalg.eigh reads its convergence flag on the host, trusted path or not:
    R1 synchronises, which is why the sync-free route is R6 on F (benchmarks/README.md)."""
    F = torch.eye(32, device="cuda") + 0.1
    checks = P.DeferredChecks()
    P.directpred(F)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"), checks.collect(1):
            P.directpred(F)
    finally:
        torch.cuda.set_sync_debug_mode("default")
