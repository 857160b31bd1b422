"""One prepared GPU session for issue 15 ([T] Table 8 on one GPU), each phase under a budget.

Phases, in order (seconds each from the command line, all within ``--total``; a phase stops
cleanly at its budget and still writes what it has):

1. ``throughput``: images a second of the Table 8 step (ResNet-18, batch 128, DirectPred
   every step) and of batch 512, eager and ``speed.compile=step`` (warm-up / compile time
   apart, graphs traced during the timed steps counted), plus a torch.profiler table of
   one eager batch-128 step.
2. ``table8``: the 100-epoch DirectPred run (cifar10/directpred) on the CIFAR-10 JPEG zips,
   stopped at a step boundary with a checkpoint when its budget is spent (the same command
   again resumes it while the machine is still warm), then the offline probe (theory.md
   section 5) beside the paper's 85.21 +- 0.23 ([T] Table 8; JPEG re-encoded images).
3. ``fig2``: with the time left, the first epochs of the trainable linear predictor
   (cifar10/linear) and [T] Fig. 2's spectra of that run.

Output, flat under ``$OUT`` (default ./gpu_out; at most 8 small files, as the device tool
returns them): session.json, session.md, profile.txt, table8_eval.json,
table8_metrics.csv, fig2_spectra.png. Runs (checkpoints) stay under ``--runs``.

    python benchmarks/gpu_session.py --pack /work/shared/data   # here: .data/*.zip.gz
    python benchmarks/gpu_session.py --phases throughput --budget 150
    python benchmarks/gpu_session.py --phases table8 fig2 --budget 520 60 --total 540
    python benchmarks/gpu_session.py --tiny       # CPU check: tiny net, embedded data
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

DATA = Path(".data")
TRAIN_ZIP, TEST_ZIP = "cifar10-jpeg-train.zip", "cifar10-jpeg-test.zip"
SHA256 = {  # ../shared/data/README.md
    TRAIN_ZIP: "6e2e607f69aa1f1911bc52edd9e069776c34edc9c048b36f704ff7282ad75eac",
    TEST_ZIP: "55c374eb7b05108515204903dd54a414b050da5ac2f17d1e49661db9e61fed0d",
}
PAPER = (85.21, 0.23)  # [T] Table 8, DirectPred, 100 epochs, linear top-1 %
# The fast path on CUDA (benchmarks/README.md, GPU session); --speed replaces it.
CUDA_SPEED = ["speed.amp=bf16", "speed.channels_last=true", "speed.compile=step"]
TINY = [
    "model.width=4",
    "model.projector_hidden=16",
    "model.projector_out=8",
    "augment.image_size=16",
    "data.name=embedded",
    "data.limit=64",
    "eval.probe_epochs=2",
    "batch_size=16",
    "max_steps=4",
]
QUIET = ["record.progress=false"]


class BudgetSpent(Exception):
    """A training phase reached its time budget (at a step boundary, checkpoint written)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(source: Path, data: Path) -> None:
    """Gzip the two zips into ``data`` (here, before a device call). Their JPEG members are
    stored uncompressed with the same headers, so gzip makes 65 MB about 20 MB: both fit
    one call's 64 MiB carry with the checkout and the wheels."""
    data.mkdir(parents=True, exist_ok=True)
    for name in SHA256:
        with (source / name).open("rb") as f, gzip.open(data / f"{name}.gz", "wb", 6) as g:
            shutil.copyfileobj(f, g, 1 << 20)
        print(f"{data / name}.gz: {(data / f'{name}.gz').stat().st_size / 1e6:.1f} MB")


def unpack(data: Path) -> None:
    """Each zip of ``data`` that is missing is restored from its .gz, checked by sha256."""
    for name, digest in SHA256.items():
        zipped = data / f"{name}.gz"
        if (data / name).is_file() or not zipped.is_file():
            continue
        with gzip.open(zipped, "rb") as g, (data / f"{name}.part").open("wb") as f:
            shutil.copyfileobj(g, f, 1 << 20)
        if _sha256(data / f"{name}.part") != digest:
            raise SystemExit(
                f"{zipped} does not unpack to the {name} of ../shared/data: pack again"
            )
        (data / f"{name}.part").rename(data / name)


