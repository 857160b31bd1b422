"""The speed switches change how the section-5 step is computed, not what it computes:
bf16 autocast trains and stays near float32, channels_last and torch.compile give the loss
of the contiguous eager model, and a bf16 run resumed from a checkpoint is still bitwise
deterministic on the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import array_api_compat.torch as xpc  # noqa: E402
from tiny import TINY_MODEL  # noqa: E402

from linear_ssl.runs import load_run  # noqa: E402
from linear_ssl.train import load_config, resume, train  # noqa: E402
from linear_ssl.train.loop import Trainer  # noqa: E402
from linear_ssl.train.speed import optimizer_kwargs  # noqa: E402

TINY = [
    *TINY_MODEL,
    "data.limit=96",
    "record.every=2",
    "record.log_every=1",
    "checkpoint.every=3",
    "checkpoint.keep=5",
]


# torch 2.13's CPU kernels corrupt the heap in the backward pass of the width-4 ResNet
# with channels_last (eager) or compiled by inductor ("free(): invalid next size", measured
# on this project's 2-core AMD EPYC, pure torch, no linear_ssl code involved); width 8 runs
# clean, so the tests of those two switches use it.
WIDTH_8 = ["model.width=8"]


def _trainer(tmp_path: Path, name: str, extra: list[str]) -> Trainer:
    cfg = load_config(None, [*TINY, *extra, f"run_dir={tmp_path / name}"])
    return Trainer(cfg, Path(cfg.run_dir))


def _final(run_dir: Path) -> dict:
    last = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]
    return torch.load(last, map_location="cpu", weights_only=True)


def _flat_params(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in trainer.method.online_parameters()])


def test_bf16_step_is_close_to_float32(tmp_path):
    """Section 5 under bf16 autocast: the first loss within 0.05 of float32's and the first
    update pointing the same way (cosine > 0.8). bf16 keeps 8 significant bits (relative
    rounding 2^-9 per operation); through a ResNet-18 forward the features carry about 1%
    error, so each cosine in the loss (-2 cos twice, range [-4, 4]) moves by about 0.01 and
    the loss by a few hundredths, while one training step moves it by about 0.6. The
    gradient of a batch mean is a small difference of large per-sample terms, so its
    relative error is larger: cosine 0.88 measured at batch 16 (0.94 at 32, the same at
    width 16), against -1 for a sign error and about 0 for an unrelated direction."""
    runs = {}
    for amp in ("fp32", "bf16"):
        trainer = _trainer(tmp_path, amp, ["max_steps=1", f"speed.amp={amp}"])
        before = _flat_params(trainer)
        trainer.fit()
        runs[amp] = (
            load_run(trainer.writer.dir).metrics["loss"].iloc[0],
            _flat_params(trainer) - before,
        )
    (loss32, step32), (loss16, step16) = runs["fp32"], runs["bf16"]
    assert loss16 == pytest.approx(loss32, abs=0.05)
    cosine = float(step16 @ step32 / (step16.norm() * step32.norm()))
    assert cosine > 0.8


def test_bf16_trains_with_float32_estimates(tmp_path):
    """A few bf16 steps: finite losses, and F_hat (R1) kept in float32 (the closed-form
    rule's eigendecomposition needs it); Wp set by DirectPred (R2) is finite."""
    trainer = _trainer(tmp_path, "amp", ["max_steps=4", "speed.amp=bf16"])
    trainer.fit()
    losses = load_run(trainer.writer.dir).metrics["loss"].to_numpy()
    assert len(losses) == 4 and all(abs(x) < 4 for x in losses)  # |loss| <= 4 (two -2 cos)
    assert trainer.method.predictor.estimate.F.dtype == torch.float32
    assert torch.isfinite(trainer.method.predictor.matrix).all()


def test_channels_last_gives_the_contiguous_loss(tmp_path):
    """NHWC memory order computes the same section-5 step: the first loss equal to float32
    rounding through another convolution kernel (1e-4; 4.4e-5 measured at width 8), the
    second (after one update, which the different rounding perturbs) to 1e-3 (only 2 steps:
    at this width training is chaotic and longer runs would compare rounding)."""
    losses = []
    for flag in ("false", "true"):
        trainer = _trainer(tmp_path, flag, [*WIDTH_8, "max_steps=2", f"speed.channels_last={flag}"])
        assert trainer.method.backbone.stem[0].weight.is_contiguous(
            memory_format=torch.channels_last
        ) == (flag == "true")
        trainer.fit()
        losses.append(load_run(trainer.writer.dir).metrics["loss"].to_numpy())
    assert losses[1][0] == pytest.approx(losses[0][0], rel=1e-4)  # width 8: 4.4e-5 measured
    assert losses[1][1] == pytest.approx(losses[0][1], rel=1e-3)


def test_bf16_resume_is_bitwise_deterministic(tmp_path):
    """A bf16 run resumed from its step-3 checkpoint ends bitwise equal to the run never
    stopped (parameters, optimiser state, F_hat / C_to, metrics)."""
    common = ["max_steps=6", "speed.amp=bf16"]
    full = train(load_config(None, [*TINY, *common, f"run_dir={tmp_path / 'full'}"]))
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "step_00000006.pt").unlink()
    resume(cut)
    a, b = _final(full), _final(cut)
    assert a["step"] == b["step"] == 6
    for key, value in a["method"].items():
        if torch.is_tensor(value):
            assert torch.equal(value, b["method"][key]), key
    for sa, sb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    cols = ["step", "loss"]
    assert load_run(cut).metrics[cols].equals(load_run(full).metrics[cols])


