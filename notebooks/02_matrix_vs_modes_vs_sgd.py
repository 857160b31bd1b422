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
# # 2. Matrix flow, eigenmode reduction, SGD: when the reduction holds
#
# Three descriptions of linear BYOL, from the most literal to the most reduced:
#
# 1. `theory.sgd.simulate`: minibatch SGD on Gaussian data, two augmented views per sample,
#    torch's SGD semantics (momentum, coupled weight decay) and an EMA target;
# 2. `theory.matrix.integrate`: the matrix flow **T1** (its large-batch, small-step limit,
#    exact in expectation), for any data covariance $X$ and augmentation covariance $X'$;
# 3. `theory.modes.integrate`: the scalar system **T7**, one per eigen-mode, exact only under
#    A1-A3 (target $W_a=\tau W$ per eigen-direction, $X=I$, $X'=\sigma^2I$, symmetric $W_p$).
#
# We check that (1) tends to (2) as the learning rate shrinks (with the time map of **T1**:
# a step advances the flow by $dt=\mathrm{lr}/(1-m)$), that (2) equals (3) from an aligned start
# on isotropic data (**T5**-**T7**), and then break each assumption in turn and measure how far
# the reduction goes wrong, next to the quantities that stay exact (**T2**'s balance) or
# decay (**T6**'s commutator).
#
# Full mode takes about 15 s on an idle 2-core CPU (measured); `LINEAR_SSL_NOTEBOOK_FAST=1`
# shortens the horizon and the SGD runs (what the tests do).

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from linear_ssl.figures import t_fig9_commutator
from linear_ssl.theory import Hyper, matrix, modes, sgd

# %matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")


# %% [markdown]
# ## An aligned start
#
# Pick orthonormal bases $U$ (output space) and $Q$ (input space) and per-mode values
# $p_j(0)$, $s_j(0)$: $W(0)=U\,\mathrm{diag}(\sqrt{s_j})\,Q^\top$,
# $W_p(0)=U\,\mathrm{diag}(p_j)\,U^\top$,
# $W_a(0)=W(0)$ ($\tau_j(0)=1$). Under T1 with $X=I$, $X'=\sigma^2I$ the three matrices keep
# these bases, and $u_j^\top W_p u_j$, $u_j^\top F u_j$, the target's scale along $u_j$ follow T7
# exactly.


# %%
def along(U, M):
    """u_j^T M u_j for the columns u_j of U, over leading axes of M."""
    return np.einsum("ij,...ik,kj->...j", U, M, U)


n = 6
rng = np.random.default_rng(0)
U, Q = matrix.random_rotation(n, rng), matrix.random_rotation(n, rng)
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

# %% [markdown]
# ## SGD tends to the flow (T1)
#
# `sgd.simulate(h, ..., lr=...)` picks the per-step settings whose slow limit is `h`
# (predictor lr $=\alpha_p\,$lr, EMA $=1-\beta\,dt$, weight decay $\eta$) and records the
# flow time `run.t` $=$ step $\times\,dt$. We average 16 seeds (the flow is an expectation)
# and measure the largest deviation from T7 along the modes: it shrinks roughly in proportion
# to the step $dt$. The last rows run heavy-ball momentum $m=0.9$, as the trainer does: the
# same flow, reached with $dt=\mathrm{lr}/(1-m)$, and the error again halves with $dt$; its
# constant is larger, by about $(1+m)/(1-m)$ (heavy-ball's inertia: its modified equation
# carries a $\tfrac{dt}{2}\tfrac{1+m}{1-m}\ddot W$ term where plain SGD has $\tfrac{dt}{2}\ddot W$).

