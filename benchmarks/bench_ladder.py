"""theory.md section 8's ladder on real CIFAR-10: does the theory predict what the network did?

Runs every rung (linear / linear-cosine / mlp / resnet, a trainable linear predictor
throughout: [T] Fig. 2's setting for the ResNet) over seeds on a fixed random subset of the
CIFAR-10 JPEG train zip, each rung with its own number of steps, into OUT/RUNG/ (its runs,
and its own ladder.json and ladder.md), then writes OUT/ladder.json (every rung, with its
seconds) and OUT/ladder.md (the table, [T] Fig. 2's trends with their signs, what was
unavailable) and prints the table and one verdict per rung. It draws no figure (the
``linear-ssl ladder`` command writes ladder.png). The full size (10k images, 3 seeds; rung
4 a ResNet-18 of width 16 for 20 epochs of a 3,000-image subset, 480 steps of 128: issue
12's 20 epochs of 10k images, 1,560 steps, take about 1.5 h a seed on the 2-core CPU) took
about 1.5 h in all; ``--reduced`` is the earlier, smaller size. ``--lr`` and ``--steps``
change the step for a finite-step check (rung 1 at lr 0.01, dt = 0.1: ``--rungs linear
--lr 0.01 --steps 1500``). ``--rescore`` scores the runs already under OUT again, without
training.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_ladder.py \
        --data /work/shared/data/cifar10-jpeg-train.zip --out runs/bench_ladder
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_ladder.py --reduced \
        --data /work/shared/data/cifar10-jpeg-train.zip --out runs/bench_ladder_reduced
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from linear_ssl.bridge import ladder
from linear_ssl.runs import atomic_write_text

FULL = {"linear": 600, "linear-cosine": 600, "mlp": 600, "resnet": 480}
FULL_IMAGES = {"resnet": 3_000}  # 20 epochs of 3k at width 16 (10k: 1.5 h a seed)
REDUCED = {"linear": 300, "linear-cosine": 300, "mlp": 300, "resnet": 80}


def rescore(out: Path, rung: str) -> dict:
    """The summary of a rung's existing runs (OUT/RUNG/runs/RUNG-seed*), scored afresh."""
    from linear_ssl.runs import load_run

    dirs = sorted((out / rung / "runs").glob(f"{rung}-seed*"))
    if not dirs:
        raise SystemExit(f"no runs of {rung} under {out / rung / 'runs'}: run without --rescore")
    results = [ladder.assess_run(d) for d in dirs]
    row = ladder.summarise(rung, results, load_run(dirs[0]).config)
    row["curves"] = results[0]["curves"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ImageFolder zip or dir")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ladder"))
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--width", type=int, default=16, help="ResNet width of rung 4")
    parser.add_argument("--rungs", default=",".join(ladder.RUNGS))
    parser.add_argument("--reduced", action="store_true", help="the CPU-feasible size")
    parser.add_argument("--rescore", action="store_true", help="score existing runs again")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD lr (momentum 0.9)")
    parser.add_argument("--steps", type=int, default=None, help="steps of every rung")
    args = parser.parse_args()
    steps = dict(REDUCED if args.reduced else FULL)
    if args.steps is not None:
        steps = dict.fromkeys(steps, args.steps)
    images = {} if args.reduced else FULL_IMAGES
    width = 8 if args.reduced else args.width
    rows, seconds = [], {}
    for rung in args.rungs.split(","):
        start = time.perf_counter()
        if args.rescore:
            rows.append(rescore(args.out, rung))
            seconds[rung] = math.nan
            continue
        rows += ladder.run_ladder(
            args.out / rung, data=args.data, rungs=[rung], seeds=args.seeds,
            steps=steps[rung], limit=min(args.images, images.get(rung, args.images)),
            width=width, lr=args.lr,
        )  # fmt: skip
        seconds[rung] = time.perf_counter() - start
        print(f"{rung}: {seconds[rung]:.0f} s", flush=True)
    for row in rows:
        row["seconds"] = seconds[row["rung"]]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "ladder.json", json.dumps(rows, indent=1, default=float))
    table = ladder.markdown(rows)
    atomic_write_text(args.out / "ladder.md", table)
    size = "reduced" if args.reduced else "full"
    sizes = f"{args.images} images (of a rung: {images}), {args.seeds} seeds, steps {steps}"
    print(f"## ladder ({size}: {sizes}, lr {args.lr})\n")
    print(table)
    print("\n".join(ladder.verdicts(rows)))


if __name__ == "__main__":
    main()
