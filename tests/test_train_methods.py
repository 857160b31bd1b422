"""Methods and predictor heads: the EMA target (T1), the loss (section 5), the closed-form
rule applied after the optimiser step every freq steps (R1), F_hat's running estimate."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl.predictors import get_rule  # noqa: E402
from linear_ssl.train.config import load_config  # noqa: E402
from linear_ssl.train.loop import Trainer, build_model  # noqa: E402
from linear_ssl.train.methods import METHODS, symmetric_loss  # noqa: E402

TINY = [
    *TINY_MODEL,
    "record.every=0",
    "data.limit=256",
]


def test_ema_target_update_equals_T1_formula():
    """T1 third line, discretised: Wa <- ema Wa + (1 - ema) W after each optimiser step."""
    cfg = load_config(None, TINY + ["method.ema=0.9", "method.target_init=independent"])
    torch.manual_seed(0)
    method = build_model(cfg)
    online = [p.detach().clone() for p in method.online_parameters()]
    target = [p.detach().clone() for p in method.target_parameters()]
    assert any(
        not torch.equal(o, t) for o, t in zip(online, target, strict=True)
    )  # independent init
    method.update_target()
    for o, t, new in zip(online, target, method.target_parameters(), strict=True):
        torch.testing.assert_close(new, 0.9 * t + 0.1 * o, rtol=1e-6, atol=1e-7)
    copied = build_model(load_config(None, TINY + ["method.target_init=copy"]))
    for o, t in zip(copied.online_parameters(), copied.target_parameters(), strict=True):
        assert torch.equal(o, t) and not t.requires_grad


def test_symmetric_loss_is_minus_two_cosine_summed_over_both_terms():
    """theory.md section 5: loss = -2 cos(p1, t2) - 2 cos(p2, t1), batch means, numpy check."""
    g = torch.Generator().manual_seed(1)
    p1, p2, t1, t2 = (torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(4))
    a, b, c, d = (x.numpy() for x in (p1, p2, t1, t2))

    def cos(x, y):
        return np.sum(x * y, 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)

    expected = -2 * cos(a, d).mean() - 2 * cos(b, c).mean()
    assert float(symmetric_loss(p1, p2, t1, t2)) == pytest.approx(expected, rel=1e-12)
    p1.requires_grad_(True)
    t2.requires_grad_(True)
    symmetric_loss(p1, p2, t1, t2).backward()
    assert p1.grad is not None and t2.grad is None  # stop-gradient on the target


def test_simsiam_target_is_the_online_network():
    """SimSiam (T1 with Wa = W): the targets are the online projector outputs, detached."""
    cfg = load_config(None, TINY + ["method.name=simsiam", "predictor.kind=linear"])
    torch.manual_seed(0)
    method = build_model(cfg)
    assert not hasattr(method, "target_backbone")
    x = torch.randn(8, 3, 16, 16)
    out = method(x, x.flip(-1))
    assert torch.equal(out.t1, out.z1) and torch.equal(out.t2, out.z2)
    names = {n for n, _ in method.named_parameters()}
    assert not any(n.startswith("target") for n in names)


def test_closed_form_rule_overwrites_wp_after_the_optimiser_step_every_freq_steps(tmp_path):
    """R1 with freq = 3: right after steps 1, 4, 7 Wp == directpred(F_hat); in between Wp
    has taken plain SGD steps and differs; F_hat is the EMA of the batch correlations."""
    rho, freq = 0.3, 3
    cfg = load_config(
        None, TINY + [f"predictor.freq={freq}", f"predictor.rho={rho}", "record.every=100"]
    )
    trainer = Trainer(cfg, tmp_path)
    head = trainer.method.predictor
    rule = get_rule("directpred", eps=0.1)
    F_ref = None
    for step in range(1, 8):
        before = head.matrix.detach().clone()
        out = trainer.train_step(trainer.images[(step - 1) * 16 : step * 16])
        z = torch.cat([out.z1, out.z2]).double()
        batch = z.T @ z / z.shape[0]
        F_ref = batch if F_ref is None else rho * F_ref + (1 - rho) * batch
        torch.testing.assert_close(head.estimate.F.double(), F_ref, rtol=1e-5, atol=1e-6)
        expected = rule(head.estimate.F)
        if (step - 1) % freq == 0:
            assert torch.equal(head.matrix.detach(), expected), step
        else:
            assert not torch.allclose(head.matrix.detach(), expected, atol=1e-4), step
            assert not torch.equal(head.matrix.detach(), before), step  # SGD moved it
    # the recorder keeps its own estimate, with the target cross term (for tau_j)
    torch.testing.assert_close(trainer.recorder.estimate.F.double(), F_ref, rtol=1e-5, atol=1e-6)


def test_lrp_rule_reads_the_cross_correlation(tmp_path):
    """R3: the plug-in optimum Wp = C_to (C_oo + reg I)^-1 uses the target-online C_to."""
    cfg = load_config(None, TINY + ["predictor.rule=lrp", "predictor.params.reg=0.1"])
    trainer = Trainer(cfg, tmp_path)
    for step in range(1, 3):
        trainer.train_step(trainer.images[(step - 1) * 16 : step * 16])
    est = trainer.method.predictor.estimate
    eye = torch.eye(est.F.shape[0])
    expected = torch.linalg.solve(est.F + 0.1 * eye, est.C_to.T).T
    torch.testing.assert_close(
        trainer.method.predictor.matrix.detach(), expected, rtol=1e-4, atol=1e-5
    )


def test_lars_step_equals_its_formula_and_skips_bn_and_bias():
    """LARS (as BYOL): g' = g + wd w; trust = eta ||w|| / ||g'||; v = m v + trust g';
    w -= lr v. BatchNorm/bias groups: plain momentum SGD, no decay."""
    from linear_ssl.train.loop import LARS

    g = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3, generator=g))
    b = torch.nn.Parameter(torch.randn(4, generator=g))
    w.grad, b.grad = torch.randn(4, 3, generator=g), torch.randn(4, generator=g)
    w0, b0, gw, gb = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone()
    opt = LARS(
        [{"params": [w]}, {"params": [b], "lars": False, "weight_decay": 0.0}],
        lr=0.5,
        momentum=0.9,
        weight_decay=0.01,
        eta=0.02,
    )
    opt.step()
    gd = gw + 0.01 * w0
    trust = 0.02 * w0.norm() / gd.norm()
    torch.testing.assert_close(w.detach(), w0 - 0.5 * trust * gd)
    torch.testing.assert_close(b.detach(), b0 - 0.5 * gb)


def test_cosine_schedule_with_warmup():
    from linear_ssl.train.loop import lr_factor

    cfg = load_config(None, ["optim.schedule=cosine", "optim.warmup_steps=10"])
    assert lr_factor(cfg, 0, 110) == pytest.approx(0.1)
    assert lr_factor(cfg, 9, 110) == pytest.approx(1.0)
    assert lr_factor(cfg, 60, 110) == pytest.approx(0.5)
    assert lr_factor(cfg, 110, 110) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(load_config(None, []), 50, 110) == 1.0


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_facts_c_loss_and_target_are_what_the_method_computes(name):
    """theory.md N1: the trainer's loss is -c_L cos(q, z_a) (plus a constant) when both views
    agree, so ``c_loss`` is checked on symmetric_loss itself; ``ema_target`` is True exactly
    when the method moves its target by an EMA after a step (BYOL), False when Wa == W.
    Parametrised over the registry: a new method is checked without a new test."""
    method = METHODS[name]
    facts = method.facts()
    assert facts["name"] == name and facts["loss"] == "normalised"
    q, z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)).chunk(2)
    cos = torch.nn.functional.cosine_similarity(q, z, dim=-1).mean()
    torch.testing.assert_close(symmetric_loss(q, q, z, z), -facts["c_loss"] * cos)
    squared = method.facts("squared")  # method.loss=squared: c_L times T1's 1/2 ||q - z||^2
    half_sq = 0.5 * (q - z).pow(2).sum(-1).mean()
    torch.testing.assert_close(symmetric_loss(q, q, z, z, "squared"), squared["c_loss"] * half_sq)
    cfg = load_config(None, TINY + [f"method.name={name}"])
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.online_parameters():
            p.add_(1.0)
    before = [p.detach().clone() for p in model.parameters()]
    model.update_target()
    moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert moved is facts["ema_target"]