def data_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides reading the zips in --data; a one-line SystemExit naming what is missing."""
    if args.tiny:
        return []
    unpack(args.data)
    missing = [z for z in SHA256 if not (args.data / z).is_file()]
    if missing:
        raise SystemExit(
            f"{', '.join(missing)} missing under {args.data}/: run --pack /work/shared/data "
            "here and carry .data (benchmarks/README.md, GPU session)"
        )
    return [
        "data.name=imagefolder",
        f"data.root={args.data / TRAIN_ZIP}",
        f"data.test_root={args.data / TEST_ZIP}",
    ]


def eager(speed: list[str]) -> list[str]:
    """The speed overrides less speed.compile."""
    return [s for s in speed if not s.startswith("speed.compile=")]


def graphs_traced() -> int:
    """torch.compile's graphs traced so far in this process (a recompilation adds some)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def time_steps(trainer, args, end: float) -> dict:
    """Warm-up steps (compilation, graph capture), then up to --steps timed steps."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    source = (b for e in range(10**6) for b in trainer._batches(e, 0))
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        trainer.train_step(next(source))
    sync()
    warm, graphs, steps, t1 = time.perf_counter() - t0, graphs_traced(), 0, time.perf_counter()
    while steps < args.steps and time.monotonic() < end:
        trainer.train_step(next(source))
        steps += 1
    sync()
    elapsed = time.perf_counter() - t1
    batch = trainer.cfg.batch_size
    return {
        "warmup_s": warm,
        "steps": steps,
        "ms_per_step": 1e3 * elapsed / steps,
        "images_per_s": steps * batch / elapsed,  # each source image once (two views)
        "graphs_traced_while_timed": graphs_traced() - graphs,
    }


def profile_step(trainer, out: Path) -> None:
    """profile.txt: torch.profiler's table of one step, by self device time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    source = trainer._batches(0, 0)
    with profile(activities=activities) as prof:
        trainer.train_step(next(source))
        if cuda:
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    (out / "profile.txt").write_text(prof.key_averages().table(sort_by=sort, row_limit=15))


def throughput(args, budget: float, out: Path, report: dict) -> dict:
    """Images a second (batch 128 and 512; eager and compiled step), compile time apart.
    A variant that fails is recorded in one line and the others still run."""
    from linear_ssl.train import load_config
    from linear_ssl.train.loop import Trainer

    end, results = time.monotonic() + budget, {}
    report["throughput"] = results
    fast = eager(args.speed)
    batches = (16,) if args.tiny else (128, 512)
    for batch in batches:
        for compile_ in ("false",) if args.tiny else ("false", "step"):
            key = f"b{batch}-{compile_}"
            if time.monotonic() > end:
                results[key] = "skipped: budget spent"
                continue
            over = [*(TINY if args.tiny else []), "data.name=embedded", *QUIET, *fast]
            over += [f"batch_size={batch}", f"speed.compile={compile_}", "record.every=0"]
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    cfg = load_config("cifar10/directpred", [*over, f"run_dir={tmp}/r"])
                    trainer = Trainer(cfg, Path(cfg.run_dir))
                    results[key] = time_steps(trainer, args, end)
                    if key == f"b{batches[0]}-false":
                        profile_step(trainer, out)
                except Exception as err:  # the session goes on; the row says why
                    results[key] = f"failed: {type(err).__name__}: {str(err).splitlines()[0]}"
            write(report, out)
    return results


@contextlib.contextmanager
def step_deadline(seconds: float):
    """Trainer steps stop at a step boundary once ``seconds`` have passed, after a
    checkpoint of that step (``resume`` continues from it), by raising BudgetSpent."""
    from linear_ssl.train.loop import Trainer

    deadline, original = time.monotonic() + seconds, Trainer.train_step

    def train_step(self, batch):
        if self.step > 0 and time.monotonic() > deadline:
            self._write_record()  # the tracker state the checkpoint keeps
            self.save_checkpoint()
            raise BudgetSpent(f"stopped at step {self.step}: training budget {seconds:.0f} s")
        return original(self, batch)

    Trainer.train_step = train_step
    try:
        yield
    finally:
        Trainer.train_step = original


def train_for(args, config: str, seconds: float, extra: list[str]) -> tuple[Path, dict]:
    """Train ``config`` (or resume its run under --runs) for at most ``seconds``."""
    from linear_ssl.runs import RunWriter, load_run
    from linear_ssl.train import load_config, resume, train

    run_dir = args.runs / config.replace("/", "-")
    saved = RunWriter(run_dir).checkpoints() if run_dir.is_dir() else []
    resuming = bool(saved)
    row = {"config": config, "resumed_from": saved[-1][0] if saved else None}
    data = data_overrides(args)  # unpacked again: a carried .data replaces the last one
    t0 = time.monotonic()
    try:
        with step_deadline(seconds):
            if resuming:
                resume(run_dir)
            else:
                over = [*(TINY if args.tiny else []), *data, *QUIET, *extra]
                train(load_config(config, [*over, "eval.at_end=false", f"run_dir={run_dir}"]))
    except BudgetSpent as stop:
        row["stopped"] = str(stop)
    row["train_s"] = time.monotonic() - t0
    if saved := RunWriter(run_dir).checkpoints() if run_dir.is_dir() else []:
        row["steps"] = saved[-1][0]  # the step the probe and a resume start from
        row["epochs"] = load_run(run_dir).config["epochs"]
    return run_dir, row


