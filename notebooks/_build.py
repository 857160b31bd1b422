"""Write the notebooks of this folder from the cell sources below (outputs stripped).

    .venv/bin/python notebooks/_build.py          # rewrites notebooks/0*.ipynb

The notebooks are the product; this script only keeps their JSON small and consistent
(same setup cell, same kernelspec, no outputs). Edit the cells here, rebuild, commit both.
Each notebook reads LINEAR_SSL_NOTEBOOK_FAST=1 (the tests set it) to shrink its grids,
horizons and training run, and ends with a cell printing a JSON summary that
tests/test_notebooks.py checks against a direct computation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

{imports}

%matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")"""


def _cells(parts: list[tuple[str, str]]) -> list:
    return [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in parts]


def md(src: str) -> tuple[str, str]:
    return ("md", src.strip("\n"))


def code(src: str) -> tuple[str, str]:
    return ("code", src.strip("\n"))


def setup(imports: str) -> tuple[str, str]:
    return code(SETUP.format(imports=imports.strip("\n")))


# --------------------------------------------------------------------------- notebook 1

NB1 = [
    md(r"""
# 1. The eigenmode flow of linear BYOL / SimSiam

Under the assumptions of the eigenspace reduction (A1 $W_a=\tau W$ per eigen-direction,
A2 isotropic data $X=I$, $X'=\sigma^2 I$, A3 symmetric predictor), the matrix flow T1 splits
into one scalar system per eigen-mode $j$ (theory.md **T7**):

$$\dot p = \alpha_p s(\tau-(1+\sigma^2)p)-\eta p,\qquad
\dot s = 2ps(\tau-(1+\sigma^2)p)-2\eta s,\qquad
\dot\tau = \beta(1-\tau)-\tau\,[p(\tau-(1+\sigma^2)p)-\eta]$$

with $p_j$ an eigenvalue of the predictor $W_p$, $s_j$ one of $F=WW^\top$ and $\tau_j$ the
target's scale ($\tau\equiv1$ for SimSiam). This notebook walks through
the invariant parabola (**T8**), the fixed points and the collapse basin (**T9**), the two
conditions of **T10**, and how $\alpha_p$, $\eta$ and the EMA rate $\beta$ move them (**T11**).
Everything comes from `linear_ssl.theory.modes` and the figure functions of `linear_ssl.plots`.

Set `LINEAR_SSL_NOTEBOOK_FAST=1` for a quick run with coarse grids (what the tests do).
"""),
    setup("""
from linear_ssl import plots
from linear_ssl.theory import Hyper, modes
"""),
    md(r"""
## Fixed points on the parabola (T9)

With $\eta>0$, every mode approaches the parabola $s=p^2/\alpha_p$ (T8, below), on which
$\dot p = -(1+\sigma^2)\,p\,(p-p_-)(p-p_+)$ with
$p_\pm = [\tau\pm\sqrt{\tau^2-4\eta(1+\sigma^2)}]/(2(1+\sigma^2))$.
`modes.fixed_points` gives $(p_-, p_+)$; past the threshold $\eta>\tau^2/(4(1+\sigma^2))$ both
are nan: only $p=0$ remains and every mode collapses. The residual column checks that the
1-D flow `modes.parabola_flow` really vanishes there.
"""),
    code("""
rows = []
for eta in (0.0, 0.01, 0.04, 0.1, 0.2, 0.25, 0.3):
    h = Hyper(alpha_p=1.0, eta=eta)  # SimSiam: tau == 1
    p_minus, p_plus = modes.fixed_points(h)
    roots = np.array([p_minus, p_plus])
    residual = np.abs(modes.parabola_flow(h, roots)).max() if np.isfinite(roots).all() else np.nan
    rows.append(
        dict(eta=eta, threshold=float(modes.collapse_threshold(h)), p_minus=float(p_minus),
             p_plus=float(p_plus), flow_residual=residual)
    )
pd.DataFrame(rows)
"""),
    md(r"""
## Phase portraits ([T] Fig. 3)

The $(p, s)$ plane at $\tau=1$, $\alpha_p=1$ for $\eta\in\{0, 0.01, 1\}$: streamlines of T7,
the parabola (green), fixed points (filled: stable, open: unstable) and a few orbits.
At $\eta=0$ the fixed points form two lines ($s=0$ and $p=\tau/(1+\sigma^2)$); with a small
$\eta$ they reduce to $0$, $p_-$ (unstable) and $p_+$ (stable); at $\eta=1>1/4$ everything
flows to the origin.
"""),
    code("""
panels = plots.phase_portrait_data(**(dict(grid=21, points=100) if FAST else {}))
fig = plots.draw_phase_portrait(panels)
"""),
    md(r"""
## The invariant parabola (T8)

Along T7, $c = e^{2\eta t}(s - p^2/\alpha_p)$ is exactly constant, whatever $\tau$ does:
$s(t) = p(t)^2/\alpha_p + e^{-2\eta t}c$. We integrate random BYOL modes (their $\tau$ moves)
and measure how far `modes.invariant` drifts from its initial value: it should be at the
level of the integrator's tolerance.
"""),
    code("""
rng = np.random.default_rng(0)
n_modes = 50 if FAST else 400
h_t8 = Hyper(alpha_p=2.0, beta=0.5, eta=0.05, sigma2=0.2)
p0 = rng.uniform(0.0, 1.0, n_modes)
s0 = rng.uniform(0.0, 1.0, n_modes)
tau0 = rng.uniform(0.5, 1.0, n_modes)
t = np.linspace(0.0, 40.0, 201)
sol = modes.integrate(h_t8, p0, s0, t, tau0=tau0, rtol=1e-9, atol=1e-12)
c = modes.invariant(h_t8, sol.p, sol.s, t[:, None])
t8_drift = float(np.max(np.abs(c - c[0])) / np.max(np.abs(c[0])))
print(f"T8: max |c(t) - c(0)| / max |c(0)| over {n_modes} BYOL modes = {t8_drift:.2e}")

fig, ax = plt.subplots(figsize=(5, 3.2))
for j in range(6):
    ax.plot(t, sol.s[:, j] - modes.parabola(h_t8, sol.p[:, j]), lw=1)
    ax.plot(t, np.exp(-2 * h_t8.eta * t) * c[0, j], "k:", lw=1)
ax.set(xlabel="flow time $t$", ylabel=r"$s - p^2/\\alpha_p$",
       title="T8: distance to the parabola (solid) = $e^{-2\\\\eta t}c$ (dotted)");
"""),
    md(r"""
## The 1-D flow on the parabola ([T] Fig. 4)

$\dot p$ on the parabola in T9's three regimes: $\eta=0$ (0 is half-stable), $0<\eta<\tau^2/4$
(0 stable, $p_-$ unstable, $p_+$ stable: the **collapse basin** is $p<p_-$), $\eta>\tau^2/4$
(only 0).
"""),
    code("""
fig = plots.draw_parabola_flow(plots.parabola_flow_data(**(dict(points=201) if FAST else {})))
"""),
    md(r"""
## The basin edge found by simulation, against T9's closed form

The collapse basin on the parabola is $p(0)<p_-$. Here we find its edge without the closed
form: start modes on the parabola, integrate T7 for a long time, call a mode collapsed when
its $p$ ends near 0, and bisect (vectorised: a fan of starts, refined around the switch).
The surviving modes' final $p$ gives $p_+$. Both should match `modes.fixed_points`.
"""),
    code("""
def basin_edge(h, lo=0.0, hi=0.5, fan=32, rounds=3 if FAST else 5, t_end=600.0):
    \"\"\"The smallest p(0) on the parabola whose T7 orbit does not collapse, and its end p.\"\"\"
    for _ in range(rounds):
        p0 = np.linspace(lo, hi, fan)
        s0 = modes.parabola(h, p0)
        end = modes.integrate(h, p0, s0, [0.0, t_end], rtol=1e-10, atol=1e-13).p[-1]
        survives = end > 0.05  # collapsed modes end at p ~ 0, the others near p+
        k = int(np.argmax(survives))  # first survivor (starts are increasing)
        lo, hi = p0[k - 1], p0[k]
        p_end = float(np.median(end[survives]))
    return 0.5 * (lo + hi), p_end


h_basin = Hyper(alpha_p=1.0, eta=0.1)
edge, p_end = basin_edge(h_basin)
p_minus, p_plus = (float(v) for v in modes.fixed_points(h_basin))
print(f"eta = {h_basin.eta}: basin edge by simulation {edge:.8f}, T9 p- = {p_minus:.8f}")
print(f"             survivors end at p = {p_end:.8f}, T9 p+ = {p_plus:.8f}")
"""),
    md(r"""
## How $\alpha_p$ and $\eta$ move the basin (T11)

Off the parabola the basin is a region of the $(p(0), s(0))$ plane, computed here with
`modes.collapses(method="integrate")` on a grid. T11 ([T] Table 4): a larger $\alpha_p$
flattens the parabola $s=p^2/\alpha_p$ and **shrinks** the basin (but $s$ barely grows);
a larger $\eta$ **widens** it ($p_-$ grows with $\eta$) until, past $\eta=1/4$, everything
collapses. The dashed line is $p=p_-$, the green curve the parabola.
"""),
    code("""
grid = 21 if FAST else 61
p_axis, s_axis = np.linspace(-0.3, 1.0, grid), np.linspace(0.0, 0.6, grid)
P0, S0 = np.meshgrid(p_axis, s_axis)
alphas, etas = (0.5, 1.0, 4.0), (0.02, 0.1, 0.2)
fig, axes = plt.subplots(len(etas), len(alphas), figsize=(9, 7.5), sharex=True, sharey=True)
basin = []
for i, eta in enumerate(etas):
    for k, alpha_p in enumerate(alphas):
        h = Hyper(alpha_p=alpha_p, eta=eta)
        collapsed = modes.collapses(h, P0, S0, method="integrate")
        basin.append(dict(alpha_p=alpha_p, eta=eta, collapsed_fraction=collapsed.mean()))
        ax = axes[i, k]
        ax.pcolormesh(p_axis, s_axis, collapsed, cmap="Greys", vmin=0, vmax=2, shading="nearest")
        ax.plot(p_axis, modes.parabola(h, p_axis), color="tab:green")
        ax.axvline(modes.fixed_points(h)[0], color="tab:red", ls="--")
        ax.set(ylim=(0, 0.6), title=f"$\\\\alpha_p$={alpha_p:g}, $\\\\eta$={eta:g}: "
               f"{collapsed.mean():.0%} collapse")
for ax in axes[-1]:
    ax.set_xlabel("$p(0)$")
for ax in axes[:, 0]:
    ax.set_ylabel("$s(0)$")
fig.suptitle("T9/T11: collapse basin (grey) of T7 at $\\\\tau$ = 1")
fig.tight_layout()
basin = pd.DataFrame(basin)
basin.pivot(index="eta", columns="alpha_p", values="collapsed_fraction")
"""),
    md(r"""
## The EMA (T7's $\tau$, T11) and the two conditions of T10

With an EMA target, $\tau$ starts where the target starts and relaxes at rate $\beta$.
T9 at a fixed $\tau$: $p_-$ **grows** and $p_+\approx\tau/(1+\sigma^2)$ **shrinks** as $\tau$
shrinks, so a loose EMA (small $\beta$, $\tau$ small early) is a curriculum that aims low
early but traps more modes and slows training (T11).
"""),
    code("""
h = Hyper(alpha_p=1.0, eta=0.04)
tau = np.linspace(0.35, 1.0, 200)
p_minus, p_plus = modes.fixed_points(h, tau)
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(tau, p_plus, label="$p_+$ (stable)")
ax.plot(tau, p_minus, "--", label="$p_-$ (unstable: basin edge)")
ax.axvline(np.sqrt(4 * h.eta), color="0.5", lw=0.8)
ax.set(xlabel=r"$\\tau$ (held fixed)", ylabel="fixed point $p$",
       title=f"T9 at $\\\\eta$ = {h.eta:g}: fixed points vs $\\\\tau$")
ax.legend();
"""),
    md(r"""
[T] Fig. 5 simulates T7 from a spread of $p_j(0)$ with $s_j(0)=0.02$, $\tau_j(0)=1$: an
$\eta$ sweep and an EMA sweep at $\eta=0.04$, with $\lambda_{\min}(K)$ of T6 ($K>0$ keeps the
eigenspaces aligned).
"""),
    code("""
sweeps = plots.mode_sweeps_data(step=0.2 if FAST else 0.05)
fig = plots.draw_mode_sweeps(sweeps)
"""),
    md(r"""
The same story as numbers. Modes start small ($s_j(0)=10^{-3}$, $p_j(0)$ spread over
$[0, 0.3]$) with the target equal to the online network ($\tau(0)=1$) or at zero
($\tau(0)=0$, as with $W_a(0)=0$). For each EMA rate: the fraction of modes that collapse
(`modes.collapses`), the median time the survivors take to reach 90% of their final $p$,
and how often T10's two conditions hold along the way ($\Delta_j>0$: $s_j$ grows;
$\Delta_j<(\alpha_p(1+\sigma^2)s_j+\eta)/2$: $K>0$, the eigenspaces stay aligned).
A smaller $\beta$ traps more modes and trains more slowly (T11).
"""),
    code("""
p0 = np.linspace(0.005, 0.3, 12 if FAST else 60)
t = np.linspace(0.0, 400.0, 401 if FAST else 2001)
rows = []
for beta in (0.02, 0.05, 0.2, 1.0, None):
    h = Hyper(alpha_p=1.0, beta=beta, eta=0.04)
    row = dict(beta="SimSiam" if beta is None else beta)
    for tau0 in (1.0, 0.0):
        if beta is not None or tau0 == 1.0:
            row[f"collapsed (tau0={tau0:g})"] = modes.collapses(h, p0, 1e-3, tau0).mean()
    sol = modes.integrate(h, p0, np.full_like(p0, 1e-3), t, tau0=1.0)
    alive = ~modes.collapses(h, p0, 1e-3, 1.0)
    reached = sol.p[:, alive] >= 0.9 * sol.p[-1, alive]
    row["t90 (tau0=1)"] = float(np.median(t[np.argmax(reached, axis=0)]))
    row["final p"] = float(np.median(sol.p[-1, alive]))
    row["T10: grows"] = float(modes.grows(h, sol.p, sol.tau).mean())
    row["T10: K > 0"] = float(modes.k_positive(h, sol.p, sol.s, sol.tau).mean())
    rows.append(row)
ema_table = pd.DataFrame(rows)
ema_table
"""),
    md(r"""
## Summary

The numbers the tests check (`tests/test_notebooks.py` recomputes them directly).
"""),
    code("""
summary = dict(
    eta=h_basin.eta, alpha_p=h_basin.alpha_p, basin_edge=edge, p_plus_simulated=p_end,
    t8_drift=t8_drift,
    ema_collapsed={str(r["beta"]): r["collapsed (tau0=1)"] for r in rows},
    collapsed_fraction={
        f"{r.alpha_p:g},{r.eta:g}": r.collapsed_fraction for r in basin.itertuples()
    },
)
print(json.dumps(summary))
"""),
]


