# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Beyond BYOL: self-predictive RL and deep linear JEPA
#
# The mechanism of BYOL (a predictor and a stop-gradient target) also keeps two other
# families from collapsing, and both have closed-form linear dynamics
# (theory.md section 9):
#
# - self-predictive representation learning in RL ([S] Tang et al., ICML 2023; [K]
#   Khetarpal et al., AISTATS 2025): a representation $\Phi$ of the states predicts
#   its own next-state features $T\Phi$ (S1-S10);
# - deep linear self-distillation ([J] Littwin et al., NeurIPS 2024): JEPA against MAE
#   on features with covariance $\lambda_i$ and regression coefficient $\rho_i$ (J1-J4).

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np

from linear_ssl.diagnostics import subspace_distance
from linear_ssl.figures import j_jepa_critical_times, s_rl_subspace_distance
from linear_ssl.theory import jepa, rl

# %matplotlib inline
FAST = os.environ.get("LINEAR_SSL_NOTEBOOK_FAST", "0") == "1"  # tests: small settings
print("fast mode (tests)" if FAST else "full mode")

# %% [markdown]
# ## Self-predictive RL: no collapse, and spectral decomposition
#
# With the predictor at its optimum $P^* = (\Phi^\top\Phi)^{-1}\Phi^\top T\Phi$ (S1) and a
# stop-gradient target, $\dot\Phi = -(\Phi P^* - T\Phi)P^{*\top}$ (S2). $\Phi^\top\Phi$ is
# conserved exactly (S3): the representation cannot shrink to zero. For a symmetric
# PSD $T$ the flow finds the top-$k$ eigen-subspace, and $\|\Phi^\top T\Phi\|_F^2$ rises
# to the sum of the $k$ largest squared eigenvalues (S4, S5).

# %%
n, k, inits = (8, 2, 4) if FAST else (16, 3, 16)
T = rl.random_mdp(n, "symmetric_psd", seed=0)
Phi0 = np.linalg.qr(np.random.default_rng(0).normal(size=(inits, n, k)))[0]
t = np.concatenate([[0.0], np.geomspace(0.1, 1000.0 if FAST else 3000.0, 40)])
sol = rl.integrate(T, Phi0, t)
gram = np.swapaxes(sol.Phi, -1, -2) @ sol.Phi
gram_drift = float(np.abs(gram - np.eye(k)).max())
w, V = np.linalg.eigh(T)
top = V[:, np.argsort(-w)[:k]]
distance = np.array([[subspace_distance(P, top) for P in row] for row in sol.Phi])
trace = rl.trace_objective(T, sol.Phi)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].semilogx(t[1:], distance[1:], color="C0", alpha=0.6)
axes[0].set(xlabel="t", ylabel="distance to the top-k eigen-subspace (E7)", title="S5")
axes[1].semilogx(t[1:], trace[1:], color="C1", alpha=0.6)
axes[1].axhline(np.sum(np.sort(w)[::-1][:k] ** 2), color="k", ls="--", label="top-k sum")
axes[1].set(xlabel="t", ylabel=r"$\|\Phi^T T \Phi\|_F^2$", title="S4: it only rises")
axes[1].legend()
fig.tight_layout()
print(f"max |Phi^T Phi - I| along the flow: {gram_drift:.1e}")

# %% [markdown]
# ## Which spans are stable (S5)
#
# At an eigen-span, tilting an inside eigenvector ($\lambda$) towards an outside one
# ($\mu$) grows at rate $\lambda(\mu - \lambda)$. Stable: the $a$ largest positive and
# the $b$ most negative eigenvalues, $a + b = k$. An indefinite $T$ has up to $k+1$
# stable spans and the start decides which one the flow reaches.

# %%
T_ind = rl.symmetric_matrix([1.0, 0.8, 0.5, 0.3, 0.1, -0.2, -0.6, -0.9], seed=1)
w_ind, V_ind = np.linalg.eigh(T_ind)
spans = rl.stable_spans(w_ind, 2)
start = np.linalg.qr(np.random.default_rng(1).normal(size=(12 if FAST else 64, 8, 2)))[0]
end = rl.integrate(T_ind, start, [0.0, 400.0]).Phi[-1]
reached = [int(np.argmin([subspace_distance(P, V_ind[:, list(s)]) for s in spans])) for P in end]
for i, s in enumerate(spans):
    share = reached.count(i) / len(reached)
    print(f"span of eigenvalues {np.round(w_ind[list(s)], 2)}: reached from {share:.0%}")

