"""Collapse and rank diagnostics E9-E12 (theory.md section 4) and their predictions (T7, T9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import torch

from linear_ssl import diagnostics as D
from linear_ssl.theory import Hyper, modes


def _orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(n, k)))[0]


def _with_singular_values(sigma: np.ndarray, n: int = 50, seed: int = 0) -> np.ndarray:
    """An (n, d) matrix whose singular values are exactly sigma (d = len(sigma))."""
    rng = np.random.default_rng(seed)
    d = sigma.shape[0]
    return _orthonormal(rng, n, d) @ np.diag(sigma) @ _orthonormal(rng, d, d).T


def _entropy_rank_closed_form(values: np.ndarray, eps: float) -> float:
    p = values / values.sum() + eps
    return math.exp(-np.sum(scipy.special.xlogy(p, p)))


# --------------------------------------------------------------------------- E9 RankMe


def test_rankme_is_the_exponential_of_the_singular_value_entropy_E9():
    sigma = np.array([3.0, 2.0, 1.0, 0.5, 0.1])
    Z = _with_singular_values(sigma)
    assert D.rankme(Z, eps=0.0) == pytest.approx(math.exp(scipy.stats.entropy(sigma)), rel=1e-12)
    # the paper's eps = 1e-7 enters as p_k = sigma_k / ||sigma||_1 + eps
    assert D.rankme(Z) == pytest.approx(_entropy_rank_closed_form(sigma, 1e-7), rel=1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_rank_k_embeddings_have_rankme_k_E9(k):
    """k equal singular values (d - k zero): exactly k up to the eps terms; Gaussian ~ k."""
    d = 10
    sigma = np.r_[np.ones(k), np.zeros(d - k)]
    eps = 1e-7
    expected = math.exp(-k * (1 / k + eps) * math.log(1 / k + eps) - (d - k) * eps * math.log(eps))
    assert D.rankme(_with_singular_values(sigma)) == pytest.approx(expected, rel=1e-10)
    rng = np.random.default_rng(k)
    Z = rng.normal(size=(20_000, k)) @ _orthonormal(rng, d, k).T
    assert D.rankme(Z) == pytest.approx(k, rel=0.01)


def test_isotropic_gaussian_embeddings_have_rankme_d_and_l2_std_one_over_sqrt_d_E9_E12():
    d = 16
    Z = np.random.default_rng(0).normal(size=(20_000, d))
    assert D.rankme(Z) == pytest.approx(d, rel=0.005)
    assert D.rankme(Z, centred=True) == pytest.approx(d, rel=0.005)
    assert D.l2_std(Z) == pytest.approx(1 / math.sqrt(d), rel=0.005)


def test_centring_removes_the_mean_direction_E9():
    """Z = m 1 + noise (N >> d): uncentred, Z's singular values are ~sqrt(N (d m^2 + 1))
    along the mean and ~sqrt(N) across it; centred, only the isotropic noise is left."""
    N, d, m = 20_000, 8, 10.0
    Z = np.random.default_rng(1).normal(size=(N, d)) + m
    sigma = np.sqrt(N * np.r_[d * m**2 + 1, np.ones(d - 1)])
    assert D.rankme(Z) == pytest.approx(_entropy_rank_closed_form(sigma, 1e-7), rel=0.01)
    assert D.rankme(Z, centred=True) == pytest.approx(8, rel=0.01)


def test_collapsed_embeddings_rankme_one_l2_std_zero_lidar_one_E9_E10_E12():
    rng = np.random.default_rng(2)
    Z = np.tile(rng.normal(size=(1, 6)), (40, 1))  # every sample the same vector
    assert D.rankme(Z) == pytest.approx(1.0, abs=1e-4)
    assert D.l2_std(Z) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(D.rankme(Z, centred=True))  # nothing left after centring
    line = rng.normal(size=(40, 1)) * rng.normal(size=(1, 6))  # collapsed to one direction
    assert D.rankme(line) == pytest.approx(1.0, abs=1e-4)
    groups = np.repeat(np.arange(20), 2)  # every image's two views on one line, up to noise
    views = line[::2][groups] + 1e-3 * rng.normal(size=line.shape)
    assert D.lidar(views, groups) == pytest.approx(1.0, abs=0.01)


def test_rankme_spectrum_equals_rankme_of_embeddings_with_that_second_moment_E9():
    """Z (N, d) with Z^T Z / N eigenvalues s: rankme(Z) = rankme_spectrum(s), per time row."""
    s = np.array([[4.0, 1.0, 0.25, 0.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1e-8, 0.0, -1e-18]])
    N = 50
    for row in s:
        Z = _with_singular_values(np.sqrt(N * np.clip(row, 0, None)), n=N)
        assert float(D.rankme_spectrum(row)) == pytest.approx(D.rankme(Z), rel=1e-10)
    assert D.rankme_spectrum(s).shape == (3,)
    assert D.rankme_spectrum(s)[1] == pytest.approx(4.0, rel=1e-6)
    assert D.rankme_spectrum(np.stack([s, s])).shape == (2, 3)


# --------------------------------------------------------------------------- E10 LiDAR


def _lidar_reference(Z: np.ndarray, groups: list, delta: float, eps: float) -> float:
    """E10 written out with loops and scipy's matrix square root (a second computation)."""
    ids = sorted(set(groups))
    members = [Z[[i for i, g in enumerate(groups) if g == gid]] for gid in ids]
    means = np.array([m.mean(0) for m in members])
    mu = means.mean(0)
    d = Z.shape[1]
    Sigma_b = sum(np.outer(m - mu, m - mu) for m in means) / (len(ids) - 1)
    Sigma_w = sum((m - m.mean(0)).T @ (m - m.mean(0)) for m in members)
    Sigma_w = Sigma_w / (Z.shape[0] - len(ids)) + delta * np.eye(d)
    R = np.linalg.inv(scipy.linalg.sqrtm(Sigma_w).real)
    lam = np.clip(np.linalg.eigvalsh(R @ Sigma_b @ R), 0, None)
    return _entropy_rank_closed_form(lam, eps)