# %%
seeds, batch = (4, 64) if FAST else (16, 128)
settings = [(0.04, 0.0), (0.02, 0.0)]
settings += [] if FAST else [(0.01, 0.0), (0.002, 0.9), (0.001, 0.9)]
sgd_rows, runs = [], {}
for lr, momentum in settings:
    dt = lr / (1 - momentum)
    steps = int(round(t_end / dt))
    run = sgd.simulate(
        h,
        W0,
        Wp0,
        Wa0,
        lr=lr,
        momentum=momentum,
        steps=steps,
        batch=batch,
        seeds=seeds,
        seed=1,
        record_every=max(1, steps // 60),
    )
    runs[lr, momentum] = run
    F_mean = matrix.correlation(run.W).mean(axis=1)  # X = I: F = W W^T, averaged over seeds
    Wp_mean = run.Wp.mean(axis=1)
    ref = modes.integrate(h, p0, s0, run.t, tau0=1.0)
    sgd_rows.append(
        dict(
            lr=lr,
            momentum=momentum,
            dt=dt,
            steps=steps,
            p_error=np.abs(along(U, Wp_mean) - ref.p).max(),
            s_error=np.abs(along(U, F_mean) - ref.s).max(),
        )
    )
sgd_table = pd.DataFrame(sgd_rows)
sgd_table

# %% [markdown]
# The run at lr = 0.02 drawn over T7, one colour per mode. On the scale of $p_j$ and $s_j$
# the spread over seeds is thinner than a line, so the right panel shows it on its own
# scale for three of the modes: SGD minus T7 at the record times, the band spanning the 10th
# to 90th percentile over seeds (the spread of one run, not the error of the mean).

# %%
run = runs[0.02, 0.0]
sgd_p, sgd_s = along(U, run.Wp), along(U, matrix.correlation(run.W))  # (records, seeds, modes)
flow_at_records = modes.integrate(h, p0, s0, run.t, tau0=1.0)
colours = plt.cm.viridis(np.linspace(0.0, 0.9, n))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for name, ax, flow_values, sgd_values in (
    ("p", axes[0], reduced.p, sgd_p),
    ("s", axes[1], reduced.s, sgd_s),
):
    for j in range(n):
        ax.plot(t, flow_values[:, j], color=colours[j], label=f"mode {j + 1}")
        ax.plot(run.t[::4], sgd_values[::4, :, j].mean(axis=1), "o", ms=3, color=colours[j])
    ax.set(xlabel="flow time $t$", ylabel=f"${name}_j$")
axes[0].legend(fontsize=7, ncols=2, loc="lower right", title="colour: mode $j$")
axes[1].legend(
    handles=[
        Line2D([], [], color="k", label="T7 flow"),
        Line2D([], [], color="k", ls="", marker="o", ms=3, label=f"SGD, mean of {seeds} seeds"),
    ],
    fontsize=7,
    loc="lower right",
)
for j in (0, n // 2, n - 1):  # three modes: six overlapping bands are unreadable
    deviation = sgd_s[:, :, j] - flow_at_records.s[:, j, None]
    lo, hi = np.percentile(deviation, [10, 90], axis=1)
    axes[2].fill_between(run.t, lo, hi, color=colours[j], alpha=0.3, lw=0)
    axes[2].plot(run.t, deviation.mean(axis=1), color=colours[j], lw=1)
axes[2].axhline(0.0, color="k", lw=0.8)
axes[2].set(
    xlabel="flow time $t$",
    ylabel="$s_j$: SGD $-$ T7",
    title=f"modes 1, {n // 2 + 1}, {n}: mean over seeds (line),\n10-90 % of the seeds (band)",
)
fig.suptitle(
    f"T7 vs SGD (lr = 0.02, momentum 0, batch {batch}): $\\alpha_p$ = 1, $\\beta$ = 0.5, "
    "$\\eta$ = 0.02, $\\sigma^2$ = 0.2"
)
fig.tight_layout()


# %% [markdown]
# ## Breaking the assumptions
#
# For a general start the natural way to apply T7 is the one `linear_ssl.bridge` uses on a
# trained network: take $F(0)$'s eigenvectors $u_j$, seed $s_j=\lambda_j(F)$,
# $p_j=u_j^\top W_p u_j$, $\tau_j=u_j^\top C_{to}u_j/s_j$ with $C_{to}=W_aXW^\top$, integrate
# T7 and compare the predicted spectrum of $F$ with the matrix flow's. Four cases:
#
# * **aligned, isotropic**: the reduction is exact;
# * **non-isotropic X** (eigenvalues 2 ... 0.3 in a random basis; A2 broken): $F=WXW^\top$ no
#   longer shares $W_p$'s eigenvectors, and the fixed points move (T4);
# * **unaligned start** (random $W$, random symmetric $W_p$ near $0.3I$): T6 says $[F, W_p]$
#   decays while $K>0$, so the reduction becomes right only as the flow aligns;
# * **asymmetric $W_p(0)$** (A3 broken), with $\eta>0$ and with $\eta=0$: the skew part
#   shrinks relative to $W_p$, faster with weight decay ([T] Fig. 8).
#
# (The unsymmetrised flow T1 gives even a symmetric $W_p(0)$ a skew part as soon as $F$ and
# $W_p$ do not commute: A3 is itself an approximation off the aligned start.)
#
# In every case the balance of **T2**, $WW^\top-W_p^\top W_p/\alpha_p=e^{-2\eta t}C$, stays exact.


# %%
def seeded_modes(h, W0, Wp0, Wa0, X, t):
    """T7 seeded from a state's projections on F(0)'s eigenvectors (bridge.seed's recipe)."""
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
    return (
        sol,
        s_pred,
        dict(
            scenario=name,
            spectrum_error_max=np.abs(s_flow - s_pred).max() / scale,
            spectrum_error_end=np.abs(s_flow[-1] - s_pred[-1]).max() / scale,
            commutator_start=matrix.commutator_norm(sol.F[0], sol.Wp[0]),
            commutator_end=matrix.commutator_norm(sol.F[-1], sol.Wp[-1]),
            skew_end=skew[-1] / np.linalg.norm(sol.Wp[-1]),
            balance_error=np.abs(C - matrix.balance_prediction(C[0], h.eta, t)).max(),
        ),
    )


R = matrix.random_rotation(n, rng)
X_aniso = R @ np.diag(np.linspace(2.0, 0.3, n)) @ R.T  # eigenvalues 2 ... 0.3, random basis
W_rand = rng.normal(0.0, 0.3, (n, n))
A = rng.normal(0.0, 0.1, (n, n))
Wp_rand = 0.3 * np.eye(n) + (A + A.T) / 2
A = rng.normal(0.0, 0.1, (n, n))
skew = (A - A.T) / 2
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

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
for name, (sol, _, _) in results.items():
    axes[0].plot(t, matrix.commutator_norm(sol.F, sol.Wp) + 1e-18, label=name)
    skew_t = np.linalg.norm(sol.Wp - np.swapaxes(sol.Wp, 1, 2), axis=(1, 2))
    axes[1].plot(t, skew_t + 1e-18, label=name)
for ax in axes[:2]:
    ax.set(yscale="log", ylim=(1e-4, 2), xlabel="flow time $t$")
axes[0].set(ylabel=r"$\|[F, W_p]\|_F$", title="T6: commutator (aligned: ~1e-16)")
axes[1].set(ylabel=r"$\|W_p - W_p^\top\|_F$", title="[T] Fig. 8: skew part of $W_p$")
axes[0].legend(fontsize=7)
sol, s_pred, _ = results["non-isotropic X"]
axes[2].plot(t, matrix.spectrum(sol.F)[0], color="k", lw=1)
axes[2].plot(t, s_pred, color="tab:orange", ls="--", lw=1)
axes[2].set(
    xlabel="flow time $t$",
    ylabel="eigenvalues of $F$",
    title="non-isotropic X: flow (black) vs seeded T7 (dashed)",
)
fig.tight_layout()

# %% [markdown]
# ## T6: the alignment bound
#
# On the symmetrised flow **T5** (SimSiam, so $\tau\equiv1$ exactly), $L=[F,W_p]$ obeys
# $\dot L=-(LK+KL)$, hence $\|L(t)\|_F\le e^{-2\int_0^t\lambda_{\min}(K)}\|L(0)\|_F$ (which
# gives T6's $e^{-2\lambda_0t}$ when $\lambda_{\min}(K)\ge\lambda_0>0$). We integrate it from the
# unaligned start and check the ratio of the two sides stays $\le1$; then [T] Fig. 9 shows
# the commutator for several $\eta$ and EMA rates.

# %%
h_sym = Hyper(alpha_p=1.0, eta=0.05, sigma2=0.2)  # SimSiam
t_fine = np.linspace(0.0, t_end, 601)
sol = matrix.integrate(h_sym, W_rand, Wp_rand, None, t_fine, symmetric=True)
lam = matrix.lambda_min(matrix.alignment_operator(h_sym, sol.F, sol.Wp))
exponent = np.concatenate([[0.0], np.cumsum((lam[1:] + lam[:-1]) / 2 * np.diff(t_fine))])
L = matrix.commutator_norm(sol.F, sol.Wp)
bound = np.exp(-2 * exponent) * L[0]
t6_ratio = float(np.max(L / bound))
print(
    f"max_t ||L(t)|| / bound(t) = {t6_ratio:.6f} (T6: <= 1); "
    f"||L|| fell from {L[0]:.3g} to {L[-1]:.3g}"
)
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(t_fine, L, label=r"$\|[F, W_p]\|_F$")
ax.semilogy(t_fine, bound, "--", label=r"$e^{-2\int\lambda_{\min}(K)}\|L(0)\|_F$")
ax.set(xlabel="flow time $t$", title="T6 on the symmetrised flow T5")
ax.legend()
fig.tight_layout()

# %%
fig = t_fig9_commutator.draw(t_fig9_commutator.data(**(dict(n=5, points=81) if FAST else {})))

# %% [markdown]
# ## Summary
#
# The numbers `tests/test_notebooks.py` checks: the aligned start (so the test can rerun T7
# itself), the matrix flow's final per-mode values, the SGD errors, the scenario table.

# %%
final = dict(p=along(U, flow.Wp[-1]).tolist(), s=along(U, flow.F[-1]).tolist())
summary = dict(
    hyper=dict(alpha_p=h.alpha_p, beta=h.beta, eta=h.eta, sigma2=h.sigma2),
    p0=p0.tolist(),
    s0=s0.tolist(),
    t_end=t_end,
    final=final,
    reduction_error=reduction_error,
    sgd=sgd_table[["lr", "momentum", "s_error", "p_error"]].to_dict("records"),
    scenarios=break_table.to_dict("index"),
    t6_ratio=t6_ratio,
)
print(json.dumps(summary))