# --------------------------------------------------------------------------- notebook 2

NB2 = [
    md(r"""
# 2. Matrix flow, eigenmode reduction, SGD: when the reduction holds

Three descriptions of linear BYOL, from the most literal to the most reduced:

1. `theory.sgd.simulate`: minibatch SGD on Gaussian data, two augmented views per sample,
   torch's SGD semantics (momentum, coupled weight decay) and an EMA target;
2. `theory.matrix.integrate`: the matrix flow **T1** (its large-batch, small-step limit,
   exact in expectation), for any data covariance $X$ and augmentation covariance $X'$;
3. `theory.modes.integrate`: the scalar system **T7**, one per eigen-mode, exact only under
   A1-A3 (target $W_a=\tau W$ per eigen-direction, $X=I$, $X'=\sigma^2I$, symmetric $W_p$).

We check that (1) tends to (2) as the learning rate shrinks (with the time map of **T1**:
a step advances the flow by $dt=\mathrm{lr}/(1-m)$), that (2) equals (3) from an aligned start
on isotropic data (**T5**-**T7**), and then break each assumption in turn and measure how far
the reduction goes wrong, next to the quantities that stay exact (**T2**'s balance) or
decay (**T6**'s commutator).
"""),
    setup("""
from linear_ssl import plots
from linear_ssl.theory import Hyper, matrix, modes, sgd
"""),
    md(r"""
## An aligned start

Pick orthonormal bases $U$ (output space) and $Q$ (input space) and per-mode values
$p_j(0)$, $s_j(0)$: $W(0)=U\,\mathrm{diag}(\sqrt{s_j})\,Q^\top$,
$W_p(0)=U\,\mathrm{diag}(p_j)\,U^\top$,
$W_a(0)=W(0)$ ($\tau_j(0)=1$). Under T1 with $X=I$, $X'=\sigma^2I$ the three matrices keep
these bases, and $u_j^\top W_p u_j$, $u_j^\top F u_j$, the target's scale along $u_j$ follow T7
exactly.
"""),
    code("""
def rotation(rng, n):
    \"\"\"A uniformly random orthogonal matrix (QR of a Gaussian matrix, signs fixed).\"\"\"
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def along(U, M):
    \"\"\"u_j^T M u_j for the columns u_j of U, over leading axes of M.\"\"\"
    return np.einsum("ij,...ik,kj->...j", U, M, U)


n = 6
rng = np.random.default_rng(0)
U, Q = rotation(rng, n), rotation(rng, n)
p0 = np.linspace(0.05, 0.6, n)
s0 = np.linspace(0.5, 0.02, n)
W0 = U @ np.diag(np.sqrt(s0)) @ Q.T
Wp0 = U @ np.diag(p0) @ U.T
Wa0 = W0.copy()
h = Hyper(alpha_p=1.0, beta=0.5, eta=0.02, sigma2=0.2)
t_end = 10.0 if FAST else 30.0
t = np.linspace(0.0, t_end, 61)

flow = matrix.integrate(h, W0, Wp0, Wa0, t)  # T1, X = I, X' = sigma2 I
reduced = modes.integrate(h, p0, s0, t, tau0=1.0, rtol=1e-9, atol=1e-12)  # T7
reduction_error = dict(
    p=float(np.abs(along(U, flow.Wp) - reduced.p).max()),
    s=float(np.abs(along(U, flow.F) - reduced.s).max()),
)
print("max |matrix flow - T7| along the modes:", reduction_error)
"""),
    md(r"""
## SGD tends to the flow (T1)

`sgd.simulate(h, ..., lr=...)` picks the per-step settings whose slow limit is `h`
(predictor lr $=\alpha_p\,$lr, EMA $=1-\beta\,dt$, weight decay $\eta$) and records the
flow time `run.t` $=$ step $\times\,dt$. We average 16 seeds (the flow is an expectation)
and measure the largest deviation from T7 along the modes: it shrinks roughly in proportion
to the step $dt$. The last rows run heavy-ball momentum $m=0.9$, as the trainer does: the
same flow, reached with $dt=\mathrm{lr}/(1-m)$, and the error again halves with $dt$; its
constant is larger, by about $(1+m)/(1-m)$ (heavy-ball's inertia: its modified equation
carries a $\tfrac{dt}{2}\tfrac{1+m}{1-m}\ddot W$ term where plain SGD has $\tfrac{dt}{2}\ddot W$).
"""),
    code("""
seeds, batch = (4, 64) if FAST else (16, 128)
settings = [(0.04, 0.0), (0.02, 0.0)]
settings += [] if FAST else [(0.01, 0.0), (0.002, 0.9), (0.001, 0.9)]
sgd_rows, runs = [], {}
for lr, momentum in settings:
    dt = lr / (1 - momentum)
    steps = int(round(t_end / dt))
    run = sgd.simulate(h, W0, Wp0, Wa0, lr=lr, momentum=momentum, steps=steps, batch=batch,
                       seeds=seeds, seed=1, record_every=max(1, steps // 60))
    runs[lr, momentum] = run
    F_mean = matrix.correlation(run.W).mean(axis=1)  # X = I: F = W W^T, averaged over seeds
    Wp_mean = run.Wp.mean(axis=1)
    ref = modes.integrate(h, p0, s0, run.t, tau0=1.0)
    sgd_rows.append(dict(lr=lr, momentum=momentum, dt=dt, steps=steps,
                         p_error=np.abs(along(U, Wp_mean) - ref.p).max(),
                         s_error=np.abs(along(U, F_mean) - ref.s).max()))
sgd_table = pd.DataFrame(sgd_rows)
sgd_table
"""),
    code("""
run = runs[0.02, 0.0]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), sharex=True)
for name, ax, flow_values, sgd_values in (
    ("p", axes[0], reduced.p, along(U, run.Wp)),
    ("s", axes[1], reduced.s, along(U, matrix.correlation(run.W))),
):
    for j in range(n):
        colour = plt.cm.viridis(j / (n - 1))
        lo, hi = np.percentile(sgd_values[:, :, j], [10, 90], axis=1)
        ax.fill_between(run.t, lo, hi, color=colour, alpha=0.25, lw=0)
        ax.plot(run.t[::4], sgd_values[::4, :, j].mean(axis=1), "o", ms=3, color=colour)
        ax.plot(t, flow_values[:, j], color=colour)
    ax.set(xlabel="flow time $t$", ylabel=f"${name}_j$")
fig.suptitle(f"T7 (lines) vs SGD (dots: mean, band: 10-90% over {seeds} seeds, lr = 0.02, "
             f"momentum 0), $\\\\alpha_p$ = 1, $\\\\beta$ = 0.5, $\\\\eta$ = 0.02, "
             "$\\\\sigma^2$ = 0.2")
fig.tight_layout()
"""),
    md(r"""
## Breaking the assumptions

For a general start the natural way to apply T7 is the one `linear_ssl.compare` uses on a
trained network: take $F(0)$'s eigenvectors $u_j$, seed $s_j=\lambda_j(F)$,
$p_j=u_j^\top W_p u_j$, $\tau_j=u_j^\top C_{to}u_j/s_j$ with $C_{to}=W_aXW^\top$, integrate
T7 and compare the predicted spectrum of $F$ with the matrix flow's. Four cases:

* **aligned, isotropic**: the reduction is exact;
* **non-isotropic X** (eigenvalues 2 ... 0.3 in a random basis; A2 broken): $F=WXW^\top$ no
  longer shares $W_p$'s eigenvectors, and the fixed points move (T4);
* **unaligned start** (random $W$, random symmetric $W_p$ near $0.3I$): T6 says $[F, W_p]$
  decays while $K>0$, so the reduction becomes right only as the flow aligns;
* **asymmetric $W_p(0)$** (A3 broken), with $\eta>0$ and with $\eta=0$: the skew part
  shrinks relative to $W_p$, faster with weight decay ([T] Fig. 8).

(The unsymmetrised flow T1 gives even a symmetric $W_p(0)$ a skew part as soon as $F$ and
$W_p$ do not commute: A3 is itself an approximation off the aligned start.)

In every case the balance of **T2**, $WW^\top-W_p^\top W_p/\alpha_p=e^{-2\eta t}C$, stays exact.
"""),
    code("""
def seeded_modes(h, W0, Wp0, Wa0, X, t):
    \"\"\"T7 seeded from a state's projections on F(0)'s eigenvectors (compare's recipe).\"\"\"
    s, V = matrix.spectrum(W0 @ X @ W0.T)
    tau = along(V, Wa0 @ X @ W0.T) / s
    return modes.integrate(h, along(V, Wp0), s, t, tau0=tau)


def scenario(name, h, W0, Wp0, Wa0, X=None):
    sol = matrix.integrate(h, W0, Wp0, Wa0, t, X=X)
    pred = seeded_modes(h, W0, Wp0, Wa0, sol.X, t)
    s_flow = matrix.spectrum(sol.F)[0]  # descending
    s_pred = -np.sort(-pred.s, axis=1)
    scale = s_flow.max()
    C = matrix.balance(sol.W, sol.Wp, h.alpha_p)
    skew = np.linalg.norm(sol.Wp - np.swapaxes(sol.Wp, 1, 2), axis=(1, 2))
    return sol, s_pred, dict(
        scenario=name,
        spectrum_error_max=np.abs(s_flow - s_pred).max() / scale,
        spectrum_error_end=np.abs(s_flow[-1] - s_pred[-1]).max() / scale,
        commutator_start=matrix.commutator_norm(sol.F[0], sol.Wp[0]),
        commutator_end=matrix.commutator_norm(sol.F[-1], sol.Wp[-1]),
        skew_end=skew[-1] / np.linalg.norm(sol.Wp[-1]),
        balance_error=np.abs(C - matrix.balance_prediction(C[0], h.eta, t)).max(),
    )


X_aniso = (lambda R: R @ np.diag(np.linspace(2.0, 0.3, n)) @ R.T)(rotation(rng, n))
W_rand = rng.normal(0.0, 0.3, (n, n))
Wp_rand = 0.3 * np.eye(n) + (lambda A: (A + A.T) / 2)(rng.normal(0.0, 0.1, (n, n)))
skew = (lambda A: (A - A.T) / 2)(rng.normal(0.0, 0.1, (n, n)))
h0 = Hyper(alpha_p=h.alpha_p, beta=h.beta, eta=0.0, sigma2=h.sigma2)
cases = {
    "aligned, isotropic": (h, W0, Wp0, Wa0, None),
    "non-isotropic X": (h, W0, Wp0, Wa0, X_aniso),
    "unaligned start": (h, W_rand, Wp_rand, W_rand.copy(), None),
    "asymmetric Wp(0)": (h, W0, Wp0 + skew, Wa0, None),
    "asymmetric Wp(0), eta=0": (h0, W0, Wp0 + skew, Wa0, None),
}
results = {name: scenario(name, *args) for name, args in cases.items()}
break_table = pd.DataFrame([r for _, _, r in results.values()]).set_index("scenario")
break_table
"""),
    code("""
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
for name, (sol, _, _) in results.items():
    axes[0].plot(t, matrix.commutator_norm(sol.F, sol.Wp) + 1e-18, label=name)
    skew_t = np.linalg.norm(sol.Wp - np.swapaxes(sol.Wp, 1, 2), axis=(1, 2))
    axes[1].plot(t, skew_t + 1e-18, label=name)
axes[0].set(yscale="log", ylim=(1e-4, 2), xlabel="flow time $t$",
            ylabel=r"$\\|[F, W_p]\\|_F$", title="T6: commutator (aligned: ~1e-16)")
axes[1].set(yscale="log", ylim=(1e-4, 2), xlabel="flow time $t$",
            ylabel=r"$\\|W_p - W_p^\\top\\|_F$", title="[T] Fig. 8: skew part of $W_p$")
axes[0].legend(fontsize=7)
sol, s_pred, _ = results["non-isotropic X"]
axes[2].plot(t, matrix.spectrum(sol.F)[0], color="k", lw=1)
axes[2].plot(t, s_pred, color="tab:orange", ls="--", lw=1)
axes[2].set(xlabel="flow time $t$", ylabel="eigenvalues of $F$",
            title="non-isotropic X: flow (black) vs seeded T7 (dashed)")
fig.tight_layout()
"""),
    md(r"""
## T6: the alignment bound

On the symmetrised flow **T5** (SimSiam, so $\tau\equiv1$ exactly), $L=[F,W_p]$ obeys
$\dot L=-(LK+KL)$, hence $\|L(t)\|_F\le e^{-2\int_0^t\lambda_{\min}(K)}\|L(0)\|_F$ (which
gives T6's $e^{-2\lambda_0t}$ when $\lambda_{\min}(K)\ge\lambda_0>0$). We integrate it from the
unaligned start and check the ratio of the two sides stays $\le1$; then [T] Fig. 9 shows
the commutator for several $\eta$ and EMA rates.
"""),
    code("""
h_sym = Hyper(alpha_p=1.0, eta=0.05, sigma2=0.2)  # SimSiam
t_fine = np.linspace(0.0, t_end, 601)
sol = matrix.integrate(h_sym, W_rand, Wp_rand, None, t_fine, symmetric=True)
lam = matrix.lambda_min(matrix.alignment_operator(h_sym, sol.F, sol.Wp))
exponent = np.concatenate([[0.0], np.cumsum((lam[1:] + lam[:-1]) / 2 * np.diff(t_fine))])
L = matrix.commutator_norm(sol.F, sol.Wp)
bound = np.exp(-2 * exponent) * L[0]
t6_ratio = float(np.max(L / bound))
print(f"max_t ||L(t)|| / bound(t) = {t6_ratio:.6f} (T6: <= 1); "
      f"||L|| fell from {L[0]:.3g} to {L[-1]:.3g}")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(t_fine, L, label=r"$\\|[F, W_p]\\|_F$")
ax.semilogy(t_fine, bound, "--", label=r"$e^{-2\\int\\lambda_{\\min}(K)}\\|L(0)\\|_F$")
ax.set(xlabel="flow time $t$", title="T6 on the symmetrised flow T5")
ax.legend();
"""),
    code("""
fig = plots.draw_alignment_commutator(
    plots.alignment_commutator_data(**(dict(n=5, points=81) if FAST else {}))
)
"""),
    md(r"""
## Summary

The numbers `tests/test_notebooks.py` checks: the aligned start (so the test can rerun T7
itself), the matrix flow's final per-mode values, the SGD errors, the scenario table.
"""),
    code("""
final = dict(p=along(U, flow.Wp[-1]).tolist(), s=along(U, flow.F[-1]).tolist())
summary = dict(
    hyper=dict(alpha_p=h.alpha_p, beta=h.beta, eta=h.eta, sigma2=h.sigma2),
    p0=p0.tolist(), s0=s0.tolist(), t_end=t_end, final=final,
    reduction_error=reduction_error,
    sgd=sgd_table[["lr", "momentum", "s_error", "p_error"]].to_dict("records"),
    scenarios=break_table.to_dict("index"),
    t6_ratio=t6_ratio,
)
print(json.dumps(summary))
"""),
]


