"""The training loop: data on the device, seeded batches, SGD/LARS, checkpoints, resume.

One step (theory.md section 5): two augmented views -> the method's symmetric loss ->
backward -> optimiser step -> ``method.after_optimizer_step`` (EMA target, then a
closed-form rule every ``freq`` steps) -> the recorder's running estimates. The step
never synchronises with the host: the loss and a non-finite flag accumulate on the
device and are read every ``record.log_every`` steps and at checkpoints; a spectra
record is snapshotted at its step and written after the next step is queued.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from tqdm.auto import tqdm

from linear_ssl.predictors import RunningCorrelation
from linear_ssl.runs import CONFIG_FILE, LOCK_FILE, RunWriter, run_lock
from linear_ssl.train import distributed, speed
from linear_ssl.train.augment import build_augment
from linear_ssl.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from linear_ssl.train.config import (
    as_config,
    check_resume_overrides,
    load_config,
    run_config_yaml,
)
from linear_ssl.train.data import dataset_stats, load_dataset, subset
from linear_ssl.train.evaluate import (
    evaluate_features,
    extract_features,
    extract_loader_features,
)
from linear_ssl.train.methods import Method, build_method, build_predictor
from linear_ssl.train.nets import mlp, pixel_encoder, resnet
from linear_ssl.train.probe import OnlineProbe
from linear_ssl.train.recorder import Recorder
from linear_ssl.train.stream import Stream, eval_loader


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class CollapseError(RuntimeError):
    """The projector's RankMe stayed below its floor and ``record.stop_on_collapse`` is set."""


