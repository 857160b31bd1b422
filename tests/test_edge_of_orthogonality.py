"""[E]'s edge of orthogonality and [T] Table 1 on the linear model (T1, R3, E1-E5).

Trajectories come from ``linear_ssl.theory.matrix.integrate`` with non-isotropic X and X'.
The optimal predictor of a state is R3's LRP with the state's exact correlations,
C_oo = W (X + X') W^T and C_to = Wa X W^T.
"""

from __future__ import annotations

import numpy as np
import pytest

from linear_ssl import diagnostics as D
from linear_ssl import predictors as P
from linear_ssl.theory import Hyper, matrix

N1, N2 = 6, 4
X = np.diag(np.linspace(1.0, 0.3, N1))
XP = np.diag(np.linspace(0.05, 0.3, N1))  # augmentation noise, strongest where X is weakest


def _init(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(N2, N1)) / np.sqrt(N1)
    return W0, 0.5 * np.eye(N2) + 0.1 * rng.normal(size=(N2, N2))


def _trajectory(seed: int, beta: float | None, t, Xp=XP, eta: float = 0.01):
    W0, Wp0 = _init(seed)
    h = Hyper(alpha_p=1.0, beta=beta, eta=eta)
    Wa0 = None if beta is None else W0.copy()
    return matrix.integrate(h, W0, Wp0, Wa0, t, X=X, Xp=Xp, rtol=1e-6, atol=1e-9)


def _optimal(sol, k: int, Xp=XP) -> np.ndarray:
    W, Wa = sol.W[k], sol.Wa[k]
    return P.lrp(W @ (X + Xp) @ W.T, Wa @ X @ W.T)


@pytest.mark.parametrize("beta", [0.1, 3.0])
def test_optimal_predictor_obeys_the_E3_bound_along_trajectories_E1_E3(beta):
    """At every time: E3 <= E1 + ||Q||_2 E2 for the LRP of the state (and the trained Wp)."""
    sol = _trajectory(0, beta, np.linspace(0.0, 100.0, 11))
    for k in range(len(sol.t)):
        for M in (_optimal(sol, k), sol.Wp[k]):
            e = D.edge_of_orthogonality(M)
            bound = e["quasi_projection"] + e["norm"] * e["quasi_symmetry"]
            assert e["quasi_orthogonality"] <= bound + 1e-12


def test_optimal_predictor_is_the_identity_without_augmentation_R3_E3():
    """Wa = W (SimSiam) and X' = 0: C_to = C_oo, so the optimum is I, an orthogonal
    projection (E1 = E2 = E3 = 0) at every time."""
    zero = np.zeros((N1, N1))
    sol = _trajectory(0, None, np.linspace(0.0, 50.0, 6), Xp=zero)
    for k in range(len(sol.t)):
        e = D.edge_of_orthogonality(_optimal(sol, k, Xp=zero))
        assert max(e["quasi_projection"], e["quasi_symmetry"], e["quasi_orthogonality"]) < 1e-10


def test_tight_ema_optimum_is_nearly_orthogonal_and_its_gap_scales_with_augmentation_E3():
    """Converged with a tight EMA (Wa -> W): E3 of the optimum is set by X'; weak
    augmentation (X'/10) makes it small and shrinks it several-fold."""
    t = np.array([0.0, 400.0])
    strong = D.quasi_orthogonality(_optimal(_trajectory(0, 3.0, t), -1))
    weak = D.quasi_orthogonality(_optimal(_trajectory(0, 3.0, t, Xp=XP / 10), -1, Xp=XP / 10))
    assert weak < 0.05
    assert weak < 0.3 * strong


def test_looser_ema_is_farther_from_orthogonal_during_training_E5():
    """[E] Fig. 2's trend, on the linear model: at a given time in training a loose EMA
    (beta = 0.1) leaves both the optimal and the trained predictor farther from their polar
    factors (E5) than a tight one (beta = 3). The gap closes as training converges: every
    fixed point has Wa = W, whatever beta."""
    t = np.array([0.0, 50.0, 400.0])
    for seed in range(3):
        loose, tight = _trajectory(seed, 0.1, t, Xp=XP / 10), _trajectory(seed, 3.0, t, Xp=XP / 10)
        ratios = []
        for k in (1, 2):
            optimal = [D.polar_distance(_optimal(s, k, Xp=XP / 10)) for s in (loose, tight)]
            trained = [D.polar_distance(s.Wp[k]) for s in (loose, tight)]
            ratios.append(optimal[0] / optimal[1])
            if k == 1:
                assert optimal[0] > 2 * optimal[1] and trained[0] > 2 * trained[1]
        assert ratios[1] - 1 < (ratios[0] - 1) / 4


def test_plugged_in_optimal_predictor_lets_no_mode_grow_T1_R3():
    """[T] Table 1 on the linear model. With Wp = C_to C_oo^-1 at every instant the T1
    residual E = Wa X - Wp W (X + X') has E W^T = C_to - Wp C_oo = 0, so
    d(W W^T)/dt = -2 eta W W^T exactly: every mode decays. DirectPred ("paper" variant,
    p_j = sqrt(s_j), the linear model's invariant parabola) lets the modes grow instead.
    Measure: eigenvalues of F = W X W^T at t_end above 0.1 lambda_max(F(0))."""
    eta, t = 0.05, np.linspace(0.0, 40.0, 5)
    W0, _ = _init(0)
    W0 = 0.5 * W0
    h = Hyper(alpha_p=1.0, beta=1.0, eta=eta)
    runs = {
        name: matrix.integrate(h, W0, None, W0.copy(), t, X=X, Xp=XP, predictor=name, **params)
        for name, params in (("lrp", {}), ("directpred", {"variant": "paper", "eps": 0.0}))
    }
    WWt = np.einsum("tij,tkj->tik", runs["lrp"].W, runs["lrp"].W)
    expected = np.exp(-2 * eta * t)[:, None, None] * (W0 @ W0.T)
    np.testing.assert_allclose(WWt, expected, rtol=0, atol=1e-6 * np.abs(W0 @ W0.T).max())

    threshold = 0.1 * np.linalg.eigvalsh(W0 @ X @ W0.T).max()

    def surviving(sol) -> int:
        return int(np.sum(np.linalg.eigvalsh(sol.W[-1] @ X @ sol.W[-1].T) > threshold))

    assert surviving(runs["lrp"]) == 0
    assert surviving(runs["directpred"]) == N2
