"""One prepared GPU session for issue 15 ([T] Table 8 on one GPU), each phase under a budget.

Phases, in order (seconds each from the command line; a phase stops cleanly at its budget
and still writes what it has):

1. ``throughput``: images a second of the Table 8 step (ResNet-18, batch 128, DirectPred
   every step) and of batch 512, eager and ``speed.compile=step`` (compile time apart),
   plus a short torch.profiler table of one step.
2. ``table8``: the 100-epoch DirectPred run (cifar10/directpred) on the CIFAR-10 JPEG zips
   in ``.data/``, then the offline probe (theory.md section 5), beside the paper's
   85.21 +- 0.23 ([T] Table 8; the JPEG re-encoding costs a little accuracy).
3. ``fig2``: if time is left, the first epochs of the trainable linear predictor
   (cifar10/linear) for [T] Fig. 2's spectra.

Everything goes under ``$OUT`` (default ./gpu_out): session.json, session.md and PNGs.

    python benchmarks/gpu_session.py --phases throughput --budget 420
    python benchmarks/gpu_session.py --phases table8 fig2 --budget 480 60
    python benchmarks/gpu_session.py --tiny       # CPU check: tiny net, embedded data
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

DATA = Path(".data")
TRAIN_ZIP, TEST_ZIP = "cifar10-jpeg-train.zip", "cifar10-jpeg-test.zip"
PAPER = (85.21, 0.23)  # [T] Table 8, DirectPred, 100 epochs, linear top-1 %
TINY = [
    "model.width=4",
    "model.projector_hidden=16",
    "model.projector_out=8",
    "augment.image_size=16",
    "data.name=embedded",
    "data.limit=64",
    "eval.probe_epochs=2",
    "batch_size=16",
]


def data_overrides(args: argparse.Namespace, *zips: str) -> list[str]:
    """Overrides reading the zips in --data; a one-line SystemExit naming what is missing."""
    if args.tiny:
        return []
    missing = [z for z in zips if not (args.data / z).is_file()]
    if missing:
        raise SystemExit(
            f"{', '.join(missing)} missing under {args.data}/: copy it from "
            "/work/shared/data (see benchmarks/README.md, GPU section) and carry .data"
        )
    over = ["data.name=imagefolder", f"data.root={args.data / TRAIN_ZIP}"]
    if TEST_ZIP in zips:
        over.append(f"data.test_root={args.data / TEST_ZIP}")
    return over


def throughput(args, budget: float, out: Path) -> dict:
    """Images a second (batch 128 and 512; eager and compiled step), compile time apart."""
    from torch.profiler import ProfilerActivity, profile

    from linear_ssl.train import load_config
    from linear_ssl.train.loop import Trainer

    end, results = time.monotonic() + budget, {}
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    batches = (16,) if args.tiny else (128, 512)
    data = ["data.name=embedded"]  # 5,000 CIFAR-10 images: the zips' size, so their speed
    for batch in batches:
        for compile_ in ("false",) if args.tiny else ("false", "step"):
            if time.monotonic() > end:
                results[f"b{batch}-{compile_}"] = "skipped: budget spent"
                continue
            with tempfile.TemporaryDirectory() as tmp:
                over = [*(TINY if args.tiny else []), *data, f"batch_size={batch}"]
                over += [f"speed.compile={compile_}", "record.progress=false", "record.every=0"]
                if cuda:
                    over += ["speed.amp=bf16", "speed.channels_last=true"]
                cfg = load_config("cifar10/directpred", [*over, f"run_dir={tmp}/r"])
                trainer = Trainer(cfg, Path(cfg.run_dir))
                source = (b for e in range(10**6) for b in trainer._batches(e, 0))
                t0 = time.perf_counter()
                for _ in range(args.warmup):
                    trainer.train_step(next(source))
                sync()
                warm, steps, t1 = time.perf_counter() - t0, 0, time.perf_counter()
                while steps < args.steps and time.monotonic() < end:
                    trainer.train_step(next(source))
                    steps += 1
                sync()
                elapsed = time.perf_counter() - t1
                row = {"warmup_s": warm, "steps": steps, "ms_per_step": 1e3 * elapsed / steps}
                row["images_per_s"] = steps * batch / elapsed
                results[f"b{batch}-{compile_}"] = row
                if compile_ == "false" and batch == batches[0]:
                    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
                    with profile(activities=activities) as prof:
                        trainer.train_step(next(source))
                        sync()
                    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
                    table = prof.key_averages().table(sort_by=sort, row_limit=12)
                    (out / "profile.txt").write_text(table)
    return results


def train_and_probe(args, config: str, budget: float, extra: list[str]) -> dict:
    """Train ``config`` for what ``budget`` allows (max_steps from --epochs), then probe."""
    from linear_ssl.runs import load_run
    from linear_ssl.train import evaluate_run, load_config, resume, train

    run_dir = args.runs / config.replace("/", "-")
    over = [*(TINY if args.tiny else []), *data_overrides(args, TRAIN_ZIP, TEST_ZIP), *extra]
    over += ["eval.at_end=false", "record.progress=false", "checkpoint.every=390"]
    cfg = load_config(config, [*over, f"run_dir={run_dir}"])
    row = {"config": config, "epochs": cfg.epochs}
    train_budget = max(1, int(budget * (1 - args.probe_share)))

    def stop(*_):
        raise KeyboardInterrupt  # the loop's finally closes cleanly; checkpoints stay

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(train_budget)  # the rest of the budget is the probe's
    try:
        if (run_dir / "checkpoints").is_dir():
            resume(run_dir)  # a second call continues the run
        else:
            train(cfg)
    except KeyboardInterrupt:
        row["stopped"] = f"training budget {train_budget} s spent"
    finally:
        signal.alarm(0)
    if not (run_dir / "checkpoints").is_dir():
        row["eval"] = None
        return row
    row["steps"] = int(load_run(run_dir).metrics["step"].iloc[-1])
    row["eval"] = evaluate_run(run_dir, probe_epochs=2 if args.tiny else None)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", nargs="+", default=["throughput", "table8", "fig2"])
    parser.add_argument("--budget", nargs="+", type=float, default=[420, 480, 60])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--runs", type=Path, default=Path("gpu_runs"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--probe-share", type=float, default=0.1, help="of a run's budget")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny net, few steps")
    args = parser.parse_args(argv)
    unknown = set(args.phases) - {"throughput", "table8", "fig2"}
    if unknown or len(args.budget) not in (1, len(args.phases)):
        parser.error("phases are throughput, table8, fig2; give one budget or one per phase")
    if args.tiny:
        args.steps, args.warmup, args.epochs = 3, 1, 1
    out = Path(os.environ.get("OUT", "gpu_out"))
    out.mkdir(parents=True, exist_ok=True)
    budgets = args.budget * len(args.phases) if len(args.budget) == 1 else args.budget
    report = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    steps = ["max_steps=4"] if args.tiny else [f"epochs={args.epochs}"]
    for phase, budget in zip(args.phases, budgets, strict=True):
        t0 = time.monotonic()
        if phase == "throughput":
            report[phase] = throughput(args, budget, out)
        elif phase == "table8":
            report[phase] = train_and_probe(args, "cifar10/directpred", budget, steps)
        else:
            report[phase] = train_and_probe(args, "cifar10/linear", budget, steps)
        report[phase + "_s"] = time.monotonic() - t0
        write(report, out)
    return 0


def write(report: dict, out: Path) -> None:
    """session.json and session.md (the Table 8 row beside the paper's)."""
    (out / "session.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [f"# GPU session on {report['device']}", ""]
    for key, row in report.get("throughput", {}).items():
        if isinstance(row, dict):
            rate, warm = row["images_per_s"], row["warmup_s"]
            lines.append(f"- {key}: {rate:,.0f} img/s, warm-up {warm:.0f} s")
    t8 = report.get("table8", {}).get("eval")
    if t8:
        acc = 100 * t8["probe_final"] if t8["probe_final"] <= 1 else t8["probe_final"]
        lines.append(f"- Table 8 DirectPred: {acc:.2f} % (paper {PAPER[0]} +- {PAPER[1]}; JPEG)")
    (out / "session.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
