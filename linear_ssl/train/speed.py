"""One device, fast: the ``speed:`` config section (each switch off by default but fused).

- ``amp: bf16``: the forward pass and the loss under ``torch.autocast`` (bfloat16) on the
  training device; gradients, optimiser state and the running F_hat / C_to stay float32
  (``distributed.SyncedCorrelation`` casts the features before the EMA).
- ``channels_last``: model and views in NHWC memory order (faster convolutions on
  tensor cores; the same numbers up to float rounding).
- ``compile``: ``true`` / ``encoders``: ``nn.Module.compile()`` of the online and target
  encoders (in place, so state_dict keys and checkpoints are unchanged); ``step``: the
  whole forward step on both views (online and target encoders, predictor, loss; its
  backward is compiled with it; the augmentation and the running F_hat update stay
  eager) as one ``torch.compile``, with CUDA graphs (``mode="reduce-overhead"``) on CUDA,
  where a batch-128 step is launch-bound. The first steps pay the compilation.
- ``fused``: ``torch.optim.SGD(fused=True)`` on CUDA, ``foreach=True`` elsewhere (one
  multi-tensor kernel instead of a loop over parameters). The BYOL EMA update is already
  one ``torch._foreach_lerp_`` (methods/byol.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def autocast(cfg: Any, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``speed.amp`` on ``device`` (a null context for fp32)."""
    if cfg.speed.amp == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def prepare_views(v: torch.Tensor, cfg: Any) -> torch.Tensor:
    """A batch of views in the memory order the model expects."""
    return v.contiguous(memory_format=torch.channels_last) if cfg.speed.channels_last else v


def prepare_model(method: nn.Module, cfg: Any) -> nn.Module:
    """channels_last and compile applied to a built Method (on its device)."""
    if cfg.speed.channels_last:
        method = method.to(memory_format=torch.channels_last)
    if cfg.speed.compile in (True, "encoders"):
        for name in ("backbone", "projector", "target_backbone", "target_projector"):
            module = getattr(method, name, None)
            if module is not None:
                module.compile()
    return method


def compile_step(forward: Callable[..., Any], method: nn.Module, cfg: Any, device: torch.device):
    """``forward`` (two views -> StepOutput) compiled whole for ``speed.compile=step``
    (CUDA graphs on CUDA), else unchanged.

    The predictor's ``observe`` (the running F_hat of section 3) stays eager: its estimate
    counts batches in a Python int, which a traced step would guard on and recompile for
    at every step; the graph breaks there, after the loss.
    """
    if cfg.speed.compile != "step":
        return forward
    method.predictor.observe = torch.compiler.disable(method.predictor.observe)
    if device.type == "cuda":
        return torch.compile(forward, mode="reduce-overhead", dynamic=False)
    # Inductor's CPU code for this backward segfaults (torch 2.13, seen 2026-12-01): on the
    # CPU the step is traced and run through AOTAutograd without Inductor's kernels.
    return torch.compile(forward, backend="aot_eager", dynamic=False)


def step_begin(cfg: Any) -> None:
    """Mark a new step for CUDA graph trees (the last step's graph outputs may be reused)."""
    if cfg.speed.compile == "step":
        torch.compiler.cudagraph_mark_step_begin()


def optimizer_kwargs(cfg: Any, device: torch.device) -> dict[str, bool]:
    """Keyword arguments of torch.optim.SGD for ``speed.fused`` on ``device``."""
    if not cfg.speed.fused:
        return {}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}
