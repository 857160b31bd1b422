"""Self-predictive representation learning in RL as a flow (S1-S10 of theory.md section 9).

A linear representation Phi (n states x k features) predicts its own next-state features
through a predictor P: the loss is 1/2 ||Phi P - T Phi_target||_F^2 for a transition matrix
T (n x n; uniform state weights). With P at its optimum (S1) and a stop-gradient target,
Phi^T Phi is conserved (S3), ||Phi^T T Phi||_F^2 rises (S4) and, for a symmetric T, the
stable fixed points are spans of eigenvectors picked by S5's rates lambda (mu - lambda).

- `optimal_predictor`, `rhs`, `integrate`: S1, S2 (stop-gradient, EMA) and S6 (no
  stop-gradient: Phi^T Phi shrinks).
- `integrate_bidirectional`: S7, two representations recovering T's singular subspaces.
- `integrate_actions`, `action_objectives`: S8-S9 (BYOL-Pi, BYOL-AC, BYOL-VAR, and the
  variance identity relating them).
- `trace_objective`, `trace_objective_rate`, `eigen_span_rates`, `stable_spans`: S4, S5.
- `random_mdp`, `symmetric_matrix`, `stationary`: transition matrices for tests and figures.

Every integrator solves a batch of initialisations (a leading axis on Phi0) at once, one
column per initialisation of `solvers.rk45_batched`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from linear_ssl.theory.solvers import (
    DEFAULT_MAX_STEPS,
    OnFailure,
    Solution,
    check_on_failure,
    rk45_batched,
)

Target = Literal["stopgrad", "ema", "none"]
Objective = Literal["pi", "ac", "var"]
MDPKind = Literal["symmetric", "symmetric_psd", "stochastic", "reversible"]

__all__ = [
    "ActionSolution",
    "BidirectionalSolution",
    "RLSolution",
    "action_objectives",
    "action_rhs",
    "eigen_span_rates",
    "integrate",
    "integrate_actions",
    "integrate_bidirectional",
    "optimal_predictor",
    "random_mdp",
    "rhs",
    "stable_spans",
    "stationary",
    "symmetric_matrix",
    "trace_objective",
    "trace_objective_rate",
]


# --------------------------------------------------------------------------- input checks


def _square(name: str, value) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite entries (nan or inf): pass finite values")
    return a


def _representation(name: str, value, n: int) -> np.ndarray:
    """(B, n, k) float array from (n, k) or (B, n, k), full column rank, else a ValueError."""
    a = np.asarray(value, dtype=float)
    if a.ndim not in (2, 3) or a.shape[-2] != n:
        raise ValueError(
            f"{name} has shape {a.shape}: it must be ({n}, k) or (batch, {n}, k) for an "
            f"({n}, {n}) transition matrix"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite entries (nan or inf): pass finite values")
    a3 = a.reshape(-1, *a.shape[-2:])
    if a.shape[-1] > n or np.any(np.linalg.matrix_rank(a3) < a.shape[-1]):
        raise ValueError(f"{name} must have full column rank (k <= n independent columns)")
    return a3


def _stack_shape(value) -> tuple[int, ...]:
    """The batch shape the caller gave: () for (n, k), (B,) for (B, n, k)."""
    return np.shape(value)[:-2]


# --------------------------------------------------------------------------- S1-S6


def _solve_predictor(Phi: np.ndarray, T_target: np.ndarray) -> np.ndarray:
    """S1's normal equations: (Phi^T Phi)^-1 Phi^T (T Phi_target), over leading axes."""
    Phi_t = np.swapaxes(Phi, -1, -2)
    return np.linalg.solve(Phi_t @ Phi, Phi_t @ T_target)


def optimal_predictor(T: ArrayLike, Phi: ArrayLike, target: ArrayLike | None = None):
    """S1: P* = (Phi^T Phi)^-1 Phi^T T Phi_target, the minimiser of ||Phi P - T Phi_target||.

    Phi (..., n, k); target: the target representation (None: Phi itself). Broadcasts.
    """
    Phi = np.asarray(Phi, dtype=float)
    target = Phi if target is None else np.asarray(target, dtype=float)
    return _solve_predictor(Phi, np.asarray(T, dtype=float) @ target)


def _prediction_flow(T, Phi, target):
    """S2's -(Phi P - T target) P^T at P = P* (S1), with the residual E = Phi P - T target."""
    T_target = T @ target
    P = _solve_predictor(Phi, T_target)
    E = Phi @ P - T_target
    return -E @ np.swapaxes(P, -1, -2), E


