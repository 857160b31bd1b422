"""Figures drawn from recorded training runs (theory.md section 7, "From training runs").

One DATA function and one DRAW function per figure, as in ``linear_ssl.plots`` (whose
style and ``save_figure`` they share): the data function reads the run directory
(``linear_ssl.runs.load_run``) and returns the arrays it will draw, in a dict; the draw
function only draws.

- [T] Fig. 2 (``t_fig2_data`` / ``draw_t_fig2``): log eig(F_hat), eig(Wp),
  cos(u_j, Wp u_j) along F_hat's eigenvectors, asymmetry ||Wp - Wp^T|| / ||Wp||.
- [T] Fig. 6 (``t_fig6_data`` / ``draw_t_fig6``): several runs side by side (e.g. alpha_p > 1
  with a symmetric Wp and no EMA): F_hat's top eigenvalues and participation ratio.
- [E] Fig. 1 (``e_fig1_data`` / ``draw_e_fig1``): stable rank and trace of the
  normalised predictor (E4).
- [E] Fig. 3 (``e_fig3_data`` / ``draw_e_fig3``): normalised spectrum of the online-latent
  correlation F_hat (E8), for one or two runs (NS vs DirectCopy).
- The overlay (``overlay_data`` / ``draw_overlay``): the flow seeded from the run
  (``linear_ssl.compare``) dashed over the measured s_j, p_j, tau_j, mode by mode.

``run_figures(RUN, OUT)`` draws every one of them the run's records allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linear_ssl.compare import Comparison, compare_run
from linear_ssl.plots import OKABE_ITO, save_figure, style
from linear_ssl.runs import Run, load_run

__all__ = [
    "draw_e_fig1",
    "draw_e_fig3",
    "draw_overlay",
    "draw_t_fig2",
    "draw_t_fig6",
    "e_fig1_data",
    "e_fig3_data",
    "overlay_data",
    "RUN_FIGURES",
    "run_figures",
    "script_main",
    "run_label",
    "run_title",
    "t_fig2_data",
    "t_fig6_data",
]

RunLike = Run | str | Path


def _load(run: RunLike) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _need(run: Run, keys: Sequence[str], figure: str) -> None:
    missing = [k for k in keys if k not in run.spectra]
    if len(run.spectra.steps) == 0 or missing:
        what = ", ".join(missing) if missing else "any spectra record"
        raise ValueError(
            f"{run.path} has no {what}: {figure} needs them (train with record.every > 0 "
            "and a matrix predictor)"
        )


# --------------------------------------------------------------------------- labels


def run_label(run: Run) -> str:
    """Short legend label from the config: method, predictor, EMA, alpha_p."""
    cfg = run.config
    method = cfg.get("method", {})
    pred = cfg.get("predictor", {})
    kind = pred.get("kind", "?")
    head = pred.get("rule", kind) if kind == "closed_form" else kind
    if pred.get("symmetric"):
        head += " (sym.)"
    ema = "no EMA" if method.get("name") == "simsiam" else f"EMA {method.get('ema', '?')}"
    try:
        alpha = f", α_p={run.hyper().alpha_p:g}"
    except (KeyError, TypeError, ValueError):
        alpha = ""
    return f"{cfg.get('name', run.path.name)}: {head}, {ema}{alpha}"


def run_title(run: Run) -> str:
    """Title line with the run's training hyper-parameters and their T1 flow values."""
    cfg = run.config
    optim = cfg.get("optim", {})
    parts = [f"lr={optim.get('lr', '?')}", f"momentum={optim.get('momentum', '?')}"]
    parts.append(f"wd={optim.get('weight_decay', '?')}")
    try:
        h = run.hyper()
        beta = "None (SimSiam)" if h.beta is None else f"{h.beta:.3g}"
        flow = f"α_p={h.alpha_p:.3g}, β={beta}, η={h.eta:.3g}"
    except (KeyError, TypeError, ValueError):
        flow = "flow hyper-parameters unavailable"
    return f"{run_label(run)}\n{', '.join(parts)}  →  T1: {flow}"


def _settings(title: str) -> str:
    """The hyper-parameter line of a ``run_title`` (its second line), split before T1."""
    return title.split("\n", 1)[-1].replace("  →  T1:", "\nT1:")


def _steps_axis(ax: Any) -> None:
    ax.set_xlabel("training step")


def _mode_colours(k: int) -> np.ndarray:
    return plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(k, 1)))


# --------------------------------------------------------------------------- [T] Fig. 2