# --------------------------------------------------------------------------- notebook 3

NB3 = [
    md(r"""
# 3. Closed-form predictors and the edge of orthogonality

DirectPred [T], DirectSet / DirectCopy [W] and the predictors of "The Edge of
Orthogonality" [E] do not train $W_p$: they set it, every step, from running estimates of
$\hat F=C_{oo}=\mathbb E[ff^\top]$ and $C_{to}=\mathbb E[f_af^\top]$ (theory.md **R1-R9**).
`linear_ssl.predictors` implements each rule once, for NumPy and torch; `get_rule(name,
**params)` configures one; `matrix.integrate(..., predictor=name)` runs the linear model
with $W_p$ set by the rule at every instant from the exact $C_{oo}=W(X+X')W^\top$ and
$C_{to}=W_aXW^\top$, while $W$ and $W_a$ follow **T1**.

This notebook: (1) the rules on one matrix: which power of $\Sigma$ each computes and how
fast the iterations converge (R5-R7); (2) the linear model under each rule: which modes of
$F$ each keeps alive, with and without the ridge (R9); (3) the orthogonality diagnostics
**E1-E5** of the resulting predictors, and [E]'s Fig. 2 analogue: E3 / E5 of the optimal
linear predictor (R3, LRP) against the EMA rate.
"""),
    setup("""
from linear_ssl import diagnostics, plots, predictors
from linear_ssl.theory import Hyper, matrix
"""),
    md(r"""
## 1. The rules on one matrix

A symmetric positive definite $\Sigma$ with eigenvalues from 1 down to 0.01. In exact
arithmetic DirectPred's "paper" variant is $\Sigma^{1/2}$ plus a ridge, Newton-Schulz (R6)
and Visser (R5) converge to $\Sigma^{1/2}$, NS$^2$ (R7) to $\Sigma^{1/4}$, DirectCopy (R2,
$\alpha=1$) is $\Sigma/\|\Sigma\|$, and Stiefel (R8) is the orthogonal polar factor
(the identity for a symmetric PD $\Sigma$). Errors are relative, in the spectral norm, against
the eigendecomposition. Newton-Schulz converges quadratically once started; Visser's fixed
step $h$ makes it slow on an ill-conditioned $\Sigma$ (hence [E]'s "several dozen" steps).
"""),
    code("""
rng = np.random.default_rng(0)


def rotation(n):
    \"\"\"A uniformly random orthogonal matrix (QR of a Gaussian matrix, signs fixed).\"\"\"
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def power(S, a):
    \"\"\"S^a for symmetric PSD S, by eigh (the reference).\"\"\"
    lam, V = np.linalg.eigh(S)
    return (V * np.clip(lam, 0, None) ** a) @ V.T


def rel(A, B):
    return np.linalg.norm(A - B, 2) / np.linalg.norm(B, 2)


m = 8
R = rotation(m)
Sigma = R @ np.diag(np.geomspace(1.0, 0.01, m)) @ R.T
root, quarter = power(Sigma, 0.5), power(Sigma, 0.25)
iterations = np.arange(1, 31 if FAST else 61)
errors = pd.DataFrame({
    "newton_schulz -> S^1/2 (R6)": [rel(predictors.newton_schulz(Sigma, n=int(k))[0], root)
                                    for k in iterations],
    "visser -> S^1/2 (R5)": [rel(predictors.visser(Sigma, n=int(k)), root) for k in iterations],
    "ns2 -> S^1/4 (R7)": [rel(predictors.ns2(Sigma, n=int(k)), quarter) for k in iterations],
}, index=iterations)
ax = errors.plot(logy=True, figsize=(5.5, 3.3), xlabel="iterations n",
                 ylabel="relative error (spectral)", title="R5-R7 on one SPD matrix")
ax.axvline(9, color="0.6", ls=":")  # [E]'s n = 9 (NS) and 7 (NS^2)
errors.loc[[7, 9, 30]]
"""),
    md(r"""
## 2. The linear model under each rule

BYOL on the linear model (T1) with non-isotropic data: $X$ has eigenvalues 2 ... 0.2 and
the augmentation covariance $X'$ 0.5 ... 0.05, in unrelated random bases, so no rule's
$W_p$ simply commutes with $F$. Every run starts from the same $W(0)=W_a(0)$; "trained" is
the ordinary flow with $W_p$ integrated (T1). A mode of $F=WXW^\top$ counts as alive when
its eigenvalue is at least 1% of the largest at the end.

Scale and shape. The rules are scale-free by design: they were built for the *normalised*
loss of the networks ($-2\cos$), where only the directions of $F$ matter. Under T1's plain
squared loss the overall scale of $F$ is free to drift: DirectPred's $p_{\max}=1+\epsilon$
exceeds the $p_+\approx\tau/(1+\sigma^2)$ at which a mode holds still (T9), so the whole of
$F$ shrinks while its shape settles. The table therefore reports both: `scale`, the largest
eigenvalue of $F$ at the end over that at the start, and the shape, $s_j$ relative to the
largest.
"""),
    code("""
n1 = n2 = 8
X = (lambda Q: Q @ np.diag(np.linspace(2.0, 0.2, n1)) @ Q.T)(rotation(n1))
Xp = (lambda Q: Q @ np.diag(np.linspace(0.5, 0.05, n1)) @ Q.T)(rotation(n1))
W0 = rng.normal(0.0, 0.3, (n2, n1))
Wp0 = 0.5 * np.eye(n2) + rng.normal(0.0, 0.05, (n2, n2))  # only the trained run uses it
h = Hyper(alpha_p=1.0, beta=0.2, eta=0.05)
t = np.linspace(0.0, 100.0 if FAST else 300.0, 101)
rules = {
    "trained (T1)": None,
    "directpred eps=0.1 (R1)": ("directpred", dict(eps=0.1)),
    "directcopy eps=0.1 (R2)": ("directcopy", dict(eps=0.1)),
    "directcopy eps=0 (R2)": ("directcopy", dict(eps=0.0)),
    "lrp (R3)": ("lrp", {}),
    "neumann (R4)": ("neumann", {}),
    "visser (R5)": ("visser", {}),
    "newton_schulz (R6)": ("newton_schulz", {}),
    "ns2 (R7)": ("ns2", {}),
    "stiefel (R8)": ("stiefel", {}),
    "newton_schulz + ridge 0.3 (R9)": ("newton_schulz", dict(ridge=0.3)),
}
flows = {}
for label, rule in rules.items():
    if rule is None:
        flows[label] = matrix.integrate(h, W0, Wp0, W0, t, X=X, Xp=Xp)
    else:
        name, params = rule
        flows[label] = matrix.integrate(h, W0, None, W0, t, X=X, Xp=Xp, predictor=name, **params)

rows = []
for label, sol in flows.items():
    spectrum = matrix.spectrum(sol.F)[0]  # (T, n2), descending
    final = spectrum[-1] / spectrum[-1, 0]
    rows.append(dict(rule=label, scale=spectrum[-1, 0] / spectrum[0, 0],
                     alive=int(np.sum(final >= 1e-2)),
                     **{f"s{j + 1}": final[j] for j in range(n2)}))
alive_table = pd.DataFrame(rows).set_index("rule")
alive_table.style.format("{:.3g}")
"""),
    code("""
fig, axes = plt.subplots(2, 6, figsize=(14, 5), sharex=True, sharey=True)
for ax, (label, sol) in zip(axes.flat, flows.items(), strict=False):  # 12 axes, 11 runs
    spectrum = matrix.spectrum(sol.F)[0]
    ax.semilogy(t, np.clip(spectrum / spectrum[:, :1], 1e-6, None))
    ax.set_title(label, fontsize=8)
    ax.set_ylim(1e-5, 2)
axes.flat[-1].axis("off")
for ax in axes[-1]:
    ax.set_xlabel("flow time $t$")
for ax in axes[:, 0]:
    ax.set_ylabel("eig($F$) / largest")
fig.suptitle(f"Linear BYOL (T1), non-isotropic X, X': the spectrum of F under each "
             f"predictor ($\\\\beta$ = {h.beta:g}, $\\\\eta$ = {h.eta:g})")
fig.tight_layout()
"""),
    md(r"""
Reading the table: the eigen-based rules with a ridge (DirectPred, DirectCopy with
$\epsilon=0.1$) keep every mode; without it DirectCopy loses the weakest ones ([E] reports
DirectCopy needs the ridge tuned precisely); Stiefel (a polar factor, all singular values 1)
lets one direction dominate; and the optimal predictor LRP (R3) freezes the shape of $F$
while its scale decays as $e^{-2\eta t}$: with a square invertible $W$ and $W_a(0)=W(0)$,
$W_p=C_{to}C_{oo}^{-1}$ fits the target exactly (T1's residual $E=0$), so no gradient reaches
$W$ and it feels nothing but weight decay, the linear-model face of [T] Table 1's failed
plug-in optimum. A sweep of the ridge (R9) on the bare
Newton-Schulz rule: too little and the weakest modes die, too much and $W_p\approx\alpha I$
no longer tells the modes apart.
"""),
    code("""
ridges = (0.0, 0.15, 0.3, 0.6) if FAST else (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
sweep = []
for alpha in ridges:
    sol = matrix.integrate(h, W0, None, W0, t, X=X, Xp=Xp, predictor="newton_schulz",
                           ridge=alpha)
    final = matrix.spectrum(sol.F[-1])[0]
    final = final / final[0]
    sweep.append(dict(ridge=alpha, alive=int(np.sum(final >= 1e-2)), weakest=final[-1],
                      participation=diagnostics.participation_ratio(sol.F[-1])))
pd.DataFrame(sweep)
"""),
    md(r"""
## 3. The edge of orthogonality (E1-E5)

[E]'s reading: a good predictor is close to an orthogonal projection. For the final $W_p$
of each run: E1 quasi-projection $\|P^2-P\|_2$, E2 quasi-symmetry $\|P^\top-P\|_2$, E3
quasi-orthogonal projection $\|PP^\top-P\|_2$ (after scaling $P$ to spectral radius 1),
E4 stable rank, E5 distance to the polar factor. The last column checks the exact
inequality behind [E]'s "an $\epsilon$-symmetric $\epsilon$-projection is a
$2\epsilon$-quasi-orthogonal projection": $E3\le E1+\|P\|_2E2$ (theory.md section 4).
"""),
    code("""
edge_rows = []
for label, sol in flows.items():
    e = diagnostics.edge_of_orthogonality(sol.Wp[-1])
    bound = e["quasi_projection"] + e["norm"] * e["quasi_symmetry"]
    edge_rows.append(dict(rule=label, E1=e["quasi_projection"], E2=e["quasi_symmetry"],
                          E3=e["quasi_orthogonality"], norm=e["norm"],
                          stable_rank=e["stable_rank"], E5=e["polar_distance"],
                          E3_le_bound=bool(e["quasi_orthogonality"] <= bound + 1e-12)))
edge_table = pd.DataFrame(edge_rows).set_index("rule")
edge_table.round(4)
"""),
    md(r"""
## E3 / E5 of the optimal predictor against the EMA rate ([E] Fig. 2 analogue)

`plots.polar_distance_data` runs the trained flow (T1) for several EMA rates $\beta$ and
measures, at a few times, E5 and E3 of the LRP predictor (R3) built from the exact
$C_{oo}$, $C_{to}$ and of the trained $W_p$. [E] finds the predictor drifts away from
orthogonality as the EMA loosens (small $\beta$: the target lags further behind); the
table gives the medians on this small linear model, where the trend is mild.
"""),
    code("""
polar = plots.polar_distance_data(**(dict(betas=(0.03, 0.3, 3.0), runs=2) if FAST else {}))
fig = plots.draw_polar_distance(polar)
polar.groupby(["predictor", "t", "beta"]).polar_distance.median().unstack("beta").round(3)
"""),
    md(r"""
## Summary

The final state of the DirectPred run (so the test can apply R1 to it itself), the tables.
"""),
    code("""
dp = flows["directpred eps=0.1 (R1)"]
summary = dict(
    W=dp.W[-1].tolist(), Wa=dp.Wa[-1].tolist(), Wp=dp.Wp[-1].tolist(),
    X=X.tolist(), Xp=Xp.tolist(), eps=0.1,
    alive=alive_table["alive"].to_dict(),
    edge=edge_table.drop(columns="E3_le_bound").to_dict("index"),
    ns_error_n9=float(errors.iloc[8, 0]),
    eta=h.eta, t_end=float(t[-1]), lrp_scale=float(alive_table.loc["lrp (R3)", "scale"]),
)
print(json.dumps(summary))
"""),
]


