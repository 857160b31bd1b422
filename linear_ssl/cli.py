"""The `linear-ssl` command: simulate | train | status | eval | figures | compare | ladder |
main | convert-checkpoint.

Each subcommand imports what it needs when it runs, so the theory subcommands work
without the torch extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _simulate(args: argparse.Namespace) -> int:
    """Integrate the eigen-mode flow T7 and print (or save) a tidy table."""
    import numpy as np
    import pandas as pd

    from linear_ssl.theory import Hyper, modes

    h = Hyper(alpha_p=args.alpha_p, beta=args.beta, eta=args.eta, sigma2=args.sigma2)
    for flag, values in (("--p0", args.p0), ("--s0", args.s0), ("--tau0", [args.tau0])):
        if not np.isfinite(values).all():
            raise ValueError(f"{flag} {' '.join(map(str, values))} is invalid: give finite numbers")
    p0 = np.asarray(args.p0, dtype=float)
    s0 = np.asarray(args.s0, dtype=float)
    if p0.shape != s0.shape:
        raise ValueError(f"--p0 has {p0.size} values but --s0 has {s0.size}: give one s0 per p0")
    if not (np.isfinite(args.t_end) and args.t_end > 0):
        raise ValueError(f"--t-end {args.t_end} is invalid: give a finite end time > 0")
    if args.points < 2:
        raise ValueError(f"--points {args.points} is invalid: give at least 2 time points")
    t = np.linspace(0.0, args.t_end, args.points)
    sol = modes.integrate(h, p0, s0, t, tau0=args.tau0)
    table = pd.concat(
        [
            pd.DataFrame(
                {"t": sol.t, "mode": j, "p": sol.p[:, j], "s": sol.s[:, j], "tau": sol.tau[:, j]}
            )
            for j in range(p0.size)
        ],
        ignore_index=True,
    )
    p_minus, p_plus = modes.fixed_points(h, tau=1.0)
    print(f"{h}\nT9 fixed points at tau=1: p- = {p_minus:.6g}, p+ = {p_plus:.6g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    else:
        print(table.groupby("mode").tail(1).to_string(index=False))
    return 0


def _train(args: argparse.Namespace) -> int:
    """Train from an experiment config plus dotted overrides (or resume a run, with the
    overrides a resume allows); print the run directory."""
    from linear_ssl.runs import describe_state
    from linear_ssl.train import resume, train_from_cli

    if args.resume:
        overrides = [*([args.config] if args.config else []), *args.overrides]
        if os.environ.get("RANK", "0") == "0":
            print(f"resuming {describe_state(args.resume)}")
        run_dir = resume(args.resume, overrides)
    else:
        run_dir = train_from_cli(args.config or "smoke", args.overrides)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(f"run directory: {run_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    """One line: running (its pid and host), finished, failed, or stopped (process gone)."""
    from linear_ssl.runs import describe_state

    print(describe_state(args.run))
    return 0


def _eval(args: argparse.Namespace) -> int:
    """Linear probe and kNN of a run's backbone (theory.md section 5); writes RUN/eval.json."""
    from linear_ssl.train import evaluate_run

    results = evaluate_run(
        args.run,
        probe_epochs=args.probe_epochs,
        knn_k=args.knn_k,
        device=args.device,
        progress=True,
    )
    print(
        f"step {results['step']}: linear probe {results['probe_final']:.2f}% "
        f"(best {results['probe_best']:.2f}%), kNN {results.get('knn', float('nan')):.2f}% "
        f"-> {Path(args.run) / 'eval.json'}"
    )
    return 0


def _convert_checkpoint(args: argparse.Namespace) -> int:
    """Rewrite an old checkpoint so that it loads safely; it EXECUTES the old file."""
    from linear_ssl.train.checkpoint import convert_checkpoint

    print(f"wrote {convert_checkpoint(args.old, args.new, trust_source=args.trust_source)}")
    return 0