def t_fig2_data(run: RunLike, top: int = 10) -> dict[str, Any]:
    """[T] Fig. 2: per record step, the `top` largest eigenvalues of F_hat (log10), the real
    parts of Wp's eigenvalues, cos(u_j, Wp u_j) along F_hat's eigenvectors (descending), and
    ||Wp - Wp^T||_F / ||Wp||_F."""
    run = _load(run)
    _need(run, ("F_eigvals", "Wp_eigvals_real", "alignment", "asymmetry"), "[T] Fig. 2")
    sp = run.spectra
    k = min(top, sp["F_eigvals"].shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = np.log10(np.where(sp["F_eigvals"] > 0, sp["F_eigvals"], np.nan))
    return {
        "title": run_title(run),
        "steps": sp.steps.copy(),
        "log10_F_eigvals": log_f[:, :k],
        "Wp_eigvals": np.asarray(sp["Wp_eigvals_real"])[:, :k],
        "alignment": np.asarray(sp["alignment"])[:, :k],
        "asymmetry": np.asarray(sp["asymmetry"], dtype=float),
    }


def draw_t_fig2(data: dict[str, Any]) -> Figure:
    with style():
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), constrained_layout=True)
        steps = data["steps"]
        k = data["log10_F_eigvals"].shape[1]
        colours = _mode_colours(k)
        panels = [
            ("log10_F_eigvals", r"$\log_{10}$ eig($\hat F$)", "eigenvalues of $\\hat F$"),
            ("Wp_eigvals", r"Re eig($W_p$)", "eigenvalues of $W_p$"),
            ("alignment", r"cos($u_j$, $W_p u_j$)", "alignment along $\\hat F$'s eigenvectors"),
        ]
        for ax, (key, ylabel, title) in zip(axes, panels, strict=False):
            for j in range(k):
                ax.plot(steps, data[key][:, j], color=colours[j], label=f"j={j + 1}")
            ax.set(ylabel=ylabel, title=title)
            _steps_axis(ax)
        axes[0].legend(ncol=2, title="rank j (descending)", loc="best")
        axes[2].ticklabel_format(axis="y", useOffset=False)
        low = np.nanmin(data["alignment"]) if np.any(np.isfinite(data["alignment"])) else 0.0
        axes[2].set_ylim(min(float(low) - 0.05, 0.9), 1.02)
        axes[3].plot(steps, data["asymmetry"], color=OKABE_ITO[1])
        axes[3].set(ylabel=r"$\|W_p - W_p^T\|_F / \|W_p\|_F$", title="asymmetry of $W_p$")
        _steps_axis(axes[3])
        fig.suptitle(f"[T] Fig. 2 — {data['title']}")
    return fig


# --------------------------------------------------------------------------- [T] Fig. 6


def t_fig6_data(
    runs: Sequence[RunLike], labels: Sequence[str] | None = None, top: int = 8
) -> dict[str, Any]:
    """[T] Fig. 6: for each run (label from its config unless given), the `top` largest
    eigenvalues of F_hat and its participation ratio over training steps."""
    runs = [_load(r) for r in runs]
    if not runs:
        raise ValueError("t_fig6_data needs at least one run directory")
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs: give one label per run")
    out = []
    for i, run in enumerate(runs):
        _need(run, ("F_eigvals", "F_pr"), "[T] Fig. 6")
        sp = run.spectra
        out.append(
            {
                "label": labels[i] if labels is not None else run_label(run),
                "title": run_title(run),
                "steps": sp.steps.copy(),
                "F_eigvals": np.asarray(sp["F_eigvals"])[:, :top],
                "F_pr": np.asarray(sp["F_pr"], dtype=float),
            }
        )
    return {"runs": out}


def draw_t_fig6(data: dict[str, Any]) -> Figure:
    runs = data["runs"]
    with style():
        fig, axes = plt.subplots(
            1, len(runs) + 1, figsize=(4.2 * (len(runs) + 1), 3.6), constrained_layout=True
        )
        for ax, r in zip(axes[:-1], runs, strict=False):
            k = r["F_eigvals"].shape[1]
            for j, colour in enumerate(_mode_colours(k)):
                ax.semilogy(r["steps"], r["F_eigvals"][:, j], color=colour, label=f"j={j + 1}")
            ax.set(ylabel=r"eig($\hat F$)", title=f"{r['label']}\n{_settings(r['title'])}")
            _steps_axis(ax)
        axes[0].legend(ncol=2, title="rank j", title_fontsize=7)
        for i, r in enumerate(runs):
            axes[-1].plot(r["steps"], r["F_pr"], color=OKABE_ITO[i % 7], label=r["label"])
        axes[-1].set(ylabel=r"participation ratio of $\hat F$", title="effective rank")
        axes[-1].legend()
        _steps_axis(axes[-1])
        fig.suptitle("[T] Fig. 6 — F spectrum per run (α_p > 1: symmetric Wp without EMA)")
    return fig