# --------------------------------------------------------------------------- notebook 4

NB4 = [
    md(r"""
# 4. Theory against a trained network

The question the toolkit exists for: *does the theory predict what my network did?*
We train a short BYOL + DirectPred run (a narrow ResNet-18 on the 5,000 CIFAR-10 images
embedded in the package) with the spectra recorder on, then hand the run directory to
`linear_ssl.compare.compare_run`, which

* maps the run's real optimiser settings to the flow's $(\alpha_p, \beta, \eta, dt)$ by **T1**;
* seeds the eigenmode flow at a record step $t_0$ with the recorded spectra: $s_j$, the
  eigenvalues of $\hat F$, tracked mode by mode; $p_j=u_j^\top W_pu_j$;
  $\tau_j=u_j^\top C_{to}u_j/s_j$ (**A1**);
* integrates **T7** forward (for a closed-form predictor, the rule's own reduced flow:
  $p_j$ is the rule applied to the current $s$) and maps flow time back to steps;
* reports the agreement honestly: per-mode errors, the fit of the measured $(p_j, s_j)$ to
  the parabola $s=p^2/\alpha_p$ (**T8**), the commutator trend (**T6**), collapsed modes by
  **T9** and by the flow against those the run lost, and how far the run is from A1-A3.

A ResNet is not the linear model, so the interesting output is *where* and *by how much*
the theory misses. At the end, the same machinery on a run of the linear model itself
(where A1-A3 hold) shows what agreement looks like. In fast mode (tests) the run is tiny:
a few dozen steps of a width-4 network; expect no learning then, only plumbing.
"""),
    setup("""
from pathlib import Path

import torch
from IPython.display import Markdown, display

from linear_ssl import plots_runs
from linear_ssl.compare import aligned_init, compare_run, write_linear_run
from linear_ssl.runs import load_run
from linear_ssl.theory import Hyper
from linear_ssl.train import train_from_cli
"""),
    md(r"""
## A short run on the embedded data

`train_from_cli("smoke", overrides)` is what `linear-ssl train smoke key=value ...` runs:
experiments/smoke.yaml (BYOL, EMA 0.99, DirectPred with $\epsilon=0.1$, SGD lr 0.05,
momentum 0.9, weight decay 4e-4) plus dotted overrides. The spectra recorder writes one
record every `record.every` steps into `runs/notebook04-<time>/spectra/`.
"""),
    code("""
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
overrides = ["name=notebook04", "record.every=10", "checkpoint.every=1000"]
if FAST:  # plumbing only: a width-4 network, 30 steps of 32 images
    overrides += [
        "max_steps=30", "batch_size=32", "data.limit=512", "model.width=4",
        "model.projector_hidden=32", "model.projector_out=16", "record.every=5",
        "record.log_every=5", "record.progress=false",
    ]
else:
    overrides += ["max_steps=100", "record.progress=false"]  # about a minute on a laptop
run_dir = train_from_cli("smoke", overrides)
run = load_run(run_dir)
print(run_dir, "| records at steps", run.spectra.steps.tolist())
run.metrics.tail()
"""),
    md(r"""
## The run, read back

`load_run` gives the config, the metrics table and the stacked spectra. `run.hyper()` is
T1's map (torch convention): $dt=\mathrm{lr}/(1-m)$, $\alpha_p$ = predictor lr / lr,
$\beta=(1-\gamma_a)/dt$, $\eta$ = weight decay. Then [T] Fig. 2 from the records: the
spectrum of $\hat F$, the predictor's eigenvalues, the alignment $\cos(u_j, W_pu_j)$ and the
asymmetry of $W_p$ (DirectPred builds $W_p$ from $\hat F$'s eigenvectors, so alignment is 1
and asymmetry 0 by construction; a trained linear predictor would show the T6 dynamics).
"""),
    code("""
h = run.hyper()
print(h)
print("recorded per record:", sorted(k for k in run.spectra if k.startswith(("mode_", "F_"))))
fig = plots_runs.draw_t_fig2(plots_runs.t_fig2_data(run))
"""),
    md(r"""
## The seeded flow against the run

`compare_run` seeds at the first record by default (`t0_step=` picks another). Its
`to_markdown()` is what `linear-ssl compare RUN` prints; `table` is tidy (step, mode,
quantity, measured, predicted), `per_mode` has one row per mode.
"""),
    code("""
comparison = compare_run(run)
display(Markdown(comparison.to_markdown()))
"""),
    code("""
comparison.table.pivot_table(
    index=["mode", "step"], columns="quantity", values=["measured", "predicted"]
).head(12)
"""),
    md(r"""
The overlay: measured $s_j$, $p_j$, $\tau_j$ (solid) and the seeded flow (dashed) for the
largest modes, and the $(p, s)$ plane with T8's parabola and the fitted one.
"""),
    code("""
fig = plots_runs.draw_overlay(plots_runs.overlay_data(comparison))
"""),
    md(r"""
Reading it. Three things separate this run from the theory, and the notes above name them:
the network is not linear (BatchNorm and ReLU in the projector, A2 fails), the trainer's
loss is the *normalised* regression $-2\cos$ while T1-T7 are for the plain squared loss
(so the overall scale of $\hat F$ is not what T7 governs; compare shapes and ratios rather
than absolute $s_j$), and $\tau_j$ is far from 1 and spread across modes (A1). What does
carry over: DirectPred's $W_p$ shares $\hat F$'s eigenvectors (alignment 1, commutator 0)
and the measured $(p_j, s_j)$ lie on a parabola (T8's shape, with a scale set by the
normalisation rather than $1/\alpha_p$). Compare also `lost_run` with `lost_flow` and
`collapsed_t9`: a narrow network early in training concentrates $\hat F$ on a few directions
much faster than the flow's collapse basin predicts.

Which flow? For a closed-form predictor `compare_run` integrates the rule's reduced flow
(`flow="rule"`: $p_j$ is the rule applied to the predicted $s$, so its error is inherited
from $s_j$'s); `flow="t7"` lets $p_j$ evolve freely as if the predictor were trained. Which
one fits a given run better is an empirical question; both are one call.
"""),
    code("""
t7 = compare_run(run, flow="t7")
keys = ["err_s_median", "err_p_median", "err_tau_median", "parabola_r2", "lost_run", "lost_flow"]
pd.DataFrame({c.flow: {k: c.agreement[k] for k in keys} for c in (comparison, t7)})
"""),
    md(r"""
## What agreement looks like: the linear model

`write_linear_run` trains the linear model itself by minibatch SGD (`theory.sgd`, $X=I$,
$X'=\sigma^2I$, an aligned start from `aligned_init`, a trainable linear predictor) and
writes it in the trainer's run format. The same `compare_run` call then tests T7 where its
assumptions hold: the errors are small (set by SGD noise and the step size, see notebook 2).
Its $(p_j, s_j)$ approach T8's parabola only at the rate $2\eta$, so the parabola fit's $R^2$
says how far this short run got, not whether the theory holds.
"""),
    code("""
h_lin = Hyper(alpha_p=1.0, beta=0.5, eta=0.02, sigma2=0.2)
W0, Wp0, Wa0 = aligned_init(s0=np.linspace(0.5, 0.05, 6), p0=np.linspace(0.6, 0.1, 6), seed=0)
lin_dir = write_linear_run(
    f"{run_dir}-linear", h_lin, W0, Wp0, Wa0, lr=0.02, batch=64 if FAST else 256,
    steps=300 if FAST else 1500, record_every=30,
)
linear = compare_run(lin_dir)
pd.DataFrame({"ResNet (DirectPred)": comparison.agreement, "linear model": linear.agreement}).loc[
    ["err_s_median", "err_p_median", "err_tau_median", "parabola_r2", "commutator_relative_last",
     "asymmetry_mean", "lost_run", "lost_flow", "flow"]
]
"""),
    code("""
fig = plots_runs.draw_overlay(plots_runs.overlay_data(linear))
"""),
    md(r"""
## Summary

What `tests/test_notebooks.py` checks against the run directory itself: the table has a
row per (record step from $t_0$, compared mode, quantity), the compared and unusable modes
add up to the recorded ones, and the linear model's closed loop agrees.
"""),
    code("""
summary = dict(
    run_dir=str(Path(run_dir).resolve()),
    flow=comparison.flow,
    t0_step=int(comparison.seed.step),
    table_rows=len(comparison.table),
    table_modes=sorted(int(m) for m in comparison.table["mode"].unique()),
    table_steps=sorted(int(s) for s in comparison.table["step"].unique()),
    modes=comparison.agreement["modes"],
    modes_unusable=comparison.agreement["modes_unusable"],
    hyper=dict(alpha_p=h.alpha_p, beta=h.beta, eta=h.eta, dt=h.dt),
    linear=dict(err_s_median=linear.agreement["err_s_median"],
                err_p_median=linear.agreement["err_p_median"]),
    last_measured_s={
        str(m): float(v)
        for m, v in comparison.table.query("quantity == 's' and step == @run.spectra.steps[-1]")[
            ["mode", "measured"]].itertuples(index=False)
    },
)
print(json.dumps(summary))
"""),
]


NOTEBOOKS = {
    "01_eigenmode_flow.ipynb": NB1,
    "02_matrix_vs_modes_vs_sgd.ipynb": NB2,
    "03_closed_form_predictors.ipynb": NB3,
    "04_theory_vs_trained_network.ipynb": NB4,
}


def build(names: list[str] | None = None) -> list[Path]:
    """Write the notebooks (all, or those in `names`) without outputs; return their paths."""
    written = []
    for name, parts in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook(cells=_cells(parts))
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nb.metadata["language_info"] = {"name": "python"}
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"cell-{i:02d}"
        nbformat.validate(nb)
        path = HERE / name
        nbformat.write(nb, path)
        written.append(path)
    # the cells above are written for reading; ruff gives them the project's layout
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--fix", "--quiet", *map(str, written)], check=False)
    subprocess.run([*ruff, "format", "--quiet", *map(str, written)], check=True)
    return written


if __name__ == "__main__":
    for path in build(sys.argv[1:]):
        print(path)
