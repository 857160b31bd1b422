"""CPU cost of what the trainer adds to a BYOL step (augmentation, EMA, rule, recorder).

Times three things on the same ResNet-18 (+ projector 512 -> 512 -> 128) at batch 128,
32 px, on the CPU:

1. ``bare``: forward + backward of the online network on one batch of 128 pre-made
   images (the reference cost the issue names);
2. ``core``: what any BYOL step must compute, with no trainer around it: the online
   forward/backward on both views, the two target forwards and the SGD step, on
   pre-made views;
3. ``trainer``: ``Trainer.train_step`` of linear_ssl (BYOL + DirectPred R1 every step +
   recorder estimate each step) plus a spectra record every ``--record-every`` steps
   (amortised), including the batched kornia augmentation from uint8.

Overhead: each part the trainer adds (augmentation, EMA, rule, estimates, record / k) is
timed on its own and compared with the core step (goal: under 15 %); the whole-step
difference (trainer - core) / trainer is printed too, but on a shared machine it is
dominated by noise. Run:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_train_step.py [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _time(fn, steps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--record-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from linear_ssl.train.config import load_config
    from linear_ssl.train.loop import Trainer

    overrides = [
        f"model.width={args.width}",
        f"batch_size={args.batch}",
        "record.progress=false",
        f"record.every={args.record_every}",
        "data.name=embedded",
    ]
    cfg = load_config("cifar10/directpred", overrides)
    trainer = Trainer(cfg, Path(tempfile.mkdtemp(prefix="bench_train_step_")))
    method, B = trainer.method, args.batch
    images = trainer.images[:B]
    v1, v2 = trainer.augment.two_views(images)
    sgd = torch.optim.SGD(method.parameters(), lr=1e-3, momentum=0.9)

    def bare() -> None:
        z = method.projector(method.backbone(v1))
        method.zero_grad(set_to_none=True)
        z.square().mean().backward()

    def core() -> None:
        p1 = method.predictor(method.projector(method.backbone(v1)))
        p2 = method.predictor(method.projector(method.backbone(v2)))
        with torch.no_grad():
            t1, t2 = method.targets(v1, v2, None, None)
        loss = -(p1 * t2).sum(-1).mean() - (p2 * t1).sum(-1).mean()
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    def step() -> None:
        trainer.train_step(images)

    out = trainer.train_step(images)

    def estimates() -> None:
        method.predictor.observe(out.z1, out.z2, out.t1, out.t2)
        trainer.recorder.observe(out)

    # What the trainer adds, each part timed on its own (robust to a noisy machine).
    k = args.record_every
    parts = {
        "augmentation (uint8 -> 2 views)": lambda: trainer.augment.two_views(images),
        "EMA target update (_foreach)": method.update_target,
        "R1 rule (eigh) + set Wp": lambda: method.predictor.after_optimizer_step(1),
        "F_hat, C_to estimates (rule + recorder)": estimates,
        f"spectra record, amortised over {k}": lambda: trainer.recorder.record(method, out),
    }
    part_times = {name: statistics.median(_time(f, 5)) for name, f in parts.items()}
    part_times[f"spectra record, amortised over {k}"] /= k
    results: dict[str, list[float]] = {"bare": [], "core": [], "trainer": []}
    for _ in range(args.steps):  # interleaved, so load changes hit all three alike
        for name, fn in (("bare", bare), ("core", core), ("trainer", step)):
            results[name] += _time(fn, 1, warmup=0)
    med = {name: statistics.median(v) for name, v in results.items()}
    added = sum(part_times.values())
    print(
        f"ResNet-18 width {args.width}, batch {B}, 32 px, {torch.get_num_threads()} threads, "
        f"median of {args.steps} interleaved steps"
    )
    print(f"bare fwd+bwd (1 view of {B})            {med['bare']:.3f} s")
    print(f"core BYOL step (2 views, target, SGD)   {med['core']:.3f} s")
    print(f"trainer step (Trainer.train_step)       {med['trainer']:.3f} s")
    for name, t in part_times.items():
        print(f"  + {name:40s} {1000 * t:8.2f} ms")
    share = 100 * added / (med["core"] + added)
    print(f"added by the trainer: {1000 * added:.1f} ms = {share:.2f} % of a step (parts alone)")
    whole = 100 * (med["trainer"] - med["core"]) / med["trainer"]
    print(f"(trainer - core) / trainer over whole steps: {whole:.1f} % (noisy on a shared CPU)")
    print(f"trainer step / bare fwd+bwd: {med['trainer'] / med['bare']:.2f}x")


if __name__ == "__main__":
    main()