def _figures(args: argparse.Namespace) -> int:
    """Regenerate the figures: all theory figures, or those NAMEd; with --run, the run
    figures of each run too (into OUT/RUN_NAME/), as PNG + PDF."""
    from linear_ssl.figures import FIGURES, RUN_FIGURES, run_figures, theory_figures

    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        raise ValueError(f"no figure {unknown[0]!r}: choose from {', '.join(FIGURES)}")
    theory = [n for n in args.names if n not in RUN_FIGURES] if args.names else None
    runs = [n for n in args.names if n in RUN_FIGURES] if args.names else None
    if runs and not args.run:
        raise ValueError(f"{runs[0]} is drawn from a run: add --run RUN")
    paths = []
    if not args.no_theory and theory != []:
        paths += theory_figures(out_dir=args.out, fast=args.fast, names=theory)
    for run in args.run:
        if runs != []:
            paths += run_figures(run, Path(args.out) / Path(run).name, names=runs)
    print(f"wrote {len(paths)} files into {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Seed the T7 flow from a run, print the agreement table, draw the overlay and the
    rank (E9) figure (PNG + PDF, default folder RUN/figures)."""
    from linear_ssl.bridge import compare_run
    from linear_ssl.figures import FIGURES, save_figure

    comparison = compare_run(args.run)
    print(comparison.to_markdown())
    out = Path(args.out) if args.out is not None else comparison.run.path / "figures"
    paths = []
    for name, file in (("run_overlay", "overlay"), ("run_rankme", "rankme")):
        spec = FIGURES[name]
        paths += save_figure(spec.draw(spec.data(comparison)), out, file)
    print("\n" + "\n".join(f"wrote {p}" for p in paths))
    return 0


def _ladder_figure(rows: list, out: Path) -> Path:
    """OUT/ladder.png: one panel per rung, flow over run (figures.ladder)."""
    from linear_ssl.figures import ladder as ladder_figure
    from linear_ssl.figures.style import save_figure

    save_figure(ladder_figure.draw(ladder_figure.data(rows)), out, "ladder")
    return out / "ladder.png"


def _ladder(args: argparse.Namespace) -> int:
    """theory.md section 8's agreement ladder: train the rungs, score them, write the table."""
    from linear_ssl.bridge.ladder import markdown, run_ladder

    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    if args.data is not None and not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data} does not exist: an ImageFolder dir or zip")
    rows = run_ladder(
        args.out, data=args.data, rungs=rungs, seeds=args.seeds, steps=args.steps,
        limit=args.limit, width=args.width, log=lambda m: print(m, file=sys.stderr),
    )  # fmt: skip
    _ladder_figure(rows, Path(args.out))
    print(markdown(rows))
    print(f"wrote {Path(args.out) / 'ladder.json'}, ladder.md, ladder.png")
    return 0