def table8(args, budget: float, out: Path) -> dict:
    """The DirectPred run for what ``budget`` allows (less --probe-reserve), then its probe."""
    from linear_ssl.runs import load_run
    from linear_ssl.train import evaluate_run

    extra = [*args.speed, f"epochs={args.epochs}", "record.every=3910", "checkpoint.every=3910"]
    run_dir, row = train_for(args, "cifar10/directpred", budget - args.probe_reserve, extra)
    if "steps" not in row:
        return row
    t0 = time.monotonic()
    row["eval"] = evaluate_run(run_dir)
    row["probe_s"] = time.monotonic() - t0
    shutil.copy(run_dir / "eval.json", out / "table8_eval.json")
    load_run(run_dir).metrics.to_csv(out / "table8_metrics.csv", index=False)
    return row


def fig2(args, budget: float, out: Path) -> dict:
    """The first epochs of cifar10/linear (records every 100 steps), [T] Fig. 2 of them;
    eager (its own graph would take a short budget's time to compile)."""
    from linear_ssl.figures import run_t_fig2

    extra = [*eager(args.speed), "record.every=2" if args.tiny else "record.every=100"]
    run_dir, row = train_for(args, "cifar10/linear", budget, extra)
    if "steps" in row:
        figure = run_t_fig2.draw(run_t_fig2.data(run_dir))
        figure.savefig(out / "fig2_spectra.png", dpi=120)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", nargs="+", default=["throughput", "table8", "fig2"])
    parser.add_argument("--budget", nargs="+", type=float, default=[150, 520, 60])
    parser.add_argument("--total", type=float, default=None, help="seconds for all phases")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--runs", type=Path, default=Path("gpu_runs"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--probe-reserve", type=float, default=60, help="seconds of table8's")
    parser.add_argument("--speed", nargs="*", default=None, help="speed.* overrides")
    parser.add_argument("--pack", type=Path, default=None, help="gzip SOURCE's zips into --data")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny net, few steps")
    args = parser.parse_args(argv)
    if args.pack is not None:
        pack(args.pack, args.data)
        return 0
    unknown = set(args.phases) - {"throughput", "table8", "fig2"}
    if unknown or len(args.budget) not in (1, len(args.phases)):
        parser.error("phases are throughput, table8, fig2; give one budget or one per phase")
    if args.speed is None:
        args.speed = CUDA_SPEED if torch.cuda.is_available() else []
    if args.tiny:
        args.steps, args.warmup, args.probe_reserve = 3, 1, 0
    out = Path(os.environ.get("OUT", "gpu_out"))
    out.mkdir(parents=True, exist_ok=True)
    budgets = args.budget * len(args.phases) if len(args.budget) == 1 else args.budget
    end = time.monotonic() + (args.total if args.total is not None else sum(budgets))
    report = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    report.update(torch=torch.__version__, speed=args.speed)
    phases = {"throughput": None, "table8": table8, "fig2": fig2}
    for phase, budget in zip(args.phases, budgets, strict=True):
        budget = min(budget, end - time.monotonic())
        t0 = time.monotonic()
        if budget <= 0:
            report[phase] = "skipped: --total spent"
        elif phase == "throughput":
            throughput(args, budget, out, report)
        else:
            report[phase] = phases[phase](args, budget, out)
        report[phase + "_s"] = time.monotonic() - t0
        write(report, out)
    print((out / "session.md").read_text(), flush=True)
    return 0


def write(report: dict, out: Path) -> None:
    """session.json and session.md (the Table 8 row beside the paper's)."""
    (out / "session.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [f"# GPU session on {report['device']} (torch {report['torch']})", ""]
    for key, row in report.get("throughput", {}).items():
        if isinstance(row, dict):
            lines.append(
                f"- {key}: {row['images_per_s']:,.0f} img/s, {row['ms_per_step']:.2f} ms/step, "
                f"warm-up {row['warmup_s']:.0f} s, graphs traced while timed "
                f"{row['graphs_traced_while_timed']}"
            )
        else:
            lines.append(f"- {key}: {row}")
    t8 = report.get("table8")
    if isinstance(t8, dict) and t8.get("eval"):
        acc = t8["eval"]["probe_final"]  # top-1 %
        done = f"{t8['steps']} steps of {t8['epochs']} epochs, {t8['train_s']:.0f} s training"
        lines.append(
            f"- Table 8 DirectPred: {acc:.2f} % (paper {PAPER[0]} +- {PAPER[1]}; JPEG); "
            f"{done}, probe {t8['probe_s']:.0f} s; {t8.get('stopped', 'finished')}"
        )
    (out / "session.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