def test_lidar_agrees_with_a_direct_computation_with_unequal_groups_E10():
    rng = np.random.default_rng(3)
    sizes = [2, 3, 2, 4, 2, 2, 3, 2, 5, 2, 2, 3]
    groups = [g for g, size in enumerate(sizes) for _ in range(size)]
    centres = rng.normal(size=(len(sizes), 5)) * np.array([3, 2, 1, 0.5, 0.1])
    Z = centres[groups] + 0.3 * rng.normal(size=(len(groups), 5))
    wide = centres[groups] @ rng.normal(size=(5, 40)) + 0.3 * rng.normal(size=(len(groups), 40))
    for X in (Z, wide):  # d < N; d > N (computed from the Gram matrix)
        for delta, eps in ((1e-4, 1e-8), (0.5, 0.0)):
            expected = _lidar_reference(X, groups, delta, eps)
            got = D.lidar(X, np.array(groups), delta=delta, eps=eps)
            assert got == pytest.approx(expected, rel=1e-9)


def test_lidar_groups_by_id_not_by_position_E10():
    """Shuffled rows with the ids shuffled alike, and ids of any kind, give the same LiDAR."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(30), 2)
    Z = rng.normal(size=(30, 8))[groups] + 0.5 * rng.normal(size=(60, 8))
    order = rng.permutation(60)
    names = np.array([f"image{g}" for g in groups])
    expected = D.lidar(Z, groups)
    assert D.lidar(Z[order], groups[order]) == pytest.approx(expected, rel=1e-10)
    assert D.lidar(Z[order], names[order]) == pytest.approx(expected, rel=1e-10)
    assert D.lidar(Z, rng.permutation(groups)) != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("n_groups, d", [(5, 16), (40, 3), (12, 12)])
def test_lidar_is_at_most_min_of_d_and_groups_minus_one_E10(n_groups, d):
    rng = np.random.default_rng(n_groups)
    groups = np.repeat(np.arange(n_groups), 3)
    Z = rng.normal(size=(n_groups, d))[groups] + 0.2 * rng.normal(size=(3 * n_groups, d))
    value = D.lidar(Z, groups)
    assert 1.0 <= value <= min(d, n_groups - 1) * (1 + 1e-6)
    if n_groups - 1 > d:  # many well-separated isotropic groups: close to the bound
        assert value > 0.8 * d


def test_lidar_of_isotropic_between_and_within_scatter_is_the_between_rank_E10():
    """Sigma_w = c I exactly and Sigma_b with r equal eigenvalues: LiDAR = r (eps = 0)."""
    r, d, G = 3, 6, 4  # G - 1 = r equal between-group directions
    basis = _orthonormal(np.random.default_rng(5), d, d)
    simplex = np.eye(G) - 1 / G  # G centred points spanning G - 1 = r directions equally
    means = simplex @ scipy.linalg.orth(simplex) @ basis[:, :r].T
    views = np.concatenate([basis, -basis])  # +-e for each of d directions: Sigma_w ~ I
    Z = np.concatenate([means[g] + 0.1 * views for g in range(G)])
    groups = np.repeat(np.arange(G), 2 * d)
    assert D.lidar(Z, groups, eps=0.0) == pytest.approx(r, rel=1e-9)


# --------------------------------------------------------------------------- E11 alpha-ReQ


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.3])
def test_alpha_req_recovers_a_power_law_exponent_E11(alpha):
    k = np.arange(1, 301, dtype=float)
    assert D.alpha_req(7.0 * k**-alpha) == pytest.approx(alpha, rel=1e-10)


def test_alpha_req_fits_only_its_stated_range_E11():
    """Default ranks 6..100: a different head (k <= 5) or tail (k > 100) changes nothing."""
    k = np.arange(1, 201, dtype=float)
    spectrum = np.where(k <= 100, k**-1.0, 100.0**2 * k**-3.0)  # continuous at k = 100
    spectrum[:5] = [50, 40, 30, 20, 10]
    assert D.alpha_req(spectrum) == pytest.approx(1.0, rel=1e-10)
    assert D.alpha_req(spectrum, k_min=101, k_max=200) == pytest.approx(3.0, rel=1e-10)
    assert D.alpha_req(spectrum, k_min=6, k_max=200) > 1.1
    assert math.isnan(D.alpha_req(np.r_[1.0, np.zeros(99)]))  # collapsed: nothing to fit


# --------------------------------------------------------------------------- numpy == torch


CALLS = {
    "rankme": lambda Z, g: D.rankme(Z),
    "rankme_centred": lambda Z, g: D.rankme(Z, centred=True),
    "lidar": lambda Z, g: D.lidar(Z, g),
    "alpha_req": lambda Z, g: D.alpha_req((Z.T @ Z)[0] ** 2),
    "l2_std": lambda Z, g: D.l2_std(Z),
    "rankme_spectrum": lambda Z, g: D.rankme_spectrum(Z[:5] ** 2),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_numpy_and_torch_agree_E9_E12(name):
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(20), 2)
    Z = rng.normal(size=(20, 12))[groups] + 0.3 * rng.normal(size=(40, 12))
    expected = np.asarray(CALLS[name](Z, groups))
    got = CALLS[name](torch.tensor(Z), torch.tensor(groups))
    assert np.allclose(np.asarray(got), expected, rtol=1e-10, atol=0)


# --------------------------------------------------------------------------- predicted by the flow


def test_mode_loss_times_of_exponential_decays_E9():
    """s_j = exp(-r_j t) against the top mode r_0 = 0: lost once exp(-r_j t) < floor."""
    t = np.linspace(0, 10, 10_001)
    rates = np.array([0.0, 1.0, 2.0, 2.0])
    s = np.exp(-np.outer(t, rates))
    s[:, 3] += np.exp(-(((t - 5) / 0.2) ** 2))  # below the floor by t = 4, back at t = 5
    times = D.mode_loss_times(t, s, floor=1e-3)
    assert math.isnan(times[0])
    assert times[1] == pytest.approx(math.log(1e3), abs=2e-3)
    assert times[2] == pytest.approx(math.log(1e3) / 2, abs=2e-3)
    assert times[3] == pytest.approx(5 + 0.2 * math.sqrt(math.log(1e3)), abs=2e-3)


def test_predicted_mode_loss_time_is_t9s_closed_form_T7_T9():
    """SimSiam on the parabola (T9): a mode below p- collapses, one at p+ stays; the top
    mode sits at p+, so the collapsing one is lost when p = p+ sqrt(floor), at the time
    the closed-form integral of dp/dt = -p (p - p-)(p - p+) gives."""
    h = Hyper(alpha_p=1.0, beta=None, eta=0.01, sigma2=0.0)
    p_minus, p_plus = (float(v) for v in modes.fixed_points(h))
    p0 = np.array([p_plus, 0.5 * p_minus, 0.5])
    t = np.linspace(0, 600, 6001)
    sol = modes.integrate(h, p0, p0**2, t, rtol=1e-10, atol=1e-14)
    floor = 1e-6
    times = D.mode_loss_times(sol.t, sol.s, floor=floor)

    def primitive(p):  # int dp / (p (p - a)(p - b)) = A ln p + B ln|p - a| + C ln|p - b|
        a, b = p_minus, p_plus
        return (
            math.log(p) / (a * b)
            + math.log(abs(p - a)) / (a * (a - b))
            + math.log(abs(p - b)) / (b * (b - a))
        )

    expected = -(primitive(p_plus * math.sqrt(floor)) - primitive(p0[1]))
    assert math.isnan(times[0]) and math.isnan(times[2])
    assert times[1] == pytest.approx(expected, abs=0.2)  # the grid step is 0.1
    rank = D.rankme_spectrum(sol.s)
    assert rank[0] == pytest.approx(D.rankme_spectrum(p0**2), rel=1e-12)
    assert rank[-1] == pytest.approx(2.0, abs=0.01)  # two modes left at p+


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: D.rankme(np.ones(5)), "2-D matrix"),
        (lambda: D.rankme(np.ones((1, 5))), "N >= 2"),
        (lambda: D.rankme(np.ones((3, 5)), eps=-1.0), "eps"),
        (lambda: D.lidar(np.ones((4, 2)), [0, 0, 1]), "source-image id"),
        (lambda: D.lidar(np.ones((4, 2)), [0, 0, 0, 0]), "at least 2 groups"),
        (lambda: D.lidar(np.ones((4, 2)), [0, 1, 2, 3]), "2 or more views"),
        (lambda: D.lidar(np.eye(4), [0, 0, 1, 1], delta=0.0), "delta > 0"),
        (lambda: D.alpha_req(np.ones((2, 2))), "1-D"),
        (lambda: D.alpha_req(np.ones(9), k_min=5, k_max=5), "must exceed"),
        (lambda: D.alpha_req(np.ones(9), k_min=0), "rank >= 1"),
        (lambda: D.mode_loss_times(np.arange(3.0), np.ones((4, 2))), "sol.t and sol.s"),
        (lambda: D.mode_loss_times(np.arange(3.0), np.ones((3, 2)), floor=2.0), "floor"),
    ],
)
def test_bad_input_is_a_one_line_value_error_E9_E12(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