# --------------------------------------------------------------------------- [E] Fig. 1


def e_fig1_data(run: RunLike) -> dict[str, Any]:
    """[E] Fig. 1 (E4): stable rank and trace of the normalised predictor Wp / rho(Wp)."""
    run = _load(run)
    _need(run, ("E_stable_rank", "E_trace"), "[E] Fig. 1")
    sp = run.spectra
    return {
        "title": run_title(run),
        "steps": sp.steps.copy(),
        "stable_rank": np.asarray(sp["E_stable_rank"], dtype=float),
        "trace": np.asarray(sp["E_trace"], dtype=float),
    }


def draw_e_fig1(data: dict[str, Any]) -> Figure:
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
        axes[0].plot(data["steps"], data["stable_rank"], color=OKABE_ITO[0])
        axes[0].set(ylabel=r"$\|P\|_F^2 / \|P\|_2^2$", title="stable rank of the predictor")
        axes[1].plot(data["steps"], data["trace"], color=OKABE_ITO[1])
        axes[1].set(ylabel=r"tr($P / \rho(P)$)", title="trace of the normalised predictor")
        for ax in axes:
            _steps_axis(ax)
        fig.suptitle(f"[E] Fig. 1 — {data['title']}")
    return fig


# --------------------------------------------------------------------------- [E] Fig. 3


def e_fig3_data(runs: RunLike | Sequence[RunLike], labels: Sequence[str] | None = None):
    """[E] Fig. 3 (E8): F_hat's eigenvalues divided by the largest, per record step, for one
    or two runs (e.g. Newton-Schulz vs DirectCopy)."""
    runs = [runs] if isinstance(runs, (Run, str, Path)) else list(runs)
    if not 1 <= len(runs) <= 2:
        raise ValueError(f"[E] Fig. 3 takes one or two runs, not {len(runs)}")
    runs = [_load(r) for r in runs]
    out = []
    for i, run in enumerate(runs):
        _need(run, ("F_spectrum_normalised",), "[E] Fig. 3")
        out.append(
            {
                "label": labels[i] if labels is not None else run_label(run),
                "title": run_title(run),
                "steps": run.spectra.steps.copy(),
                "spectrum": np.asarray(run.spectra["F_spectrum_normalised"], dtype=float),
            }
        )
    return {"runs": out}


def draw_e_fig3(data: dict[str, Any]) -> Figure:
    runs = data["runs"]
    with style():
        fig, axes = plt.subplots(
            1, len(runs), figsize=(4.6 * len(runs), 3.4), constrained_layout=True, squeeze=False
        )
        for ax, r in zip(axes[0], runs, strict=False):
            spec = np.where(r["spectrum"] > 0, r["spectrum"], np.nan)
            d = spec.shape[1]
            for j, colour in enumerate(_mode_colours(d)):
                ax.semilogy(r["steps"], spec[:, j], color=colour, lw=0.8)
            title = f"{r['label']}\n{_settings(r['title'])}"
            ax.set(ylabel=r"eig($\hat F$) / max eig", title=title)
            _steps_axis(ax)
            sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(1, d))
            fig.colorbar(sm, ax=ax, label="rank j")
        fig.suptitle("[E] Fig. 3 — normalised spectrum of the online-latent correlation (E8)")
    return fig


# --------------------------------------------------------------------------- overlay


def overlay_data(comparison: Comparison | RunLike, top: int = 6) -> dict[str, Any]:
    """The seeded flow over the measurement: ``comparison.table`` rows of the `top` modes
    with the largest seeded s_j, the T8 parabola and its fitted scale."""
    c = comparison if isinstance(comparison, Comparison) else compare_run(comparison)
    chosen = c.per_mode.nlargest(min(top, len(c.per_mode)), "s0")["mode"].to_numpy()
    table = c.table[c.table["mode"].isin(chosen)].reset_index(drop=True)
    return {
        "title": run_title(c.run),
        "flow": c.flow,
        "t0_step": c.seed.step,
        "modes": chosen,
        "table": table,
        "alpha_p": c.hyper.alpha_p,
        "parabola_scale": c.agreement["parabola_scale"],
        "errors": c.per_mode.set_index("mode").loc[chosen, ["err_s", "err_p", "err_tau"]],
    }