def rhs(T: ArrayLike, Phi: ArrayLike, target: Target = "stopgrad", Phi_target=None):
    """dPhi/dt at the optimal predictor (S2; S6 for target="none"), broadcast over leading axes.

    "stopgrad": -(Phi P* - T Phi) P*^T; "ema": the same towards Phi_target (S2's EMA
    variant; its own dPhi_target/dt = beta (Phi - Phi_target) is `integrate`'s business);
    "none": the gradient flows through the target too, S6: + T^T (Phi P* - T Phi).
    """
    T = np.asarray(T, dtype=float)
    Phi = np.asarray(Phi, dtype=float)
    if target == "ema":
        if Phi_target is None:
            raise ValueError('target="ema" needs Phi_target, the EMA target representation')
        return _prediction_flow(T, Phi, np.asarray(Phi_target, dtype=float))[0]
    if Phi_target is not None:
        raise ValueError(f'Phi_target is only used with target="ema", not target={target!r}')
    dPhi, E = _prediction_flow(T, Phi, Phi)
    if target == "none":
        return dPhi + np.swapaxes(T, -1, -2) @ E
    if target != "stopgrad":
        raise ValueError(f"target={target!r} is invalid: use 'stopgrad', 'ema' or 'none'")
    return dPhi


def trace_objective(T: ArrayLike, Phi: ArrayLike, Psi: ArrayLike | None = None) -> np.ndarray:
    """S4: ||Phi^T T Phi||_F^2 (S7: ||Phi^T T Psi||_F^2 when Psi is given), over leading axes."""
    Phi = np.asarray(Phi, dtype=float)
    Psi = Phi if Psi is None else np.asarray(Psi, dtype=float)
    M = np.swapaxes(Phi, -1, -2) @ np.asarray(T, dtype=float) @ Psi
    return np.sum(M**2, axis=(-2, -1))


def trace_objective_rate(T: ArrayLike, Phi: ArrayLike) -> np.ndarray:
    """S4: d/dt ||Phi^T T Phi||_F^2 = 4 tr(G^-1 M B M) >= 0 under S2, for a symmetric T.

    G = Phi^T Phi, M = Phi^T T Phi, B = (T Phi)^T (I - Pi) T Phi with Pi the orthogonal
    projection onto span(Phi). A closed form (derived here) to test against the flow.
    """
    T = np.asarray(T, dtype=float)
    Phi = np.asarray(Phi, dtype=float)
    Phi_t = np.swapaxes(Phi, -1, -2)
    G, TPhi = Phi_t @ Phi, T @ Phi
    M = Phi_t @ TPhi
    residual = TPhi - Phi @ _solve_predictor(Phi, TPhi)  # (I - Pi) T Phi = -(S1's residual)
    B = np.swapaxes(residual, -1, -2) @ residual
    return 4.0 * np.trace(np.linalg.solve(G, M @ B @ M), axis1=-2, axis2=-1)


def eigen_span_rates(eigvals: ArrayLike, span: Sequence[int]) -> np.ndarray:
    """S5: growth rates lambda_i (mu_j - lambda_i) of the perturbations of an eigen-span.

    eigvals: the eigenvalues of a symmetric T; span: the indices i of the k eigenvectors
    spanning the fixed point. Entry (i, j) is the rate at which a tilt of eigenvector
    span[i] towards an outside eigenvector j grows (j over the indices not in span, in
    order). The span is linearly stable when every rate is negative.
    """
    lam = np.asarray(eigvals, dtype=float)
    inside = np.asarray(span, dtype=int)
    outside = np.setdiff1d(np.arange(lam.size), inside)
    li = lam[inside][:, None]
    return li * (lam[outside][None, :] - li)


def stable_spans(eigvals: ArrayLike, k: int) -> list[tuple[int, ...]]:
    """S5: the index sets of k eigenvectors whose span is a linearly stable fixed point.

    For a symmetric T these are the a largest eigenvalues (all > 0) with the b most
    negative (all < 0), a + b = k: at most k + 1 sets, one (the top k) for a PSD T.
    Returned as sorted index tuples into `eigvals`, in lexicographic order.
    """
    lam = np.asarray(eigvals, dtype=float)
    order = np.argsort(-lam)  # descending
    spans = []
    for a in range(k + 1):
        idx = tuple(sorted(order[:a].tolist() + order[lam.size - (k - a) :].tolist()))
        if len(set(idx)) == k and np.all(eigen_span_rates(lam, idx) < 0):
            spans.append(idx)
    return sorted(spans)


