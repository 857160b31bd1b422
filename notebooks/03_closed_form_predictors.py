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
# # 3. Closed-form predictors and the edge of orthogonality
#
# DirectPred [T], DirectSet / DirectCopy [W] and the predictors of "The Edge of
# Orthogonality" [E] do not train $W_p$: they set it, every step, from running estimates of
# $\hat F=C_{oo}=\mathbb E[ff^\top]$ and $C_{to}=\mathbb E[f_af^\top]$ (theory.md **R1-R9**).
# `linear_ssl.predictors` implements each rule once, for NumPy and torch; `get_rule(name,
# **params)` configures one; `matrix.integrate(..., predictor=name)` runs the linear model
# with $W_p$ set by the rule at every instant from the exact $C_{oo}=W(X+X')W^\top$ and
# $C_{to}=W_aXW^\top$, while $W$ and $W_a$ follow **T1**.
#
# This notebook: (1) the rules on one matrix: which power of $\Sigma$ each computes and how
# fast the iterations converge (R5-R7); (2) the linear model under each rule: which modes of
# $F$ each keeps alive, with and without the ridge (R9); (3) the orthogonality diagnostics
# **E1-E5** of the resulting predictors, and [E]'s Fig. 2 analogue: E3 / E5 of the optimal
# linear predictor (R3, LRP) against the EMA rate.
#
# Full mode takes about 35 s on an idle 2-core CPU (measured; 20 s of it the eleven rule
# flows of section 2); `LINEAR_SSL_NOTEBOOK_FAST=1` shortens horizons and sweeps (the tests).

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from linear_ssl import diagnostics, predictors
from linear_ssl.figures import e_fig2_polar_distance
from linear_ssl.theory import Hyper, matrix

# %matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")

# %% [markdown]
# ## 1. The rules on one matrix
#
# A symmetric positive definite $\Sigma$ with eigenvalues from 1 down to 0.01. In exact
# arithmetic DirectPred's "paper" variant is $\Sigma^{1/2}$ plus a ridge, Newton-Schulz (R6)
# and Visser (R5) converge to $\Sigma^{1/2}$, NS$^2$ (R7) to $\Sigma^{1/4}$, DirectCopy (R2,
# $\alpha=1$) is $\Sigma/\|\Sigma\|$, and Stiefel (R8) is the orthogonal polar factor
# (the identity for a symmetric PD $\Sigma$). Errors are relative, in the spectral norm, against
# the eigendecomposition. Newton-Schulz converges quadratically once started; Visser's fixed
# step $h$ makes it slow on an ill-conditioned $\Sigma$ (hence [E]'s "several dozen" steps).

# %%
rng = np.random.default_rng(0)


def power(S, a):
    """S^a for symmetric PSD S, by eigh (the reference)."""
    lam, V = np.linalg.eigh(S)
    return (V * np.clip(lam, 0, None) ** a) @ V.T


def rel(A, B):
    return np.linalg.norm(A - B, 2) / np.linalg.norm(B, 2)


m = 8
R = matrix.random_rotation(m, rng)
Sigma = R @ np.diag(np.geomspace(1.0, 0.01, m)) @ R.T
root, quarter = power(Sigma, 0.5), power(Sigma, 0.25)
iterations = np.arange(1, 31 if FAST else 61)
errors = pd.DataFrame(
    {
        "newton_schulz -> S^1/2 (R6)": [
            rel(predictors.newton_schulz(Sigma, n=int(k))[0], root) for k in iterations
        ],
        "visser -> S^1/2 (R5)": [rel(predictors.visser(Sigma, n=int(k)), root) for k in iterations],
        "ns2 -> S^1/4 (R7)": [rel(predictors.ns2(Sigma, n=int(k)), quarter) for k in iterations],
    },
    index=iterations,
)
ax = errors.plot(
    logy=True,
    figsize=(5.5, 3.3),
    xlabel="iterations n",
    ylabel="relative error (spectral)",
    title="R5-R7 on one SPD matrix",
)
ax.axvline(9, color="0.6", ls=":")  # [E]'s n = 9 (NS) and 7 (NS^2)
errors.loc[[7, 9, 30]]

# %% [markdown]
# ## 2. The linear model under each rule
#
# BYOL on the linear model (T1) with non-isotropic data: $X$ has eigenvalues 2 ... 0.2 and
# the augmentation covariance $X'$ 0.5 ... 0.05, in unrelated random bases, so no rule's
# $W_p$ simply commutes with $F$. Every run starts from the same $W(0)=W_a(0)$; "trained" is
# the ordinary flow with $W_p$ integrated (T1). A mode of $F=WXW^\top$ counts as alive when
# its eigenvalue is at least 1% of the largest at the end.
#
# Scale and shape. The rules are scale-free by design: they were built for the *normalised*
# loss of the networks ($-2\cos$), where only the directions of $F$ matter. Under T1's plain
# squared loss the overall scale of $F$ is free to drift: DirectPred's $p_{\max}=1+\epsilon$
# exceeds the $p_+\approx\tau/(1+\sigma^2)$ at which a mode holds still (T9), so the whole of
# $F$ shrinks while its shape settles. The table therefore reports both: `scale`, the largest
# eigenvalue of $F$ at the end over that at the start, and the shape, $s_j$ relative to the
# largest.

