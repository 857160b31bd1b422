"""torch.profiler of one training step: where the time goes (top 15 ops by self time).

Builds a ``Trainer`` from an experiment config (default: smoke, on the embedded CIFAR-10
subset) plus overrides, runs a few warm-up steps (compilation, allocator), then profiles
one ``Trainer.train_step`` (augmentation, forward, backward, SGD, EMA, the closed-form
rule, the recorder's estimate) on the CPU, and on CUDA too when the device is a GPU.
Run:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_step.py [smoke] [key=value ...]
    # on a GPU, the configuration of bench_gpu_throughput.py:
    python benchmarks/profile_step.py smoke model.width=64 model.projector_hidden=512 \\
        model.projector_out=128 batch_size=512 speed.amp=bf16 speed.compile=true \\
        speed.channels_last=true
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="smoke")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    from linear_ssl.train import load_config
    from linear_ssl.train.loop import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        overrides = ["record.progress=false", *args.overrides, f"run_dir={run_dir}"]
        cfg = load_config(args.config, overrides)
        trainer = Trainer(cfg, run_dir)
        batches = trainer._batches(0, 0)
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        batch = next(batches)
        cuda = trainer.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            trainer.train_step(batch)
            if cuda:
                torch.cuda.synchronize()
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(
            f"one step: {cfg.model.depth}-layer ResNet width {cfg.model.width}, batch "
            f"{cfg.batch_size}, {cfg.augment.image_size} px, amp {cfg.speed.amp}, compile "
            f"{cfg.speed.compile}, device {trainer.device}, torch threads "
            f"{torch.get_num_threads()}"
        )
        print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))


if __name__ == "__main__":
    main()