# %% [markdown]
# ## Without the stop-gradient (S6), bidirectional (S7), action-conditional (S8-S9)
#
# Letting the gradient flow through the target makes $\Phi^\top\Phi$ shrink
# ($\frac{d}{dt}\Phi^\top\Phi = -2E^\top E$). Two representations that predict each
# other forwards and backwards find the singular subspaces of a non-symmetric $T$.
# With actions, BYOL-AC's objective is BYOL-$\pi$'s plus BYOL-VAR's, exactly (S9).

# %%
shrunk = rl.integrate(T, Phi0, [0.0, 50.0], "none", on_failure="ignore").Phi[-1]
norm_ratio = float(np.median(np.linalg.norm(shrunk, axis=(-2, -1)) / np.sqrt(k)))
Ts = np.stack([rl.random_mdp(n, "stochastic", seed=s) for s in range(3)])
pi = np.array([0.2, 0.3, 0.5])
obj = rl.action_objectives(Ts, pi, Phi0)
variance_identity_error = float(np.abs(obj["ac"] - obj["pi"] - obj["var"]).max())
print(f"no stop-gradient: ||Phi|| shrinks to {norm_ratio:.2f} of its start by t = 50")
print(f"S9 variance identity, max error: {variance_identity_error:.1e}")
fast_rl = dict(n=8, k=2, inits=3, t_end=300.0, points=12)
data_rl = s_rl_subspace_distance.data(**(fast_rl if FAST else {}))
s_rl_subspace_distance.draw(data_rl)
# %% [markdown]
# ## Deep linear JEPA against MAE (J2-J4)
#
# Per feature, with the encoder's layers at $a$ ($w = a^L$) and the head at $v$:
# JEPA $\dot a = \lambda v a^{2L-1}(\rho - v)$, MAE $\dot a = \lambda v a^{L-1}(\rho - v a^L)$.
# Below, $\lambda$ rises while $\rho$ falls: MAE and the one-layer JEPA learn the
# high-$\lambda$ feature first; the deep JEPA learns the high-$\rho$ feature first.

# %%
lam, rho = np.array([1.0, 1.3, 1.6, 1.9]), np.array([1.0, 0.85, 0.7, 0.6])
eps = 0.01
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
orders = {}
for ax, (objective, depth) in zip(axes, (("mae", 5), ("jepa", 1), ("jepa", 5)), strict=True):
    horizon = 1.5 * np.nanmax(jepa.critical_times(lam, rho, depth, eps, objective))
    tt = np.linspace(0.0, horizon, 1500)
    s = jepa.integrate(lam, rho, tt, depth, eps, objective)
    w_star, _ = jepa.fixed_point(lam, rho, depth, objective)
    for i in range(lam.size):
        ax.plot(tt, s.w[:, i] / w_star[i], label=rf"$\lambda$={lam[i]:g}, $\rho$={rho[i]:g}")
    crossing = jepa.crossing_times(s, 0.5 * w_star)
    orders[f"{objective}{depth}"] = np.argsort(crossing).tolist()
    ax.set(title=f"{objective.upper()}, L = {depth}", xlabel="t")
axes[0].set_ylabel("w / w*")
axes[0].legend()
fig.tight_layout()
print("learning order (feature indices):", orders)

# %% [markdown]
# The critical time has a closed form (J4) and, as the start $\epsilon \to 0$, tends to
# the divergent terms $\frac{1}{\lambda}\sum_{n=1}^{2L-1} \frac{1}{n\rho^{2L-n}\epsilon^{n/L}}$
# of [J]'s formula. The map: log critical time over $(\lambda, \rho)$.

# %%
t_exact = jepa.critical_times(lam, rho, 3, 1e-6)
t_asym = jepa.critical_times_asymptotic(lam, rho, 3, 1e-6)
asymptotic_ratio = (t_exact / t_asym).tolist()
print("t* / asymptotic form at eps = 1e-6, L = 3:", np.round(asymptotic_ratio, 4))
data_j = j_jepa_critical_times.data(**(dict(grid=6, points=300) if FAST else {}))
flow_vs_closed = max(
    float(np.nanmax(np.abs(data_j.t_flow[key] / data_j.t_exact[key] - 1))) for key in data_j.t_flow
)
j_jepa_critical_times.draw(data_j)
# %%
print(
    json.dumps(
        {
            "n": n,
            "k": k,
            "seed": 0,
            "gram_drift": gram_drift,
            "final_distance": float(distance[-1].max()),
            "final_trace": trace[-1].tolist(),
            "stable_spans": [list(s) for s in spans],
            "reached": sorted(set(reached)),
            "norm_ratio_no_stopgrad": norm_ratio,
            "variance_identity_error": variance_identity_error,
            "orders": orders,
            "asymptotic_ratio": asymptotic_ratio,
            "flow_vs_closed_form": flow_vs_closed,
        }
    )
)