# %%
n1 = n2 = 8
Q = matrix.random_rotation(n1, rng)
X = Q @ np.diag(np.linspace(2.0, 0.2, n1)) @ Q.T
Q = matrix.random_rotation(n1, rng)  # an unrelated basis
Xp = Q @ np.diag(np.linspace(0.5, 0.05, n1)) @ Q.T
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
    rows.append(
        dict(
            rule=label,
            scale=spectrum[-1, 0] / spectrum[0, 0],
            alive=int(np.sum(final >= 1e-2)),
            **{f"s{j + 1}": final[j] for j in range(n2)},
        )
    )
alive_table = pd.DataFrame(rows).set_index("rule")
alive_table.style.format("{:.3g}")

# %%
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
fig.suptitle(
    f"Linear BYOL (T1), non-isotropic X, X': the spectrum of F under each "
    f"predictor ($\\beta$ = {h.beta:g}, $\\eta$ = {h.eta:g})"
)
fig.tight_layout()

# %% [markdown]
# Reading the table: the eigen-based rules with a ridge (DirectPred, DirectCopy with
# $\epsilon=0.1$) keep every mode; without it DirectCopy loses the weakest ones ([E] reports
# DirectCopy needs the ridge tuned precisely); Stiefel (a polar factor, all singular values 1)
# lets one direction dominate; and the optimal predictor LRP (R3) freezes the shape of $F$
# while its scale decays as $e^{-2\eta t}$: with a square invertible $W$ and $W_a(0)=W(0)$,
# $W_p=C_{to}C_{oo}^{-1}$ fits the target exactly (T1's residual $E=0$), so no gradient reaches
# $W$ and it feels nothing but weight decay, the linear-model face of [T] Table 1's failed
# plug-in optimum. A sweep of the ridge (R9) on the bare
# Newton-Schulz rule: too little and the weakest modes die, too much and $W_p\approx\alpha I$
# no longer tells the modes apart.

# %%
ridges = (0.0, 0.15, 0.3, 0.6) if FAST else (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
sweep = []
for alpha in ridges:
    sol = matrix.integrate(h, W0, None, W0, t, X=X, Xp=Xp, predictor="newton_schulz", ridge=alpha)
    final = matrix.spectrum(sol.F[-1])[0]
    final = final / final[0]
    sweep.append(
        dict(
            ridge=alpha,
            alive=int(np.sum(final >= 1e-2)),
            weakest=final[-1],
            participation=diagnostics.participation_ratio(sol.F[-1]),
        )
    )
pd.DataFrame(sweep)

# %% [markdown]
# ## 3. The edge of orthogonality (E1-E5)
#
# [E]'s reading: a good predictor is close to an orthogonal projection. For the final $W_p$
# of each run: E1 quasi-projection $\|P^2-P\|_2$, E2 quasi-symmetry $\|P^\top-P\|_2$, E3
# quasi-orthogonal projection $\|PP^\top-P\|_2$ (after scaling $P$ to spectral radius 1),
# E4 stable rank, E5 distance to the polar factor. The last column checks the exact
# inequality behind [E]'s "an $\epsilon$-symmetric $\epsilon$-projection is a
# $2\epsilon$-quasi-orthogonal projection": $E3\le E1+\|P\|_2E2$ (theory.md section 4).

# %%
edge_rows = []
for label, sol in flows.items():
    e = diagnostics.edge_of_orthogonality(sol.Wp[-1])
    bound = e["quasi_projection"] + e["norm"] * e["quasi_symmetry"]
    edge_rows.append(
        dict(
            rule=label,
            E1=e["quasi_projection"],
            E2=e["quasi_symmetry"],
            E3=e["quasi_orthogonality"],
            norm=e["norm"],
            stable_rank=e["stable_rank"],
            E5=e["polar_distance"],
            E3_le_bound=bool(e["quasi_orthogonality"] <= bound + 1e-12),
        )
    )
edge_table = pd.DataFrame(edge_rows).set_index("rule")
edge_table.round(4)

# %% [markdown]
# ## E3 / E5 of the optimal predictor against the EMA rate ([E] Fig. 2 analogue)
#
# `figures.e_fig2_polar_distance.data` runs the trained flow (T1) for several EMA rates $\beta$ and
# measures, at a few times, E5 and E3 of the LRP predictor (R3) built from the exact
# $C_{oo}$, $C_{to}$ and of the trained $W_p$. [E] finds the predictor drifts away from
# orthogonality as the EMA loosens (small $\beta$: the target lags further behind); the
# table gives the medians on this small linear model, where the trend is mild.

# %%
polar = e_fig2_polar_distance.data(**(dict(betas=(0.03, 0.3, 3.0), runs=2) if FAST else {}))
fig = e_fig2_polar_distance.draw(polar)
polar.table.groupby(["predictor", "t", "beta"]).polar_distance.median().unstack("beta").round(3)

# %% [markdown]
# ## Summary
#
# The final state of the DirectPred run (so the test can apply R1 to it itself), the tables.

# %%
dp = flows["directpred eps=0.1 (R1)"]
summary = dict(
    W=dp.W[-1].tolist(),
    Wa=dp.Wa[-1].tolist(),
    Wp=dp.Wp[-1].tolist(),
    X=X.tolist(),
    Xp=Xp.tolist(),
    eps=0.1,
    alive=alive_table["alive"].to_dict(),
    edge=edge_table.drop(columns="E3_le_bound").to_dict("index"),
    ns_error_n9=float(errors.iloc[8, 0]),
    eta=h.eta,
    t_end=float(t[-1]),
    lrp_scale=float(alive_table.loc["lrp (R3)", "scale"]),
)
print(json.dumps(summary))