def _main_job(args: argparse.Namespace) -> int:
    """The newcomer's main job: theory figures, then theory.md section 8's ladder on the
    embedded data (every rung against its flow), with a verdict per rung: three seeds of
    150 steps a pixel rung, two of 60 the ResNet (about 4 min on an idle 2-core CPU)."""
    from linear_ssl.bridge.ladder import run_ladder, verdicts
    from linear_ssl.figures import theory_figures

    out = Path(args.out)
    print("1/2 theory figures ([T] Figs. 3-5, 7-10, [E] Fig. 2 analogue)")
    theory_figures(out_dir=out, fast=args.fast)
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    print(f"2/2 the agreement ladder on the embedded CIFAR-10 subset: {', '.join(rungs)}")
    seeds = {**dict.fromkeys(rungs, 3), "resnet": 2} if args.seeds is None else args.seeds
    steps = {**dict.fromkeys(rungs, 150), "resnet": 60} if args.steps is None else args.steps
    rows = run_ladder(
        out / "ladder", rungs=rungs, seeds=seeds, steps=steps, limit=args.limit,
        log=lambda m: print(m, file=sys.stderr),
    )  # fmt: skip
    figure = _ladder_figure(rows, out / "ladder")
    print("\n".join(verdicts(rows)))
    print(f"figures in {out}/ (the ladder: {figure})")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit status 2), without the usage block."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="linear-ssl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="integrate the eigen-mode flow T7 of linear BYOL")
    sim.add_argument("--alpha-p", type=float, default=1.0)
    sim.add_argument("--beta", type=float, default=None, help="EMA rate; omit for SimSiam")
    sim.add_argument("--eta", type=float, default=0.01)
    sim.add_argument("--sigma2", type=float, default=0.0)
    sim.add_argument("--p0", type=float, nargs="+", default=[0.1, 0.5, 1.0])
    sim.add_argument("--s0", type=float, nargs="+", default=[0.5, 0.5, 0.5])
    sim.add_argument("--tau0", type=float, default=1.0)
    sim.add_argument("--t-end", type=float, default=50.0)
    sim.add_argument("--points", type=int, default=201)
    sim.add_argument("--out", type=Path, default=None, help="write the table as CSV")
    sim.set_defaults(func=_simulate)

    tr = sub.add_parser(
        "train",
        help="train a ResNet BYOL-family model, recording spectra",
        description="linear-ssl train CONFIG [key=value ...]; CONFIG is a YAML path or a "
        "name in linear_ssl/configs/ (smoke, cifar10/directpred, ...); run_dir=PATH "
        "picks the run directory.",
    )
    tr.add_argument("config", nargs="?", default=None, help="default: smoke")
    tr.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=0.05")
    tr.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN",
        help="resume a run; overrides then may change only learning rates, epochs, max_steps, "
        "record.* and checkpoint.* (docs/run_format.md)",
    )
    tr.set_defaults(func=_train)

    st = sub.add_parser("status", help="is a run running, finished, failed or stopped?")
    st.add_argument("run", type=Path)
    st.set_defaults(func=_status)

    ev = sub.add_parser("eval", help="linear probe and kNN of a trained run")
    ev.add_argument("run", type=Path)
    ev.add_argument("--probe-epochs", type=int, default=None)
    ev.add_argument("--knn-k", type=int, default=None)
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=_eval)

    conv = sub.add_parser(
        "convert-checkpoint",
        help="rewrite an old checkpoint (format 1) as a safe one; this EXECUTES the old file",
        description="Loads OLD with pickle (which runs any code it holds: only for files you "
        "made or trust) and writes NEW, which later loads with torch.load(weights_only=True).",
    )
    conv.add_argument("old", type=Path)
    conv.add_argument("new", type=Path)
    conv.add_argument(
        "--trust-source", action="store_true", help="I trust OLD: execute it to convert it"
    )
    conv.set_defaults(func=_convert_checkpoint)

    fig = sub.add_parser(
        "figures",
        help="regenerate the paper figures (PNG + PDF)",
        description="linear-ssl figures [NAME ...] [--run RUN ...]: every theory figure, or "
        "the NAMEd ones (paper_figures/README.md lists them); --run adds a run's figures.",
    )
    fig.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all)")
    fig.add_argument("--out", type=Path, default=Path("paper_figures/out"))
    fig.add_argument("--run", type=Path, action="append", default=[], help="add a run's figures")
    fig.add_argument("--fast", action="store_true", help="smaller grids (a quick look)")
    fig.add_argument("--no-theory", action="store_true", help="only the --run figures")
    fig.set_defaults(func=_figures)

    cmp_ = sub.add_parser("compare", help="theory seeded from a run, over what it measured")
    cmp_.add_argument("run", type=Path)
    cmp_.add_argument("--out", type=Path, default=None, help="figure folder (default RUN/figures)")
    cmp_.set_defaults(func=_compare)

    lad = sub.add_parser(
        "ladder",
        help="theory against trained networks, rung by rung (theory.md section 8)",
        description="Train each rung (linear, linear-cosine, mlp, resnet) over seeds, seed "
        "the flow at step 0, fit one time scale on the early window, predict the rest; "
        "writes OUT/ladder.json, ladder.md and ladder.png.",
    )
    lad.add_argument(
        "--data", type=Path, default=None, help="ImageFolder dir or zip (default: embedded)"
    )
    lad.add_argument("--out", type=Path, required=True)
    lad.add_argument("--rungs", default="linear,linear-cosine,mlp,resnet")
    lad.add_argument("--seeds", type=int, default=3)
    lad.add_argument("--steps", type=int, default=300)
    lad.add_argument("--limit", type=int, default=None, help="train on this many images")
    lad.add_argument("--width", type=int, default=8, help="ResNet width of rung 4")
    lad.set_defaults(func=_ladder)

    job = sub.add_parser("main", help="theory figures + the agreement ladder on the embedded data")
    job.add_argument("--out", type=Path, default=Path("paper_figures/out"))
    job.add_argument("--fast", action="store_true", help="smaller theory grids")
    job.add_argument("--rungs", default="linear,linear-cosine,mlp,resnet")
    job.add_argument("--seeds", type=int, default=None, help="of every rung (default: 3, ResNet 2)")
    job.add_argument("--steps", type=int, default=None, help="of every rung (150, ResNet 60)")
    job.add_argument("--limit", type=int, default=2000, help="training images per rung")
    job.set_defaults(func=_main_job)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, one line on stderr)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        message = " ".join(str(err).split()) or type(err).__name__  # one line, always
        print(f"linear-ssl {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
