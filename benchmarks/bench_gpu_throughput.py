"""GPU images a second: CIFAR-10 ResNet-18 BYOL + DirectPred, batch 512, bf16, compiled.

The configuration of issue "Trainer at scale" (goal: 15,000 images/s on one H100, a
CIFAR-10 epoch under 4 s): ResNet-18 (CIFAR stem, width 64), projector 512 -> 512 -> 128,
BYOL (EMA 0.996) with a DirectPred predictor applied every step, the recorder's estimate
each step, batch 512, ``speed.amp=bf16``, ``speed.compile=true``,
``speed.channels_last=true``, fused SGD, the training images resident on the GPU as uint8
and both views augmented there. Each source image is counted once (a step = 512 images,
whatever the number of views). Warm-up steps (compilation) are not timed; the timed
window ends with a ``torch.cuda.synchronize``.

    python benchmarks/bench_gpu_throughput.py [--data /work/shared/data] [--steps 100]

Without ``--data`` it trains on the embedded 5,000-image CIFAR-10 subset (same image
size, so the same speed). Prints "no CUDA device: skipped" where there is no GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder holding cifar10-jpeg-train.zip")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("overrides", nargs="*", help="more key=value config overrides")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    from linear_ssl.train import load_config
    from linear_ssl.train.loop import Trainer

    data = ["data.name=embedded"]
    if args.data is not None:
        data = ["data.name=imagefolder", f"data.root={args.data / 'cifar10-jpeg-train.zip'}"]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cfg = load_config(
            None,
            [
                *data,
                "device=cuda",
                "model.depth=18",
                "model.width=64",
                "model.projector_hidden=512",
                "model.projector_out=128",
                "method.name=byol",
                "method.ema=0.996",
                "predictor.kind=closed_form",
                "predictor.rule=directpred",
                "predictor.freq=1",
                f"batch_size={args.batch}",
                "epochs=1000",
                "speed.amp=bf16",
                f"speed.compile={not args.no_compile}",
                "speed.channels_last=true",
                "speed.fused=true",
                "record.progress=false",
                "record.every=0",
                *args.overrides,
                f"run_dir={run_dir}",
            ],
        )
        trainer = Trainer(cfg, run_dir)

        def batches():
            epoch = 0
            while True:
                yield from trainer._batches(epoch, 0)
                epoch += 1

        source = batches()
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            trainer.train_step(next(source))
        torch.cuda.synchronize()
        warm = time.perf_counter() - t0
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(next(source))
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    rate = args.steps * args.batch / elapsed
    print(
        f"{torch.cuda.get_device_name()}: {rate:,.0f} images/s "
        f"({1e3 * elapsed / args.steps:.1f} ms/step, batch {args.batch}, "
        f"compile {not args.no_compile}); CIFAR-10 epoch (50,000) {50_000 / rate:.1f} s; "
        f"warm-up {args.warmup} steps {warm:.0f} s"
    )


if __name__ == "__main__":
    main()
