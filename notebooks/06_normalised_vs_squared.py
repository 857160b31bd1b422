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
# # 6. The squared error against the normalised loss the networks train with
#
# [T]'s flows (T1, T7) are for the squared error $\frac12\|W_pWx_1-W_ax_2\|^2$; every network
# trains with the normalised loss $2-2\cos(q, z_a)$. Under norm concentration (**A4**) its
# flows are **N1** (matrix) and **N2** (per mode, the modes coupled through two mean-field
# scalars $a(t), b(t)$), `linear_ssl.theory.normalised`. This notebook shows where the two
# pictures disagree, and lets minibatch SGD on the linear model (`theory.sgd`, the ground
# truth) settle it:
#
# 1. **T9's threshold**: past $\eta > 1/(4(1+\sigma^2))$ T7 collapses every mode. Under N2
#    $\sum_j s_j = e^{-2\eta t}\sum_j s_j(0)$ *exactly* (the trace identity
#    $\mathrm{tr}(W_p^\top\tilde G W^\top)=0$): weight decay shrinks every mode alike and the
#    shape $\hat s_j = s_j/\sum_k s_k$ does not collapse.
# 2. **SGD decides**: at the same $\eta$ the cosine-loss SGD keeps a finite norm (each step
#    of a scale-invariant weight grows its norm by $\|\text{step}\|^2$, which balances the
#    decay: "spherical motion") and its full effective dimension, while the squared-error
#    SGD collapses to zero.
# 3. **The basin**: a mode below T9's $p_-$ on the parabola collapses under T7; under N2 the
#    same mode keeps its share.

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np

from linear_ssl.diagnostics import participation_ratio
from linear_ssl.theory import Hyper, modes, normalised, sgd

# %matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")

# %% [markdown]
# ## 1. Past T9's threshold: T7 collapses every mode, N2 only shrinks the scale

# %%
h = Hyper(alpha_p=1.0, eta=0.3)  # SimSiam; threshold 1/4: every T7 mode collapses
p0 = np.array([0.2, 0.5, 0.8, 1.1])
s0 = np.array([0.3, 0.6, 0.4, 0.8])
t = np.linspace(0.0, 12.0, 121)  # N2 turns stiff later: its rates grow as e^(2 eta t)
t_sq = np.linspace(0.0, 40.0, 161)
squared = modes.integrate(h, p0, s0, t_sq)
cosine = normalised.integrate_modes(h, p0, s0, t)  # the four modes of one system
scale_drift = float(np.max(np.abs(cosine.s.sum(-1) / (s0.sum() * np.exp(-2 * h.eta * t)) - 1)))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for j in range(4):
    axes[0].semilogy(t_sq, squared.s[:, j], color=f"C{j}", label=f"mode {j}: T7 $s_j$")
    axes[0].semilogy(t, cosine.s[:, j], color=f"C{j}", ls="--")
    axes[1].plot(t, cosine.shape[:, j], color=f"C{j}", label=f"$p_j(0)$ = {p0[j]:g}")
axes[0].set(title="$s_j$: T7 (solid) and N2 (dashed)", xlabel="$t$")
axes[1].set(title=r"N2's shape $\hat s_j$ (no collapse)", xlabel="$t$")
axes[1].legend()
fig.tight_layout()
print(f"N2: sum_j s_j against e^(-2 eta t) sum_j s_j(0), max relative error {scale_drift:.1e}")

# %% [markdown]
# ## 2. SGD on the linear model settles it
#
# Eight dimensions, SimSiam, the same $\eta = 0.3$, $X' = 0.2 I$, 4 seeds: the norm of $W$ and
# the effective dimension (participation ratio of $F = WW^\top$) under each loss.

# %%
d = 8
rng = np.random.default_rng(0)
W0 = rng.normal(size=(d, d)) / np.sqrt(d)
Wp0 = np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)
steps = 5000  # flow time 100: a few seconds either way
runs = {
    loss: sgd.simulate(
        None,
        W0,
        Wp0,
        None,
        lr=0.02,
        steps=steps,
        batch=64,
        weight_decay=h.eta,
        loss=loss,
        seeds=4,
        record_every=steps // 10,
        Xp=0.2 * np.eye(d),
    )
    for loss in ("cosine", "squared")
}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
sgd_summary = {}
for loss, run in runs.items():
    norm = np.linalg.norm(run.W, axis=(2, 3)).mean(axis=1)
    pr = [np.mean([participation_ratio(W @ W.T) for W in Ws]) for Ws in run.W]
    axes[0].semilogy(run.t, norm, label=loss)
    axes[1].plot(run.t, pr, label=loss)
    sgd_summary[loss] = {"norm_ratio": float(norm[-1] / norm[0]), "d_eff": float(pr[-1])}
axes[0].set(title=r"$\|W\|_F$ (seed mean)", xlabel="flow time $t$")
axes[1].set(title="effective dimension of $F$", xlabel="flow time $t$")
axes[0].legend()
fig.tight_layout()
sgd_summary

# %% [markdown]
# ## 3. The collapse basin
#
# At $\eta = 0.1$ T9 gives $p_- \approx 0.113$: a mode started on the parabola below it
# collapses under T7. Under N2, coupled to a second mode, it keeps a finite share.

# %%
hb = Hyper(alpha_p=1.0, eta=0.1)
p_minus = float(modes.fixed_points(hb)[0])
p0b = np.array([0.8 * p_minus, 0.6])
s0b = p0b**2 / hb.alpha_p  # on T8's parabola
tb = np.linspace(0.0, 15.0, 151)
sq_b = modes.integrate(hb, p0b, s0b, tb)
nz_b = normalised.integrate_modes(hb, p0b, s0b, tb)
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(tb, sq_b.s[:, 0] / sq_b.s[:, 1], label="T7: $s_0/s_1$")
ax.semilogy(tb, nz_b.s[:, 0] / nz_b.s[:, 1], label="N2: $s_0/s_1$")
ax.set(xlabel="$t$", title="mode 0 from $p_0$ = 0.8 $p_-$ on the parabola")
ax.legend()
fig.tight_layout()

# %%
summary = dict(
    hyper=dict(alpha_p=h.alpha_p, eta=h.eta),
    p0=p0.tolist(),
    s0=s0.tolist(),
    t_end=float(t[-1]),
    t7_s_end=squared.s[-1].tolist(),
    n2_shape_end=cosine.shape[-1].tolist(),
    n2_scale_drift=scale_drift,
    sgd=sgd_summary,
    basin=dict(
        p_minus=p_minus,
        t7_ratio_end=float(sq_b.s[-1, 0] / sq_b.s[-1, 1]),
        n2_ratio_end=float(nz_b.s[-1, 0] / nz_b.s[-1, 1]),
    ),
)
print(json.dumps(summary))