def resolve_device(name: str) -> torch.device:
    """The device named by ``config.device``; auto picks cuda, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"config device={name!r} is invalid: use auto, cpu, mps, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"config device={name!r}: CUDA is not available here; use device=auto")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"config device={name!r}: this machine has {torch.cuda.device_count()} CUDA "
            "devices (cuda:0 ...); use device=auto or an existing index"
        )
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(f"config device={name!r}: MPS is not available here; use device=auto")
    return device


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) as in BYOL: SGD momentum on a layer-wise trust-ratio-scaled
    gradient. Groups with ``lars=False`` (BatchNorm and biases) skip the trust ratio and
    weight decay. No host sync: the ratio is a ``torch.where`` on device tensors.
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
    ) -> None:
        super().__init__(
            params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True)
        )

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["lars"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    ratio = torch.where(
                        (w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, 1.0
                    )
                    g = g * ratio
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(g)
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])


def build_model(cfg: DictConfig) -> Method:
    """Backbone + projector (theory.md section 5), the predictor head and the method."""
    m = cfg.model

    def build_encoder() -> tuple[nn.Module, nn.Module]:
        if m.arch != "resnet":  # theory.md section 8's pixel encoders: no projector
            encoder = pixel_encoder(m.arch, m.pixels, m.projector_out, m.projector_hidden)
            return encoder, nn.Identity()
        backbone = resnet(m.depth, m.stem, m.width)
        projector = mlp(
            backbone.out_dim, m.projector_hidden, m.projector_out, bn_affine=m.bn_affine
        )
        return backbone, projector

    predictor = build_predictor(cfg.predictor, m.projector_out)
    return build_method(cfg.method, build_encoder, predictor)


def build_optimizer(cfg: DictConfig, method: Method) -> torch.optim.Optimizer:
    """SGD (coupled weight decay, as [T]) or LARS; the predictor gets predictor.lr.

    LARS groups: weights adapted and decayed; BatchNorm/bias parameters (ndim 1) neither.
    Each group keeps its ``base_lr`` so a schedule can scale it.
    """
    o = cfg.optim
    predictor_lr = cfg.predictor.lr if cfg.predictor.lr is not None else o.lr
    parts = [
        (method.online_parameters(), o.lr),
        ([p for p in method.predictor.parameters() if p.requires_grad], predictor_lr),
    ]
    groups = []
    for params, lr in parts:
        if o.name == "lars":
            groups.append(dict(params=[p for p in params if p.ndim > 1], base_lr=lr, lr=lr))
            groups.append(
                dict(
                    params=[p for p in params if p.ndim <= 1],
                    base_lr=lr,
                    lr=lr,
                    lars=False,
                    weight_decay=0.0,
                )
            )
        else:
            groups.append(dict(params=params, base_lr=lr, lr=lr))
    groups = [g for g in groups if g["params"]]
    if o.name == "lars":
        return LARS(
            groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, eta=o.lars_eta
        )
    device = next(method.parameters()).device
    return torch.optim.SGD(
        groups,
        lr=o.lr,
        momentum=o.momentum,
        weight_decay=o.weight_decay,
        **speed.optimizer_kwargs(cfg, device),
    )


def lr_factor(cfg: DictConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at (0-based) ``step``: 1, or warm-up + cosine."""
    if cfg.optim.schedule == "none":
        return 1.0
    warmup = cfg.optim.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    span = max(total_steps - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Holds one run's state; ``fit()`` trains from ``self.step`` to the end."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.dist = distributed.init_from_env(cfg)  # torchrun's process group, if any
        self.dist.check_batch(cfg.batch_size)
        self.device = resolve_device(cfg.device)
        self.writer = distributed.writer_for(run_dir, self.dist)  # rank 0 writes
        torch.manual_seed(cfg.seed)
        d = cfg.data
        self.stream = Stream(cfg, self.device) if d.stream else None  # ImageNet-size data
        if self.stream is None:
            train_set = load_dataset(
                d.name, d.root, d.train_split, download=d.download, cache_dir=d.cache_dir
            )
            self.images = subset(train_set.images, d.limit).to(self.device)
            self.labels = subset(train_set.labels, d.limit).to(self.device)  # online probe
        self.steps_per_epoch = (
            len(self.stream) if self.stream else self.images.shape[0] // cfg.batch_size
        )
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size={cfg.batch_size} exceeds the {self.images.shape[0]} training "
                "images: lower batch_size"
            )
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = total if cfg.max_steps is None else min(total, cfg.max_steps)
        mean, std = dataset_stats(d.name)
        self.augment = build_augment(
            cfg.augment.recipe,
            cfg.augment.image_size,
            mean,
            std,
            crop_scale=tuple(cfg.augment.crop_scale),
        )
        if self.stream is not None:  # the workers crop; the device does the rest
            self.augment = self.stream.augment
        self.method = build_model(cfg).to(self.device)
        self.probe = None  # eval.online_probe (resident data only, config.validate)
        if cfg.eval.online_probe:
            dim, classes = self.method.backbone.out_dim, len(train_set.classes)
            self.probe = OnlineProbe(dim, classes, cfg.eval.online_probe_lr).to(self.device)
        self.method = distributed.prepare_method(self.method, cfg)
        self.method = speed.prepare_model(self.method, cfg)
        self.model = distributed.wrap_ddp(self.method, self.dist, self.device)  # steps run it
        distributed.seed_ranks(cfg.seed, self.dist)
        self.method.train()
        self.optimizer = build_optimizer(cfg, self.method)
        self._forward = speed.compile_step(self._forward_step, self.method, cfg, self.device)
        rho = cfg.record.rho if cfg.record.rho is not None else cfg.predictor.rho
        rec = cfg.record
        self.recorder = (
            Recorder(rho, rec.every, rec.batches, rec.collapse_floor, rec.collapse_window)
            if rec.every > 0
            else None
        )
        distributed.sync_estimates([self.recorder])
        if self.recorder is not None and self.dist.enabled:
            self.recorder.reduce = distributed.mean_over_ranks
        self.step = 0
        self._pending = None  # a spectra snapshot waiting for its host copies
        self._reset_window()

    # ------------------------------------------------------------------ state
    def _reset_window(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)
        self._window_start = self.step

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "recorder": self.recorder.state_dict() if self.recorder else None,
            "probe": self.probe.checkpoint() if self.probe else None,
            "window": {"loss_sum": self._loss_sum, "start": self._window_start},
            "rng": _rng_state(self.device),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint. The learning rates are this config's (a resume may lower
        them), and a recorder the checkpoint lacks (record.every was 0) starts afresh."""
        self.step = int(state["step"])
        self.method.load_state_dict(state["method"])
        base_lrs = [group["base_lr"] for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, base_lr in zip(self.optimizer.param_groups, base_lrs, strict=True):
            group["base_lr"] = base_lr
        if self.recorder is not None and state["recorder"] is not None:
            self.recorder.load_state_dict(state["recorder"], self.device)
        if self.probe is not None:
            self.probe.restore(state["probe"])
        self._reset_window()
        self._loss_sum = state["window"]["loss_sum"].to(self.device)
        self._window_start = int(state["window"]["start"])
        _set_rng_state(state["rng"])
        distributed.restore_rank_rng(state, self.cfg.seed, self.dist)

    def save_checkpoint(self) -> Path:
        self._loss_sum = self.dist.mean(self._loss_sum)  # the window's loss, on every rank
        state = distributed.add_rank_rng(self.state_dict(), self.dist)
        path = self.writer.checkpoint_path(self.step)
        if self.dist.is_main:
            save_checkpoint(state, path)
            for _, old in self.writer.checkpoints()[: -self.cfg.checkpoint.keep]:
                old.unlink()
        info = self._collapse_info()
        self.writer.write_status("running", step=self.step, total_steps=self.total_steps, **info)
        self.dist.barrier()
        return path

    # ------------------------------------------------------------------ training
    def _permutation(self, epoch: int) -> torch.Tensor:
        """The batch order of ``epoch``: a permutation seeded by (seed, epoch) on the CPU."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return torch.randperm(self.images.shape[0], generator=g).to(self.device)

    def _batches(self, epoch: int, start: int):
        """The uint8 batches of ``epoch`` from batch ``start`` on: resident or streamed."""
        if self.stream is not None:
            yield from self.stream.batches(epoch, start)
            return
        order, B = self._permutation(epoch), self.cfg.batch_size
        for i in range(start, self.steps_per_epoch):
            index = self.dist.shard_indices(order[i * B : (i + 1) * B])
            self.batch_labels = self.labels[index]  # the online probe's targets
            yield self.images[index]

    def _check_finite(self) -> None:
        bad = int(self.dist.max(self._bad_step))
        if bad >= 0:
            ckpts = self.writer.checkpoints()
            kept = f"the last good checkpoint is {ckpts[-1][1]}" if ckpts else "no checkpoint"
            raise NonFiniteLossError(
                f"the loss became non-finite at step {bad}: training stopped, {kept} "
                "(lower optim.lr or predictor.lr and resume or restart)"
            )
        self.method.predictor.raise_deferred()  # the closed-form rule's device-side checks

    def _collapse_info(self) -> dict[str, Any]:
        """status.json / metrics keys of a run flagged as collapsing (none if it is not)."""
        watch = self.recorder.collapse if self.recorder is not None else None
        if watch is None or watch.flagged is None:
            return {}
        return {"collapsing_since": watch.flagged, "warning": watch.message()}

    def _check_collapse(self, info: dict[str, Any]) -> None:
        """Stop a run flagged as collapsing (on every rank: rank 0's flag decides), keeping a
        checkpoint, when record.stop_on_collapse is set."""
        if not self.cfg.record.stop_on_collapse:
            return
        if info := self.dist.broadcast_object(info):  # ranks see their own batches
            self._write_record()  # the tracker state the checkpoint keeps
            self.save_checkpoint()
            raise CollapseError(f"{info['warning']}: stopped (record.stop_on_collapse=true)")

    def _forward_step(self, v1: torch.Tensor, v2: torch.Tensor):
        """Both views -> the method's StepOutput (section 5): online and target encoders,
        predictor, loss; what ``speed.compile=step`` compiles whole."""
        with speed.autocast(self.cfg, self.device):
            return self.model(v1, v2)

    def train_step(self, batch: torch.Tensor):
        """One optimisation step on a uint8 batch; returns the method's StepOutput."""
        factor = lr_factor(self.cfg, self.step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        v1, v2 = (
            speed.prepare_views(self.dist.shard_views(v, self.cfg.batch_size), self.cfg)
            for v in self.augment.two_views(batch)
        )
        speed.step_begin(self.cfg)
        out = self._forward(v1, v2)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.step += 1
        loss = out.loss.detach()
        self._loss_sum += loss
        newly_bad = (self._bad_step < 0) & ~torch.isfinite(loss)
        self._bad_step = torch.where(
            newly_bad, self._bad_step.new_full((), self.step), self._bad_step
        )
        try:
            self.method.after_optimizer_step(self.step)
        except (RuntimeError, ValueError):  # e.g. a rule on a NaN F_hat: name the loss first
            self._check_finite()
            raise
        if self.recorder is not None:
            self.recorder.observe(out, self.step, self.method)
        return out

    @torch.no_grad()
    def _record_step0(self) -> None:
        """theory.md section 8's record at step 0: the window estimate over the first
        ``record.batches`` batches, forward only (the RNG state is restored after, so the
        run itself is the one it would be without this record)."""
        rng = _rng_state(self.device)
        batches = self._batches(0, 0)
        out = None
        for _ in range(self.recorder.batches):
            batch = next(batches, None)
            if batch is None:
                break
            views = (
                speed.prepare_views(self.dist.shard_views(v, self.cfg.batch_size), self.cfg)
                for v in self.augment.two_views(batch)
            )
            with speed.autocast(self.cfg, self.device):
                out = self.model(*views)
            self.recorder.window.add(
                out.z1, out.z2, out.t1, out.t2,
                self.method.predictor(out.z1.float()), self.method.predictor(out.z2.float()),
            )  # fmt: skip
        _set_rng_state(rng)
        if out is not None:  # F_hat's arrays from the last batch alone; the estimate stays fresh
            kept = self.recorder.estimate
            self.recorder.estimate = RunningCorrelation(kept.rho, cross=True)
            self.recorder.estimate.update([out.z1, out.z2], [out.t1, out.t2])
            self._pending = self.recorder.snapshot(0, self.method, out)
            self.recorder.estimate = kept
            self._write_record()

    def _write_record(self) -> None:
        """Write the pending spectra record (a snapshot not finite is dropped: the next
        finiteness check names the step)."""
        if self._pending is not None:
            arrays = self.recorder.complete(self._pending)
            if arrays is not None:
                self.writer.write_spectra(self._pending.step, arrays)
            self._pending = None

    def _log(self, out, elapsed: float, images: int) -> dict[str, Any]:
        n = self.step - self._window_start
        loss = float(self.dist.mean(self._loss_sum)) / max(n, 1)  # over ranks
        row = {
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "loss": loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "img_per_s": images / elapsed if elapsed > 0 else float("nan"),
        }
        row.update(Recorder.feature_pr(out))
        if "collapsing_since" in (info := self._collapse_info()):
            row["collapsing_since"] = info["collapsing_since"]
        if self.probe is not None:
            row.update(self.probe.metrics(self.dist))
        self.writer.append_metrics(row)
        self._loss_sum.zero_()
        self._window_start = self.step
        return row

    def fit(self) -> None:
        cfg = self.cfg
        log_every, record_every = cfg.record.log_every, cfg.record.every
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not cfg.record.progress,
            desc=cfg.name,
            unit="step",
            dynamic_ncols=True,
        )
        self.writer.write_config(run_config_yaml(cfg))  # the effective config, method_facts
        info = self._collapse_info()  # a resumed run keeps its flag
        self.writer.write_status("running", step=self.step, total_steps=self.total_steps, **info)
        tick, tick_step = time.perf_counter(), self.step
        B = cfg.batch_size
        try:
            if record_every and self.step == 0:
                self._record_step0()
            while self.step < self.total_steps:
                epoch, start = divmod(self.step, self.steps_per_epoch)
                for batch in self._batches(epoch, start):
                    if self.step >= self.total_steps:
                        break
                    out = self.train_step(batch)
                    self._write_record()  # the last step's snapshot, while this one runs
                    if self.probe is not None:
                        labels = self.dist.shard_views(self.batch_labels, B)
                        self.probe.step(out.h1, labels, self.dist)
                    s, last = self.step, self.step == self.total_steps
                    if record_every and s % record_every == 0:
                        self._pending = self.recorder.snapshot(s, self.method, out)
                    if s % log_every == 0 or last:
                        self._check_finite()
                        now = time.perf_counter()
                        row = self._log(out, now - tick, (s - tick_step) * B)
                        self._check_collapse(self._collapse_info())
                        tick, tick_step = now, s
                        bar.update(s - bar.n)
                        bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['img_per_s']:.0f}")
                    if s % cfg.checkpoint.every == 0 or last:
                        self._write_record()  # the tracker state the checkpoint keeps
                        self._check_finite()
                        self.save_checkpoint()
        except (NonFiniteLossError, ValueError, RuntimeError) as err:
            info = {k: v for k, v in self._collapse_info().items() if k != "warning"}
            self.writer.write_status("failed", step=self.step, message=str(err), **info)
            raise
        finally:
            bar.close()
        info = self._collapse_info()
        self.writer.write_status("finished", step=self.step, total_steps=self.total_steps, **info)


