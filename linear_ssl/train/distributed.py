"""Many processes: torchrun, sharded global batches, all-reduced gradients and estimates.

``linear-ssl train ...`` launched by ``torchrun`` (environment RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) joins a process group (nccl on CUDA, gloo on CPU).
Each step every rank takes its slice of the same seeded permutation (``batch_size`` is the
GLOBAL batch). The method runs inside ``DistributedDataParallel`` (``wrap_ddp``): it
broadcasts rank 0's parameters and buffers once, then averages the gradients over ranks in
buckets all-reduced while the backward pass is still running, so the optimiser step equals
a single process's on the whole batch. Buffers are not re-broadcast each step
(``forward_sync_buffers=False``): BatchNorm running statistics stay per rank unless
``model.sync_bn``. The online probe is averaged by ``all_reduce_gradients``.

F_hat and C_to (``predictors.RunningCorrelation``, in closed-form predictors and the
recorder) become ``SyncedCorrelation``: the step's features are all-gathered before the
EMA (R1), so every rank holds the estimate of the global batch and sets the same Wp. The
recorder's record-window means (C12, C11, C_to, E[f], A4's moments) are averaged over ranks
(``mean_over_ranks``) when a record is taken, so rank 0 writes the global batch's.
``model.sync_bn`` swaps BatchNorm for one whose batch statistics are summed over ranks
(``torch.nn.SyncBatchNorm`` on CUDA; ``GlooSyncBatchNorm`` elsewhere, since torch's
needs a GPU). Only rank 0 writes (metrics, spectra, status, checkpoints).

RNG: the augmentation draws from torch's global generator. With
``distributed.global_augment`` every rank augments the whole global batch from the same
seed and keeps its rows (identical to one process; costs world_size times the
augmentation). Otherwise rank r reseeds with ``rank_seed(seed, r, 0)`` after the model is
built; a checkpoint stores every rank's generator state, restored on a resume with the
same number of ranks and re-derived as ``rank_seed(seed, r, step)`` on a different one.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from linear_ssl.predictors import RunningCorrelation
from linear_ssl.runs import RunWriter


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for rank ``rank`` from step ``step`` on, distinct for every triple."""
    digest = hashlib.sha256(f"linear_ssl/{seed}/{rank}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Dist:
    """This process's place in the group (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    global_augment: bool = False
    owns_group: bool = False  # this module initialised the process group

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ValueError(
                f"batch_size={batch_size} (the global batch) is not divisible by the "
                f"{self.world} ranks: choose a multiple of {self.world}"
            )

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size``."""
        b = batch_size // self.world
        return slice(self.rank * b, (self.rank + 1) * b)

    def shard_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The image indices this rank loads (all of them under global_augment)."""
        return indices if self.global_augment else indices[self.rows(indices.shape[0])]

    def shard_views(self, v: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Under global_augment, this rank's rows of the globally augmented views."""
        return v[self.rows(batch_size)] if self.enabled and self.global_augment else v

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of ``x`` over ranks (a copy; ``x`` itself untouched)."""
        if not self.enabled:
            return x
        y = x.detach().clone()
        dist.all_reduce(y)
        return y

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of ``x`` over ranks (a copy; ``x`` itself untouched)."""
        return self.sum(x) / self.world if self.enabled else x

    def max(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.MAX)
        return y

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def finish(self) -> None:
        """Leave the process group if this module created it, once every rank is done
        (a rank tearing gloo down while another still works can abort the process)."""
        if self.owns_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def init_from_env(cfg: Any) -> Dist:
    """Join the torchrun process group named by the environment (a no-op without one).

    The backend is nccl when the config's device is CUDA (each rank on cuda:LOCAL_RANK),
    else gloo. Idempotent: a second call reuses the group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    global_augment = bool(cfg.distributed.global_augment)
    if world == 1:
        return Dist(global_augment=global_augment)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = str(cfg.device).startswith("cuda") or (
        cfg.device == "auto" and torch.cuda.is_available()
    )
    owns = False
    if not dist.is_initialized():
        backend = cfg.distributed.backend
        if backend == "auto":
            backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
        owns = True
    return Dist(rank, dist.get_world_size(), local_rank, global_augment, owns)


# ---------------------------------------------------------------------- gradients
def all_reduce_gradients(params: Iterable[nn.Parameter], ctx: Dist) -> None:
    """Average the gradients over ranks: one flat buffer, one all-reduce (sum / world)."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(ctx.world)
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(synced)


def wrap_ddp(method: nn.Module, ctx: Dist, device: torch.device) -> nn.Module:
    """``method`` in DistributedDataParallel when there are several ranks, else itself.

    Every parameter that requires a gradient must receive one each step (no
    ``find_unused_parameters`` search): heads with unused weights freeze them.
    """
    if not ctx.enabled:
        return method
    from torch.nn.parallel import DistributedDataParallel

    # Buffers synchronised at construction only (torch >= 2.13 renames the switch).
    options = inspect.signature(DistributedDataParallel).parameters
    no_forward_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in options
        else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(
        method,
        device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None,
        gradient_as_bucket_view=True,
        **no_forward_sync,
    )


# ---------------------------------------------------------------------- BatchNorm
class _SumOverRanks(torch.autograd.Function):
    """y = the sum over ranks of x. Every rank's loss reads y, so the gradient of x is the
    sum over ranks of y's gradients: an all-reduce both ways."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are the global batch's, in two exact passes
    (channel sums and counts, then squared deviations from the global mean, each summed
    over ranks by an autograd-aware all-reduce). Any backend, any device; alone (one
    process or eval mode) it is ordinary BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"BatchNorm input has shape {tuple(x.shape)}: it needs (N, C, ...)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        x = x.float()  # statistics and output in float32, as torch's BatchNorm under autocast
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = (1, C) + (1,) * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // C)
        sums = _SumOverRanks.apply(torch.cat([x.sum(dims), count]))
        n = sums[C:].detach()
        mean = sums[:C] / n
        var = _SumOverRanks.apply((x - mean.view(shape)).square().sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` synchronised across ranks (state_dict keys unchanged)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlooSyncBatchNorm
    ):
        bn = GlooSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        ).to(device)
        bn.load_state_dict(module.state_dict())
        for new, old in zip(bn.parameters(), module.parameters(), strict=True):
            new.requires_grad_(old.requires_grad)  # a frozen target stays frozen
        bn.train(module.training)
        return bn
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


# ---------------------------------------------------------------------- F_hat / C_to
def mean_over_ranks(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean over ranks of each tensor (one dtype), in one flat all-reduce queued on the
    device without a host sync: the recorder's window means of equal shards become the
    global batch's (theory.md section 8's C12, C11, C_to, E[f] and A4's moments)."""
    if not (tensors and dist.is_initialized() and dist.get_world_size() > 1):
        return tensors
    keys, values = list(tensors), list(tensors.values())
    flat = _flatten_dense_tensors(values)
    dist.all_reduce(flat)
    flat.div_(dist.get_world_size())
    return dict(zip(keys, _unflatten_dense_tensors(flat, values), strict=True))


def _gather(x: torch.Tensor) -> torch.Tensor:
    """The rows of every rank's ``x``, in rank order (the global batch's order)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class SyncedCorrelation(RunningCorrelation):
    """R1's running F_hat / C_to of the GLOBAL batch: each view's features are cast to
    float32 (outside autocast) and all-gathered across ranks before the EMA, so every rank
    holds the single-process estimate (up to summation order)."""

    def update(
        self,
        online: torch.Tensor | Sequence[torch.Tensor],
        target: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> None:
        def prepare(views):
            if views is None:
                return None
            views = [views] if isinstance(views, torch.Tensor) else list(views)
            return [_gather(v.float()) for v in views]

        device = (online if isinstance(online, torch.Tensor) else online[0]).device.type
        with torch.autocast(device, enabled=False):
            super().update(prepare(online), prepare(target))


def sync_estimates(owners: Iterable[Any]) -> None:
    """Replace each owner's fresh ``estimate`` (a RunningCorrelation) by a SyncedCorrelation."""
    for owner in owners:
        est = getattr(owner, "estimate", None)
        if isinstance(est, RunningCorrelation) and not isinstance(est, SyncedCorrelation):
            if est.count:
                raise ValueError("sync_estimates needs fresh estimates: call it before training")
            owner.estimate = SyncedCorrelation(est.rho, cross=est.cross, centre=est.centre)


def prepare_method(method: nn.Module, cfg: Any) -> nn.Module:
    """SyncBatchNorm (``model.sync_bn``) and running estimates of the global batch."""
    device = next(method.parameters()).device
    if cfg.model.sync_bn:
        method = convert_sync_batchnorm(method, device)
    sync_estimates(method.modules())
    return method


# ---------------------------------------------------------------------- RNG and files
def _rng_here() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def seed_ranks(seed: int, ctx: Dist) -> None:
    """Rank r's augmentation stream: rank_seed(seed, r, 0) (left alone under global_augment
    or in one process, where the single-process stream is kept)."""
    if ctx.enabled and not ctx.global_augment:
        torch.manual_seed(rank_seed(seed, ctx.rank, 0))


def add_rank_rng(state: dict[str, Any], ctx: Dist) -> dict[str, Any]:
    """Every rank's generator state under ``state["rng_ranks"]`` (a collective)."""
    if ctx.enabled:
        states: list[Any] = [None] * ctx.world
        dist.all_gather_object(states, _rng_here())
        state["rng_ranks"] = states
    return state


def restore_rank_rng(state: dict[str, Any], seed: int, ctx: Dist) -> None:
    """After the loop restored rank 0's generator: this rank's own state when the checkpoint
    has one per rank, else (another number of ranks) ``rank_seed(seed, rank, step)``."""
    if not ctx.enabled or ctx.global_augment:
        return
    saved = state.get("rng_ranks")
    if saved is not None and len(saved) == ctx.world:
        torch.set_rng_state(saved[ctx.rank]["torch"])
        if "cuda" in saved[ctx.rank] and torch.cuda.is_available():
            torch.cuda.set_rng_state(saved[ctx.rank]["cuda"])
    else:
        torch.manual_seed(rank_seed(seed, ctx.rank, int(state["step"])))


class ReadOnlyWriter(RunWriter):
    """A rank other than 0: finds checkpoints, writes nothing."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)

    def write_config(self, yaml_text: str) -> None:
        pass

    def write_status(self, state: str, **info: Any) -> None:
        pass

    def append_metrics(self, row: Any) -> None:
        pass

    def write_spectra(self, step: int, arrays: Any) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass

    def write_eval(self, results: Any) -> Path:
        return self.dir / "eval.json"


def writer_for(run_dir: str | Path, ctx: Dist) -> RunWriter:
    return RunWriter(run_dir) if ctx.is_main else ReadOnlyWriter(run_dir)
