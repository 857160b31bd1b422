# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The eigenmode flow of linear BYOL / SimSiam
#
# Under the assumptions of the eigenspace reduction (A1 $W_a=\tau W$ per eigen-direction,
# A2 isotropic data $X=I$, $X'=\sigma^2 I$, A3 symmetric predictor), the matrix flow T1 splits
# into one scalar system per eigen-mode $j$ (theory.md **T7**):
#
# $$\dot p = \alpha_p s(\tau-(1+\sigma^2)p)-\eta p,\qquad
# \dot s = 2ps(\tau-(1+\sigma^2)p)-2\eta s,\qquad
# \dot\tau = \beta(1-\tau)-\tau\,[p(\tau-(1+\sigma^2)p)-\eta]$$
#
# with $p_j$ an eigenvalue of the predictor $W_p$, $s_j$ one of $F=WW^\top$ and $\tau_j$ the
# target's scale ($\tau\equiv1$ for SimSiam). This notebook walks through
# the invariant parabola (**T8**), the fixed points and the collapse basin (**T9**), the two
# conditions of **T10**, and how $\alpha_p$, $\eta$ and the EMA rate $\beta$ move them (**T11**).
# Everything comes from `linear_ssl.theory.modes` and the figure modules of `linear_ssl.figures`.
#
# Full mode takes about 15 s on an idle 2-core CPU (measured). Set
# `LINEAR_SSL_NOTEBOOK_FAST=1` for a quick run with coarse grids (what the tests do).

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from linear_ssl.figures import t_fig3_phase_portrait, t_fig4_parabola_flow, t_fig5_mode_sweeps
from linear_ssl.theory import Hyper, modes

# %matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")

# %% [markdown]
# ## Fixed points on the parabola (T9)
#
# With $\eta>0$, every mode approaches the parabola $s=p^2/\alpha_p$ (T8, below), on which
# $\dot p = -(1+\sigma^2)\,p\,(p-p_-)(p-p_+)$ with
# $p_\pm = [\tau\pm\sqrt{\tau^2-4\eta(1+\sigma^2)}]/(2(1+\sigma^2))$.
# `modes.fixed_points` gives $(p_-, p_+)$; past the threshold $\eta>\tau^2/(4(1+\sigma^2))$ both
# are nan: only $p=0$ remains and every mode collapses. The residual column checks that the
# 1-D flow `modes.parabola_flow` really vanishes there.

# %%
rows = []
for eta in (0.0, 0.01, 0.04, 0.1, 0.2, 0.25, 0.3):
    h = Hyper(alpha_p=1.0, eta=eta)  # SimSiam: tau == 1
    p_minus, p_plus = modes.fixed_points(h)
    roots = np.array([p_minus, p_plus])
    residual = np.abs(modes.parabola_flow(h, roots)).max() if np.isfinite(roots).all() else np.nan
    rows.append(
        dict(
            eta=eta,
            threshold=float(modes.collapse_threshold(h)),
            p_minus=float(p_minus),
            p_plus=float(p_plus),
            flow_residual=residual,
        )
    )
pd.DataFrame(rows)

# %% [markdown]
# ## Phase portraits ([T] Fig. 3)
#
# The $(p, s)$ plane at $\tau=1$, $\alpha_p=1$ for $\eta\in\{0, 0.01, 1\}$: streamlines of T7,
# the parabola (green), fixed points (filled: stable, open: unstable) and a few orbits.
# At $\eta=0$ the fixed points form two lines ($s=0$ and $p=\tau/(1+\sigma^2)$); with a small
# $\eta$ they reduce to $0$, $p_-$ (unstable) and $p_+$ (stable); at $\eta=1>1/4$ everything
# flows to the origin.

# %%
panels = t_fig3_phase_portrait.data(**(dict(grid=21, points=100) if FAST else {}))
fig = t_fig3_phase_portrait.draw(panels)

# %% [markdown]
# ## The invariant parabola (T8)
#
# Along T7, $c = e^{2\eta t}(s - p^2/\alpha_p)$ is exactly constant, whatever $\tau$ does:
# $s(t) = p(t)^2/\alpha_p + e^{-2\eta t}c$. We integrate random BYOL modes (their $\tau$ moves)
# and measure how far `modes.invariant` drifts from its initial value: it should be at the
# level of the integrator's tolerance.

# %%
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
ax.set(
    xlabel="flow time $t$",
    ylabel=r"$s - p^2/\alpha_p$",
    title="T8: distance to the parabola (solid) = $e^{-2\\eta t}c$ (dotted)",
)
fig.tight_layout()

# %% [markdown]
# ## The 1-D flow on the parabola ([T] Fig. 4)
#
# $\dot p$ on the parabola in T9's three regimes: $\eta=0$ (0 is half-stable), $0<\eta<\tau^2/4$
# (0 stable, $p_-$ unstable, $p_+$ stable: the **collapse basin** is $p<p_-$), $\eta>\tau^2/4$
# (only 0).

# %%
fig = t_fig4_parabola_flow.draw(t_fig4_parabola_flow.data(**(dict(points=201) if FAST else {})))