# ---------------------------------------------------------------------- entry points
def _new_run_dir(cfg: DictConfig) -> tuple[Path, bool]:
    """The run directory to create (refused when not empty), and whether it was absent."""
    if cfg.run_dir:
        run_dir = Path(cfg.run_dir).expanduser()
    else:
        run_dir = Path("runs") / f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"run directory {run_dir} is not empty: resume it (linear-ssl train --resume "
            f"{run_dir}) or choose another run_dir"
        )
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, created


def _writer_lock(run_dir: Path, ctx: distributed.Dist):
    """The run directory's single-writer lock (rank 0 writes, so rank 0 holds it)."""
    return run_lock(run_dir) if ctx.is_main else contextlib.nullcontext()


def _clear_failed_start(run_dir: Path) -> None:
    """Remove what a start that failed before its first step left (the lock stays held)."""
    for entry in run_dir.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def train(config: DictConfig | dict | str | Path) -> Path:
    """Train from a config (DictConfig, dict, TrainConfig or YAML path/name); the run dir.

    The run directory is locked for the whole run (``runs.run_lock``: one writer). A start
    that fails before its first step completes (a bad data root, an image that does not
    decode in the first batch) leaves no run directory behind; a run that fails later
    keeps its directory, with status.json "failed".
    """
    cfg = as_config(config)
    ctx = distributed.init_from_env(cfg)  # under torchrun: rank 0 names the run dir
    run_dir, created = _new_run_dir(cfg) if ctx.is_main else (None, False)
    run_dir = Path(ctx.broadcast_object(str(run_dir) if ctx.is_main else None))
    cfg.run_dir = str(run_dir)
    trained = False
    try:
        with _writer_lock(run_dir, ctx):
            trainer = None
            try:
                trainer = Trainer(cfg, run_dir)
                trainer.fit()
            except BaseException:
                if ctx.is_main and (trainer is None or trainer.step == 0):
                    _clear_failed_start(run_dir)  # nothing trained: leave no stub behind
                raise
            trained = True
            ctx.finish()  # the other ranks are done: rank 0 evaluates alone, however long
            if cfg.eval.at_end and ctx.is_main:
                evaluate_run(run_dir)
    finally:
        if created and not trained and ctx.is_main:
            with contextlib.suppress(OSError):  # kept (not empty) when some steps ran
                run_dir.rmdir()
    return run_dir


