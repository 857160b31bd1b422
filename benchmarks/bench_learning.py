"""Does the trainer learn? BYOL + DirectPred on real CIFAR-10, probed against random init.

Pre-trains on a fixed random subset of the CIFAR-10 JPEG train zip (ImageFolder reader),
then runs the linear probe (theory.md section 5: frozen, standardised features, logistic
regression, Adam 3e-4, wd 1e-3) and kNN (k = 200) on the same training subset -> a subset
of the test zip, for the trained backbone AND the same architecture at its random
initialisation (same seed). calibration.md: a few hundred CPU steps do not lift the probe
above random init; about 20-40 epochs of 10,000 images at width 16 do (16-32 minutes on
2 cores). Writes RUN_DIR (a normal run directory) and RUN_DIR/bench_learning.json.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_learning.py \
        --data /work/shared/data --epochs 30 --run-dir runs/bench_learning
    # quick check that it runs (a few steps, tiny probe):
    .venv/bin/python benchmarks/bench_learning.py --data /work/shared/data --max-steps 5 \
        --images 1000 --test-images 500 --probe-epochs 2 --run-dir /tmp/bench_learning_check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("/work/shared/data"),
        help="folder with cifar10-jpeg-train.zip and cifar10-jpeg-test.zip",
    )
    parser.add_argument("--run-dir", type=Path, default=Path("runs/bench_learning"))
    parser.add_argument("--images", type=int, default=10_000, help="pre-training subset")
    parser.add_argument("--test-images", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--probe-epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from linear_ssl.runs import RunWriter, load_run
    from linear_ssl.train import load_config, train
    from linear_ssl.train.augment import build_augment
    from linear_ssl.train.data import dataset_stats, load_dataset, subset
    from linear_ssl.train.evaluate import evaluate_backbone
    from linear_ssl.train.loop import _load_checkpoint, build_model

    train_zip = args.data / "cifar10-jpeg-train.zip"
    test_zip = args.data / "cifar10-jpeg-test.zip"
    # calibration.md's learning setting: width 16, lr 0.05, EMA 0.99, crop scale 0.2-1.
    overrides = [
        "data.name=imagefolder",
        f"data.root={train_zip}",
        f"data.limit={args.images}",
        f"model.width={args.width}",
        "model.projector_hidden=256",
        "model.projector_out=64",
        "optim.lr=0.05",
        "method.ema=0.99",
        "augment.crop_scale=[0.2,1.0]",
        f"epochs={args.epochs}",
        f"seed={args.seed}",
        f"run_dir={args.run_dir}",
        "record.every=100",
        "record.log_every=20",
        "checkpoint.every=500",
        "name=bench_learning",
        "eval.at_end=false",
    ]
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    cfg = load_config("cifar10/directpred", overrides)
    start = time.perf_counter()
    run_dir = train(cfg)
    train_minutes = (time.perf_counter() - start) / 60

    mean, std = dataset_stats("imagefolder")
    transform = build_augment("cifar10", 32, mean, std).eval_transform
    probe_train = load_dataset("imagefolder", train_zip, "train")
    probe_train.images = subset(probe_train.images, args.images)
    probe_train.labels = subset(probe_train.labels, args.images)
    probe_test = load_dataset("imagefolder", test_zip, "test")
    probe_test.images = subset(probe_test.images, args.test_images)
    probe_test.labels = subset(probe_test.labels, args.test_images)

    torch.manual_seed(args.seed)
    random_init = build_model(cfg).backbone.eval()  # same seed: the run's own init
    trained = build_model(cfg)
    state = _load_checkpoint(RunWriter(run_dir), None)
    trained.load_state_dict(state["method"])
    results = {}
    for name, backbone in (("random_init", random_init), ("trained", trained.backbone.eval())):
        out = evaluate_backbone(
            backbone,
            probe_train,
            probe_test,
            transform,
            probe_epochs=args.probe_epochs,
            knn_k=200,
            seed=args.seed,
        )
        results[name] = {k: out[k] for k in ("probe_final", "probe_best", "knn")}
    run = load_run(run_dir)
    summary = {
        "steps": int(state["step"]),
        "epochs": args.epochs,
        "images": args.images,
        "test_images": args.test_images,
        "width": args.width,
        "train_minutes": round(train_minutes, 2),
        "final_backbone_pr": float(run.metrics["backbone_pr"].iloc[-1]),
        **results,
    }
    (Path(run_dir) / "bench_learning.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