# --------------------------------------------------------------------------- solutions


@dataclass(frozen=True)
class RLSolution(Solution):
    """`integrate`'s result: Phi (len(t), *B, n, k); Phi_target likewise for target="ema".

    ok: (*B) False where a trajectory blew up or exceeded its step budget (nan from
    then on); message: "" when all ok; stats: "nfev", "n_steps" (*B).
    """

    Phi: np.ndarray
    Phi_target: np.ndarray | None


@dataclass(frozen=True)
class BidirectionalSolution(Solution):
    """`integrate_bidirectional`'s result: Phi and Psi, each (len(t), *B, n, k)."""

    Phi: np.ndarray
    Psi: np.ndarray


@dataclass(frozen=True)
class ActionSolution(Solution):
    """`integrate_actions`' result: Phi (len(t), *B, n, k) under BYOL-Pi, -AC or -VAR."""

    Phi: np.ndarray
    objective: str


# --------------------------------------------------------------------------- the solver


def _solve(
    flow: Callable[..., tuple[np.ndarray, ...]],
    init: tuple[np.ndarray, ...],
    t,
    *,
    rtol: float,
    atol: float,
    max_steps: int | None,
    on_failure: OnFailure,
    name: str,
    batch_shape: tuple[int, ...],
):
    """Integrate flow(*states) -> derivatives, states (B, n, k) each, one column per batch.

    Returns (states, each (len(t), *batch_shape, n, k); ok (*batch_shape); message; stats).
    """
    check_on_failure(on_failure)
    B, n, k = init[0].shape
    size = n * k
    y0 = np.concatenate([s.reshape(B, size).T for s in init])

    def fun(y: np.ndarray, out: np.ndarray) -> np.ndarray:
        m = y.shape[1]
        states = [y[i * size : (i + 1) * size].T.reshape(m, n, k) for i in range(len(init))]
        for i, d in enumerate(flow(*states)):
            out[i * size : (i + 1) * size] = d.reshape(m, size).T
        return out

    res = rk45_batched(fun, y0, t, rtol=rtol, atol=atol, max_steps=max_steps)
    states = tuple(
        np.moveaxis(res.y[:, i * size : (i + 1) * size], 2, 1).reshape(
            len(res.y), *batch_shape, n, k
        )
        for i in range(len(init))
    )
    return (states, *res.outcome(batch_shape, name, on_failure, stacklevel=5))