def test_fused_optimizer_choice():
    """speed.fused: fused SGD on CUDA, foreach elsewhere, nothing when off."""
    on = load_config(None, ["speed.fused=true"])
    off = load_config(None, ["speed.fused=false"])
    assert optimizer_kwargs(on, torch.device("cuda")) == {"fused": True}
    assert optimizer_kwargs(on, torch.device("cpu")) == {"foreach": True}
    assert optimizer_kwargs(off, torch.device("cpu")) == {}


@pytest.mark.parametrize("override", ["speed.amp=fp8", "speed.compile=graph"])
def test_a_bad_speed_setting_is_a_one_line_error(override):
    key = override.split("=")[0]
    with pytest.raises(ValueError, match=key) as err:
        load_config(None, [override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_compiled_encoders_give_the_eager_loss(tmp_path):
    """torch.compile of the encoders (45 s to compile on a cold 2-core CPU, 5 s with
    the inductor cache warm): the losses of
    2 steps equal the eager ones to float rounding, and checkpoint keys are unchanged."""
    results = []
    for flag in ("false", "true"):
        trainer = _trainer(
            tmp_path, flag, [*WIDTH_8, "max_steps=2", "record.every=0", f"speed.compile={flag}"]
        )
        trainer.fit()
        results.append(
            (load_run(trainer.writer.dir).metrics["loss"].to_numpy(), _final(trainer.writer.dir))
        )
    (eager, a), (compiled, b) = results
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert a["method"].keys() == b["method"].keys()


@pytest.mark.slow
def test_compiled_step_gives_the_eager_losses_and_wp(tmp_path):
    """speed.compile=step (the whole forward step as one torch.compile; on the CPU through
    AOTAutograd, about 20 s to trace): 4 steps of the loop, records every 2, give the eager
    section-5 losses and the Wp that DirectPred (R1, on the trusted path) sets after the
    last step to float rounding (identical measured), with no recompilation (the
    estimate's batch count stays out of the traced step; a recompilation would raise)."""
    runs = []
    for flag in ("false", "step"):
        over = [*WIDTH_8, "max_steps=4", "checkpoint.every=4", f"speed.compile={flag}"]
        trainer = _trainer(tmp_path, flag, over)
        with torch._dynamo.config.patch(error_on_recompile=True):
            trainer.fit()
        run = load_run(trainer.writer.dir)
        assert list(run.metrics["step"]) == [1, 2, 3, 4]
        runs.append((run.metrics["loss"].to_numpy(), trainer.method.predictor.matrix.detach()))
    (eager, wp_eager), (compiled, wp_compiled) = runs
    assert compiled == pytest.approx(eager, rel=1e-5)
    torch.testing.assert_close(wp_compiled, wp_eager, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile_", ["false", "step"])
def test_directpred_steps_synchronise_the_host_only_in_eigh(tmp_path, monkeypatch, compile_):
    """No host sync inside the step on CUDA but eigh's own convergence flag (R1's solver,
    tests/test_trusted_rules.py): 3 steps of the real loop (DirectPred every step on the
    trusted path, EMA, fused SGD; eager, or speed.compile=step with CUDA graphs) under
    torch.cuda.set_sync_debug_mode("error"), with eigh alone run at the default mode; after
    3 warm-up steps (compilation, graph capture), batches drawn before (the epoch's
    permutation is copied to the device once per epoch). eigh is called once a step, the
    deferred rule checks pass and the loss is finite."""
    eigh, calls = xpc.linalg.eigh, []

    def eigh_allowed_to_sync(a):
        calls.append(a.shape)
        torch.cuda.set_sync_debug_mode("default")
        try:
            return eigh(a)
        finally:
            torch.cuda.set_sync_debug_mode("error")

    over = [*TINY, "device=cuda", "record.every=0", "predictor.rule=directpred"]
    cfg = load_config(None, [*over, f"speed.compile={compile_}", f"run_dir={tmp_path}"])
    trainer = Trainer(cfg, tmp_path)
    batches = trainer._batches(0, 0)
    drawn = [next(batches) for _ in range(6)]
    for batch in drawn[:3]:
        trainer.train_step(batch)
    torch.cuda.synchronize()
    monkeypatch.setattr(xpc.linalg, "eigh", eigh_allowed_to_sync)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in drawn[3:]:
            out = trainer.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(calls) == 3
    trainer.method.predictor.raise_deferred()
    assert torch.isfinite(out.loss).item()