# %% [markdown]
# ## The basin edge found by simulation, against T9's closed form
#
# The collapse basin on the parabola is $p(0)<p_-$. Here we find its edge without the closed
# form: start modes on the parabola, integrate T7 for a long time, call a mode collapsed when
# its $p$ ends near 0, and bisect (vectorised: a fan of starts, refined around the switch).
# The surviving modes' final $p$ gives $p_+$. Both should match `modes.fixed_points`.


# %%
def basin_edge(h, lo=0.0, hi=0.5, fan=32, rounds=3 if FAST else 5, t_end=600.0):
    """The smallest p(0) on the parabola whose T7 orbit does not collapse, and its end p."""
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

# %% [markdown]
# ## How $\alpha_p$ and $\eta$ move the basin (T11)
#
# Off the parabola the basin is a region of the $(p(0), s(0))$ plane, computed here with
# `modes.collapses(method="integrate")` on a grid. T11 ([T] Table 4): a larger $\alpha_p$
# flattens the parabola $s=p^2/\alpha_p$ and **shrinks** the basin (but $s$ barely grows);
# a larger $\eta$ **widens** it ($p_-$ grows with $\eta$) until, past $\eta=1/4$, everything
# collapses. The dashed line is $p=p_-$, the green curve the parabola.

# %%
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
        ax.set(
            ylim=(0, 0.6),
            title=f"$\\alpha_p$={alpha_p:g}, $\\eta$={eta:g}: {collapsed.mean():.0%} collapse",
        )
for ax in axes[-1]:
    ax.set_xlabel("$p(0)$")
for ax in axes[:, 0]:
    ax.set_ylabel("$s(0)$")
fig.suptitle("T9/T11: collapse basin (grey) of T7 at $\\tau$ = 1")
fig.tight_layout()
basin = pd.DataFrame(basin)
basin.pivot(index="eta", columns="alpha_p", values="collapsed_fraction")

# %% [markdown]
# ## The EMA (T7's $\tau$, T11) and the two conditions of T10
#
# With an EMA target, $\tau$ starts where the target starts and relaxes at rate $\beta$.
# T9 at a fixed $\tau$: $p_-$ **grows** and $p_+\approx\tau/(1+\sigma^2)$ **shrinks** as $\tau$
# shrinks, so a loose EMA (small $\beta$, $\tau$ small early) is a curriculum that aims low
# early but traps more modes and slows training (T11).

# %%
h = Hyper(alpha_p=1.0, eta=0.04)
tau = np.linspace(0.35, 1.0, 200)
p_minus, p_plus = modes.fixed_points(h, tau)
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(tau, p_plus, label="$p_+$ (stable)")
ax.plot(tau, p_minus, "--", label="$p_-$ (unstable: basin edge)")
ax.axvline(np.sqrt(4 * h.eta), color="0.5", lw=0.8)
ax.set(
    xlabel=r"$\tau$ (held fixed)",
    ylabel="fixed point $p$",
    title=f"T9 at $\\eta$ = {h.eta:g}: fixed points vs $\\tau$",
)
ax.legend()
fig.tight_layout()

# %% [markdown]
# [T] Fig. 5 simulates T7 from a spread of $p_j(0)$ with $s_j(0)=0.02$, $\tau_j(0)=1$: an
# $\eta$ sweep and an EMA sweep at $\eta=0.04$, with $\lambda_{\min}(K)$ of T6 ($K>0$ keeps the
# eigenspaces aligned).

# %%
sweeps = t_fig5_mode_sweeps.data(step=0.2 if FAST else 0.05)
fig = t_fig5_mode_sweeps.draw(sweeps)

# %% [markdown]
# The same story as numbers. Modes start small ($s_j(0)=10^{-3}$, $p_j(0)$ spread over
# $[0, 0.3]$) with the target equal to the online network ($\tau(0)=1$) or at zero
# ($\tau(0)=0$, as with $W_a(0)=0$). For each EMA rate: the fraction of modes that collapse
# (`modes.collapses`), the median time the survivors take to reach 90% of their final $p$,
# and how often T10's two conditions hold along the way ($\Delta_j>0$: $s_j$ grows;
# $\Delta_j<(\alpha_p(1+\sigma^2)s_j+\eta)/2$: $K>0$, the eigenspaces stay aligned).
# A smaller $\beta$ traps more modes and trains more slowly (T11).

# %%
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

# %% [markdown]
# ## Summary
#
# The numbers the tests check (`tests/test_notebooks.py` recomputes them directly).

# %%
summary = dict(
    eta=h_basin.eta,
    alpha_p=h_basin.alpha_p,
    basin_edge=edge,
    p_plus_simulated=p_end,
    t8_drift=t8_drift,
    ema_collapsed={str(r["beta"]): r["collapsed (tau0=1)"] for r in rows},
    collapsed_fraction={
        f"{r.alpha_p:g},{r.eta:g}": r.collapsed_fraction for r in basin.itertuples()
    },
)
print(json.dumps(summary))