def draw_overlay(data: dict[str, Any]) -> Figure:
    table = data["table"]
    modes = data["modes"]
    colours = OKABE_ITO
    with style():
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.5), constrained_layout=True)
        labels = {"s": ("$s_j$ (eig $\\hat F$)", True), "p": ("$p_j$", False)}
        labels["tau"] = ("$\\tau_j$", False)
        for ax, (q, (ylabel, log)) in zip(axes, labels.items(), strict=False):
            for i, m in enumerate(modes):
                rows = table[(table["quantity"] == q) & (table["mode"] == m)]
                colour = colours[i % len(colours)]
                ax.plot(rows["step"], rows["measured"], "-o", ms=2.5, color=colour)
                ax.plot(rows["step"], rows["predicted"], "--", color=colour, lw=1.2)
            ax.set(ylabel=ylabel, title=f"{ylabel}: measured (—o) vs flow (--)")
            if log:
                ax.set_yscale("log")
            _steps_axis(ax)
        ax = axes[3]
        wide = table.pivot_table(index=["step", "mode"], columns="quantity", values="measured")
        pred = table.pivot_table(index=["step", "mode"], columns="quantity", values="predicted")
        for i, m in enumerate(modes):
            colour = colours[i % len(colours)]
            mw, pw = wide.xs(m, level="mode"), pred.xs(m, level="mode")
            ax.plot(mw["p"], mw["s"], "-o", ms=2.5, color=colour, label=f"mode {m}")
            ax.plot(pw["p"], pw["s"], "--", color=colour, lw=1.2)
        p_all = np.concatenate([wide["p"].to_numpy(), pred["p"].to_numpy()])
        p_all = p_all[np.isfinite(p_all)]
        if p_all.size:
            grid = np.linspace(0.0, float(np.max(np.abs(p_all))) * 1.05, 100)
            ax.plot(grid, grid**2 / data["alpha_p"], ":", color="grey", label="T8: s = p²/α_p")
            k = data["parabola_scale"]
            if np.isfinite(k):
                ax.plot(
                    grid, k * grid**2, "-.", color="black", lw=0.8, label=f"fit: s = {k:.3g} p²"
                )
        ax.set(xlabel="$p_j$", ylabel="$s_j$", title="phase plane (p, s)", yscale="log")
        ax.legend(ncol=2)
        fig.suptitle(
            f"Flow ({data['flow']}) seeded at step {data['t0_step']} over the run — {data['title']}"
        )
    return fig


# --------------------------------------------------------------------------- all of them


#: name -> (data function, draw function, how many runs it takes: 1 or "many" / 2)
RUN_FIGURES: dict[str, tuple[Any, Any, int | str]] = {
    "run_t_fig2": (t_fig2_data, draw_t_fig2, 1),
    "run_t_fig6": (t_fig6_data, draw_t_fig6, "many"),
    "run_e_fig1": (e_fig1_data, draw_e_fig1, 1),
    "run_e_fig3": (e_fig3_data, draw_e_fig3, 2),
    "run_overlay": (overlay_data, draw_overlay, 1),
}


def run_figures(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Every run-based figure the run's records allow, as PNG + PDF in out_dir (default
    RUN/figures): run_t_fig2, run_t_fig6, run_e_fig1, run_e_fig3, run_overlay."""
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "figures"
    if len(run.spectra.steps) == 0:
        raise ValueError(f"{run.path} has no spectra records: train with record.every > 0")
    paths: list[Path] = []
    for name, (data_fn, draw_fn, count) in RUN_FIGURES.items():
        try:
            data = data_fn([run] if count != 1 else run)
        except ValueError:
            continue  # the run does not record what this figure needs
        paths += save_figure(draw_fn(data), out, name)
    return paths


def script_main(name: str, argv: Sequence[str] | None = None) -> int:
    """Entry of paper_figures/NAME.py: ``NAME.py RUN [RUN ...] [--out DIR]``.

    Default out: paper_figures/out under the working directory. Prints the written paths;
    returns 0, or 1 with a one-line error on stderr.
    """
    import argparse
    import sys

    data_fn, draw_fn, count = RUN_FIGURES[name]
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=f"draw {name} from runs")
    parser.add_argument("runs", nargs="+" if count != 1 else 1, help="run directory")
    parser.add_argument("--labels", nargs="*", help="legend labels, one per run")
    parser.add_argument("--out", default="paper_figures/out")  # as linear-ssl figures
    args = parser.parse_args(argv)
    try:
        if count == 1:
            data = data_fn(args.runs[0])
        else:
            data = data_fn(args.runs, labels=args.labels)
        paths = save_figure(draw_fn(data), args.out, name)
    except (ValueError, FileNotFoundError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 1
    print("\n".join(str(p) for p in paths))
    return 0