def train_from_cli(config: str | Path, overrides: list[str]) -> Path:
    """``linear-ssl train CONFIG key=value ...``: an experiment name or YAML path + overrides."""
    return train(load_config(config, overrides))


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """The validated config of an existing run directory (one-line error if none), with
    ``overrides`` applied (only the keys ``config.RESUME_KEYS`` allows)."""
    path = Path(run_dir).expanduser()
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a run directory: it has no {CONFIG_FILE}")
    return load_config(path / CONFIG_FILE, check_resume_overrides(overrides or []))


def _load_checkpoint(writer: RunWriter, checkpoint: str | Path | None) -> dict[str, Any]:
    if checkpoint is None:
        found = writer.checkpoints()
        if not found:
            raise FileNotFoundError(
                f"{writer.dir} has no checkpoint in checkpoints/: nothing to resume or evaluate"
            )
        checkpoint = found[-1][1]
    return load_checkpoint(checkpoint)


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> Path:
    """Continue a stopped run from its newest checkpoint to the end of its config.

    Records and metrics newer than the checkpoint are dropped first, so the finished run
    equals one that was never stopped (bitwise on CPU). ``overrides`` (``key=value``) may
    change only ``config.RESUME_KEYS`` (learning rates, epochs / max_steps, record and
    checkpoint settings); config.yaml then holds the effective config and
    config_history.jsonl gets a line with the step and the overrides. A run another live
    process is writing is refused (``runs.RunLockedError``).
    """
    run_dir = Path(run_dir).expanduser()
    cfg = load_run_config(run_dir, overrides)
    ctx = distributed.init_from_env(cfg)
    with _writer_lock(run_dir, ctx):
        state = _load_checkpoint(RunWriter(run_dir), None)
        trainer = Trainer(cfg, run_dir)
        trainer.load_state_dict(state)
        trainer.writer.truncate_after(trainer.step)
        if ctx.is_main:
            trainer.writer.append_history(trainer.step, overrides or [])
        trainer.fit()
        trainer.dist.finish()
    return run_dir


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    probe_epochs: int | None = None,
    knn_k: int | None = None,
    device: str | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``linear-ssl eval RUN``: linear probe + kNN of the run's backbone -> eval.json.

    Uses the newest checkpoint (or ``checkpoint``), the config's data set with its
    ``eval_train_split`` / ``test_split`` (under ``data.test_root`` when set), the eval
    transform of its augment recipe and ``eval.probe_epochs`` / ``eval.knn_k`` unless
    given. ``*_limit`` keep a fixed random subset (``data.subset``). Streamed data
    (``data.stream``) is read as central crops (``stream.eval_loader``), never held whole.
    """
    run_dir = Path(run_dir).expanduser()
    cfg = load_run_config(run_dir)
    with run_lock(run_dir):  # eval.json has one writer too
        return _evaluate_locked(
            cfg, run_dir, checkpoint, probe_epochs, knn_k, device, train_limit, test_limit, progress
        )


def _evaluate_locked(
    cfg: DictConfig,
    run_dir: Path,
    checkpoint: str | Path | None,
    probe_epochs: int | None,
    knn_k: int | None,
    device: str | None,
    train_limit: int | None,
    test_limit: int | None,
    progress: bool,
) -> dict[str, Any]:
    writer = RunWriter(run_dir)
    state = _load_checkpoint(writer, checkpoint)
    dev = resolve_device(device or cfg.device)
    method = build_model(cfg)
    method.load_state_dict(state["method"])
    backbone = method.backbone.to(dev).eval()
    d, d_eval = cfg.data, cfg.eval
    mean, std = dataset_stats(d.name)
    augment = build_augment(cfg.augment.recipe, cfg.augment.image_size, mean, std)
    t0 = time.perf_counter()
    features, labels, classes = [], [], None
    for split, limit in ((d.eval_train_split, train_limit), (d.test_split, test_limit)):
        root = d.test_root if d.test_root is not None and split == d.test_split else d.root
        if d.stream:  # too large to hold: center crops decoded by DataLoader workers
            loader, classes = eval_loader(cfg, root, split, limit, dev)
            x, y = extract_loader_features(
                backbone, loader, augment.eval_transform, dev, progress=progress
            )
        else:
            s = load_dataset(d.name, root, split, download=d.download, cache_dir=d.cache_dir)
            images = subset(s.images, limit)
            x = extract_features(backbone, images, augment.eval_transform, d_eval.batch_size, dev)
            y, classes = subset(s.labels, limit).to(dev), s.classes
        features.append(x)
        labels.append(y)
    results = evaluate_features(
        features[0],
        labels[0],
        features[1],
        labels[1],
        num_classes=len(classes) if classes else None,
        probe_epochs=probe_epochs or d_eval.probe_epochs,
        knn_k=knn_k or d_eval.knn_k,
        seed=cfg.seed,
        progress=progress,
    )
    results.update(
        step=int(state["step"]),
        train_images=int(labels[0].shape[0]),
        test_images=int(labels[1].shape[0]),
        seconds=time.perf_counter() - t0,
    )
    writer.write_eval(results)
    return results
