"""CPU: two ranks (gloo, torchrun) against one process, step time and scaling efficiency.

Times ``Trainer.train_step`` (augmentation, forward, backward with DDP's bucketed
gradient all-reduce, SGD, EMA, DirectPred, the recorder's gathered F_hat / C_to) after a
warm-up, each process on one thread:

- ``1 proc, batch B``: the single-process reference;
- ``2 ranks, global 2B`` (weak scaling: each rank still sees B): efficiency = the
  one-process step time / the two-rank step time (1.0: communication is free);
- ``2 ranks, global B`` (strong scaling: each rank sees B/2): speed-up over one process
  (2.0 ideal).

A regression in the distributed path (an extra collective, a host sync) shows as lower
efficiency. Run (the machine must have two free cores for the numbers to mean anything):

    .venv/bin/python benchmarks/bench_ddp.py [--steps 20] [--batch 64] [--width 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    """One process (or one torchrun rank): time train_step; rank 0 prints JSON."""
    import torch

    torch.set_num_threads(1)
    from linear_ssl.train import load_config
    from linear_ssl.train.loop import Trainer

    rank = int(os.environ.get("RANK", "0"))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cfg = load_config(
            "smoke",
            [
                f"model.width={args.width}",
                f"batch_size={args.global_batch}",
                "record.progress=false",
                "record.every=0",
                f"run_dir={run_dir}",
            ],
        )
        trainer = Trainer(cfg, run_dir)
        batches = trainer._batches(0, 0)
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        times = []
        for _ in range(args.steps):
            trainer.dist.barrier()
            start = time.perf_counter()
            trainer.train_step(next(batches))
            float(trainer._loss_sum)  # wait for the step (a no-op on the CPU)
            times.append(time.perf_counter() - start)
        trainer.dist.barrier()
        if rank == 0:
            print(json.dumps({"median_s": statistics.median(times), "min_s": min(times)}))
        trainer.dist.finish()


def _launch(ranks: int, global_batch: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    own = [__file__, "--worker", f"--global-batch={global_batch}"]
    own += [f"--steps={args.steps}", f"--warmup={args.warmup}", f"--width={args.width}"]
    if ranks == 1:
        cmd = [sys.executable, *own]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc_per_node={ranks}", *own]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--global-batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help="per-process batch B")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--width", type=int, default=8, help="ResNet-18 width (smoke: 8)")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    B = args.batch
    one = _launch(1, B, args)
    weak = _launch(2, 2 * B, args)
    strong = _launch(2, B, args)
    print(f"ResNet-18 width {args.width}, 32 px, BYOL + DirectPred, {args.steps} timed steps")
    print("| setup | step (median ms) | images/s | vs one process |")
    print("|---|---|---|---|")
    weak_eff = one["median_s"] / weak["median_s"]
    strong_up = one["median_s"] / strong["median_s"]
    rows = [
        (f"1 proc, batch {B}", one, B, "1.00"),
        (f"2 ranks, global {2 * B}", weak, 2 * B, f"efficiency {weak_eff:.2f}"),
        (f"2 ranks, global {B}", strong, B, f"speed-up {strong_up:.2f}x"),
    ]
    for name, r, images, versus in rows:
        ms = 1e3 * r["median_s"]
        print(f"| {name} | {ms:.1f} | {images / r['median_s']:.0f} | {versus} |")


if __name__ == "__main__":
    main()