def integrate(
    T: ArrayLike,
    Phi0: ArrayLike,
    t: ArrayLike,
    target: Target = "stopgrad",
    beta: float | None = None,
    *,
    Phi_target0: ArrayLike | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> RLSolution:
    """S2 / S6: the flow of Phi under T with the predictor at its optimum (S1).

    target="stopgrad": S2 with Phi_target = Phi (Tang et al.'s semi-gradient flow);
    "ema": S2 with dPhi_target/dt = beta (Phi - Phi_target), Phi_target(0) = Phi_target0
    (default Phi0); "none": S6, the gradient also through the target (it shrinks).
    T (n, n); Phi0 (n, k) or (B, n, k), full column rank; t 1-D from 0.
    """
    T = _square("T", T)
    Phi = _representation("Phi0", Phi0, T.shape[0])
    shape = _stack_shape(Phi0)
    if target not in ("stopgrad", "ema", "none"):
        raise ValueError(f"target={target!r} is invalid: use 'stopgrad', 'ema' or 'none'")
    if target == "ema":
        if beta is None or not np.isfinite(beta) or beta <= 0:
            raise ValueError(f'target="ema" needs an EMA rate beta > 0, got beta={beta!r}')
        tgt = (
            Phi if Phi_target0 is None else _representation("Phi_target0", Phi_target0, T.shape[0])
        )
        if tgt.shape != Phi.shape:
            raise ValueError(f"Phi_target0 has shape {np.shape(Phi_target0)}: it must match Phi0")

        def flow(P, Q):
            return rhs(T, P, "ema", Q), beta * (P - Q)

        init = (Phi, tgt)
    else:
        if beta is not None or Phi_target0 is not None:
            raise ValueError(
                f'beta and Phi_target0 are only used with target="ema", not {target!r}'
            )

        def flow(P):
            return (rhs(T, P, target),)

        init = (Phi,)
    states, ok, message, stats = _solve(
        flow,
        init,
        t,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        on_failure=on_failure,
        name=f"rl.integrate(target={target!r})",
        batch_shape=shape,
    )
    return RLSolution(
        t=np.asarray(t, dtype=float),
        Phi=states[0],
        Phi_target=states[1] if target == "ema" else None,
        ok=ok,
        message=message,
        stats=stats,
    )


def integrate_bidirectional(
    T: ArrayLike,
    Phi0: ArrayLike,
    Psi0: ArrayLike,
    t: ArrayLike,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> BidirectionalSolution:
    """S7: Phi predicts T Psi and Psi predicts T^T Phi, both with stop-gradient targets.

    dPhi/dt = -(Phi P1 - T Psi) P1^T, dPsi/dt = -(Psi P2 - T^T Phi) P2^T at the optimal
    P1, P2 (S1). Phi0, Psi0: (n, k) or (B, n, k) of one shape; T (n, n), any.
    """
    T = _square("T", T)
    Phi = _representation("Phi0", Phi0, T.shape[0])
    Psi = _representation("Psi0", Psi0, T.shape[0])
    if Phi.shape != Psi.shape:
        raise ValueError(f"Phi0 {np.shape(Phi0)} and Psi0 {np.shape(Psi0)} must have one shape")
    Tt = T.T.copy()

    def flow(P, Q):
        return _prediction_flow(T, P, Q)[0], _prediction_flow(Tt, Q, P)[0]

    states, ok, message, stats = _solve(
        flow,
        (Phi, Psi),
        t,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        on_failure=on_failure,
        name="rl.integrate_bidirectional",
        batch_shape=_stack_shape(Phi0),
    )
    return BidirectionalSolution(
        t=np.asarray(t, float), Phi=states[0], Psi=states[1], ok=ok, message=message, stats=stats
    )


# --------------------------------------------------------------------------- S8-S9


def _actions(Ts, pi) -> tuple[np.ndarray, np.ndarray]:
    Ts = np.asarray(Ts, dtype=float)
    if Ts.ndim != 3 or Ts.shape[1] != Ts.shape[2]:
        raise ValueError(f"Ts has shape {Ts.shape}: it must be (n_actions, n, n)")
    pi = np.asarray(pi, dtype=float)
    if pi.shape != (Ts.shape[0],) or np.any(pi < 0) or not np.isclose(pi.sum(), 1.0):
        raise ValueError(
            f"pi must be a probability vector over the {Ts.shape[0]} actions (>= 0, sum 1)"
        )
    return Ts, pi


def action_rhs(Ts: ArrayLike, pi: ArrayLike, Phi: ArrayLike, objective: Objective = "ac"):
    """S8: dPhi/dt of BYOL-Pi, BYOL-AC or BYOL-VAR at the optimal predictors (S1).

    Ts (A, n, n): one transition matrix per action; pi (A,): a state-independent policy;
    T_pi = sum_a pi_a T_a, P_a = P*(T_a), P_pi = P*(T_pi) = sum_a pi_a P_a.
    "pi": S2 on T_pi; "ac": -sum_a pi_a (Phi P_a - T_a Phi) P_a^T;
    "var": -sum_a pi_a (Phi (P_a - P_pi) - (T_a - T_pi) Phi) (P_a - P_pi)^T.
    """
    Ts, pi = _actions(Ts, pi)
    Phi = np.asarray(Phi, dtype=float)
    T_pi = np.tensordot(pi, Ts, axes=1)
    if objective == "pi":
        return _prediction_flow(T_pi, Phi, Phi)[0]
    if objective not in ("ac", "var"):
        raise ValueError(f"objective={objective!r} is invalid: use 'pi', 'ac' or 'var'")
    stacked = Phi[..., None, :, :]  # (..., 1, n, k) against Ts (A, n, n)
    T_act = Ts - T_pi if objective == "var" else Ts
    flows = _prediction_flow(T_act, stacked, stacked)[0]  # (..., A, n, k)
    return np.einsum("...anj,a->...nj", flows, pi)


def action_objectives(Ts: ArrayLike, pi: ArrayLike, Phi: ArrayLike) -> dict[str, np.ndarray]:
    """S9: the trace objectives of BYOL-Pi, -AC and -VAR at Phi (orthonormal for [K]'s form).

    pi: ||Phi^T T_pi Phi||^2; ac: sum_a pi_a ||Phi^T T_a Phi||^2;
    var: sum_a pi_a ||Phi^T (T_a - T_pi) Phi||^2. The variance identity: ac = pi + var.
    """
    Ts, pi = _actions(Ts, pi)
    Phi = np.asarray(Phi, dtype=float)
    T_pi = np.tensordot(pi, Ts, axes=1)
    per_action = trace_objective(Ts, Phi[..., None, :, :])
    per_deviation = trace_objective(Ts - T_pi, Phi[..., None, :, :])
    return {
        "pi": trace_objective(T_pi, Phi),
        "ac": per_action @ pi,
        "var": per_deviation @ pi,
    }


def integrate_actions(
    Ts: ArrayLike,
    pi: ArrayLike,
    Phi0: ArrayLike,
    t: ArrayLike,
    objective: Objective = "ac",
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    on_failure: OnFailure = "warn",
) -> ActionSolution:
    """S8: integrate BYOL-Pi ("pi"), BYOL-AC ("ac") or BYOL-VAR ("var") from Phi0.

    Ts (A, n, n), pi (A,) a state-independent policy; Phi0 (n, k) or (B, n, k).
    """
    Ts, pi = _actions(Ts, pi)
    Phi = _representation("Phi0", Phi0, Ts.shape[1])
    if objective not in ("pi", "ac", "var"):
        raise ValueError(f"objective={objective!r} is invalid: use 'pi', 'ac' or 'var'")
    states, ok, message, stats = _solve(
        lambda P: (action_rhs(Ts, pi, P, objective),),
        (Phi,),
        t,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        on_failure=on_failure,
        name=f"rl.integrate_actions(objective={objective!r})",
        batch_shape=_stack_shape(Phi0),
    )
    return ActionSolution(
        t=np.asarray(t, float), Phi=states[0], objective=objective, ok=ok, message=message,
        stats=stats,
    )  # fmt: skip


# --------------------------------------------------------------------------- generators


def symmetric_matrix(eigvals: ArrayLike, seed: int = 0) -> np.ndarray:
    """A symmetric T = Q diag(eigvals) Q^T with a Haar-random orthogonal Q (for S5).

    Q is the QR factor of a Gaussian matrix with R's diagonal made positive (Haar; not
    scipy.stats.ortho_group, whose import probes for torch: theory/ must import without it).
    """
    lam = np.asarray(eigvals, dtype=float)
    if lam.ndim != 1 or lam.size < 2:
        raise ValueError("eigvals must be a 1-D array of at least 2 eigenvalues")
    Q, R = np.linalg.qr(np.random.default_rng(seed).normal(size=(lam.size, lam.size)))
    Q = Q * np.sign(np.diag(R))
    T = (Q * lam) @ Q.T
    return (T + T.T) / 2


def random_mdp(n: int, kind: MDPKind = "stochastic", seed: int = 0) -> np.ndarray:
    """A random transition matrix over n states.

    "symmetric": a symmetric doubly stochastic chain (Metropolis weights on a random
    graph), eigenvalues in [-1, 1], in general indefinite; "symmetric_psd": its lazy
    version (I + T) / 2, eigenvalues in [0, 1]; "stochastic": rows drawn from a flat
    Dirichlet (not symmetric); "reversible": D^-1 W for a random symmetric W > 0,
    reversible w.r.t. `stationary(T)` and similar to a symmetric matrix.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r} is invalid: give an integer number of states >= 2")
    rng = np.random.default_rng(seed)
    if kind == "stochastic":
        return rng.dirichlet(np.ones(n), size=n)
    W = rng.random((n, n))
    W = (W + W.T) / 2
    if kind == "reversible":
        return W / W.sum(axis=1, keepdims=True)
    if kind not in ("symmetric", "symmetric_psd"):
        raise ValueError(
            f"kind={kind!r} is invalid: use 'symmetric', 'symmetric_psd', 'stochastic' or "
            "'reversible'"
        )
    np.fill_diagonal(W, 0.0)
    T = W / W.sum(axis=1).max()
    T += np.diag(1.0 - T.sum(axis=1))
    return (np.eye(n) + T) / 2 if kind == "symmetric_psd" else T


def stationary(T: ArrayLike) -> np.ndarray:
    """The stationary distribution d of a row-stochastic T (d^T T = d^T, sum d = 1)."""
    T = _square("T", T)
    vals, vecs = np.linalg.eig(T.T)
    d = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return d / d.sum()
