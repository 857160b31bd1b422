"""Closed-form predictors R1-R10 (theory.md section 3): numpy/torch agreement, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linear_ssl import predictors as P
from linear_ssl.predictors.rules import RULES

N = 6


def _spd(rng: np.random.Generator, n: int = N, floor: float = 0.2) -> np.ndarray:
    A = rng.normal(size=(n, n))
    return A @ A.T / n + floor * np.eye(n)


def _from_spectrum(s: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(s), len(s))))
    return Q @ np.diag(s) @ Q.T, Q


def _eigh_power(S: np.ndarray, power: float) -> np.ndarray:
    s, U = np.linalg.eigh(S)
    return (U * s**power) @ U.T


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    F = _spd(rng)
    return F, F + 0.05 * rng.normal(size=(N, N))  # C_to: near F, not symmetric


RULE_CASES = [(name, {}) for name in P.available_rules()] + [
    ("directpred", {"variant": "paper", "eps": 0.01, "c": 0.05}),
    ("directset", {"alpha": 0.5, "norm": "fro"}),
    ("directset", {"alpha": 1.0, "norm": "spectral"}),
    ("lrp", {"reg": 0.1}),
    ("visser", {"step": 0.3, "n": 40}),
    ("newton_schulz", {"source": "F", "ridge": 0.3}),
    ("stiefel", {"ema": 0.5, "ridge": 0.15}),
]


@pytest.mark.parametrize("name, params", RULE_CASES, ids=lambda v: str(v))
def test_every_rule_numpy_and_torch_float64_agree_R1_R10(pair, name, params):
    """Each registry rule (R1-R8, with R9 ridge and R10 EMA) gives the same Wp on numpy and
    torch float64 inputs (to 1e-10), and returns the input's array type."""
    F, C_to = pair
    rule_np, rule_t = P.get_rule(name, **params), P.get_rule(name, **params)
    for scale in (1.0, 1.3):  # two calls: exercises the EMA state
        out_np = rule_np(scale * F, scale * C_to)
        out_t = rule_t(torch.tensor(scale * F), torch.tensor(scale * C_to))
        assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
        assert out_t.dtype == torch.float64
        np.testing.assert_allclose(out_t.numpy(), out_np, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", P.available_rules())
def test_every_rule_runs_in_torch_float32_R1_R8(pair, name):
    """The trainer's precision: float32 in, float32 out, close to the float64 result."""
    F, C_to = pair
    rule = P.get_rule(name)
    ref = rule(F, C_to)
    out = rule(torch.tensor(F, dtype=torch.float32), torch.tensor(C_to, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=0, atol=2e-4 * np.abs(ref).max())


def test_public_functions_keep_array_type_R6():
    F = _spd(np.random.default_rng(2))
    root, inv_root = P.newton_schulz(torch.tensor(F))
    assert isinstance(root, torch.Tensor) and isinstance(inv_root, torch.Tensor)
    np.testing.assert_allclose(root.numpy(), P.newton_schulz(F)[0], atol=1e-12)


# --------------------------------------------------------------------------- R5-R8 iterations


def test_newton_schulz_converges_to_eigh_roots_with_error_falling_in_n_R6():
    F = _spd(np.random.default_rng(3))
    root, inv_root = _eigh_power(F, 0.5), _eigh_power(F, -0.5)
    errors = [np.abs(P.newton_schulz(F, n=k)[0] - root).max() for k in (2, 4, 6, 8)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    A, B = P.newton_schulz(F, n=12)
    np.testing.assert_allclose(A, root, atol=1e-12)
    np.testing.assert_allclose(B, inv_root, atol=1e-12)
    np.testing.assert_allclose(A @ B, np.eye(N), atol=1e-12)


def test_visser_default_step_converges_with_error_falling_in_n_R5():
    """Default: S / ||S||_F and h = 1/2; the error decreases monotonically in n."""
    F = 7.0 * _spd(np.random.default_rng(4))  # a scale far from 1: the normalisation matters
    root = _eigh_power(F, 0.5)
    errors = [np.abs(P.visser(F, n=k) - root).max() for k in (5, 10, 20, 40, 80)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    np.testing.assert_allclose(P.visser(F, n=400), root, atol=1e-10)


def test_visser_explicit_step_converges_below_bound_and_fails_above_R5():
    """Raw [E] iteration: converges for h <= 1/(2 sqrt(lambda_max)), fails for h sqrt(s) > 1."""
    S = np.diag([1.0, 0.5, 0.25])
    np.testing.assert_allclose(P.visser(S, step=0.5, n=400), np.sqrt(S), atol=1e-10)
    assert np.abs(P.visser(S, step=1.5, n=400) - np.sqrt(S)).max() > 0.1


def test_ns2_is_the_fourth_root_R7():
    F = _spd(np.random.default_rng(5))
    np.testing.assert_allclose(P.ns2(F, n=12), _eigh_power(F, 0.25), atol=1e-12)
    assert np.abs(P.ns2(F) - _eigh_power(F, 0.25)).max() < 1e-4  # default n = 7


def test_stiefel_output_is_the_polar_factor_up_to_scale_R8():
    rng = np.random.default_rng(6)
    U, _ = np.linalg.qr(rng.normal(size=(N, N)))
    V, _ = np.linalg.qr(rng.normal(size=(N, N)))
    S = U @ np.diag(np.linspace(0.7, 1.3, N)) @ V.T  # C_to-like, not symmetric
    polar = U @ V.T
    for n, tol in ((9, 1e-8), (20, 1e-12)):
        Wp = P.stiefel(S, n=n)
        scale = np.linalg.norm(Wp, 2)
        np.testing.assert_allclose(Wp / scale, polar, atol=tol)
    # the scale is 1 / ||B_n||_F with B_n = (S S^T)^(-1/2)
    np.testing.assert_allclose(scale, 1 / np.linalg.norm(_eigh_power(S @ S.T, -0.5)), rtol=1e-12)


# --------------------------------------------------------------------------- R3, R4


def _samples(rng: np.random.Generator, m: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Rows are samples: online f and target f_a = M f + noise."""
    f = rng.normal(size=(m, N)) @ rng.normal(size=(N, N))
    f_a = f @ rng.normal(size=(N, N)).T + 0.3 * rng.normal(size=(m, N))
    return f, f_a


def test_lrp_is_the_least_squares_optimum_R3():
    """Wp = C_to C_oo^-1 equals the least-squares fit of f_a on f (lstsq on the samples), and
    any perturbation raises the regression loss."""
    rng = np.random.default_rng(7)
    f, f_a = _samples(rng)
    C_oo, C_to = f.T @ f / len(f), f_a.T @ f / len(f)
    Wp = P.lrp(C_oo, C_to)
    row_major, *_ = np.linalg.lstsq(f, f_a, rcond=None)  # f @ P ~ f_a: [E]'s P = Wp^T
    np.testing.assert_allclose(Wp, row_major.T, atol=1e-10)

    def loss(M: np.ndarray) -> float:
        return float(np.mean(np.sum((f @ M.T - f_a) ** 2, axis=1)))

    np.testing.assert_allclose(2 * (Wp @ C_oo - C_to), 0, atol=1e-10)  # the gradient
    for _ in range(5):
        assert loss(Wp + 1e-3 * rng.normal(size=(N, N))) > loss(Wp)


def test_lrp_singular_needs_reg_and_reg_is_the_ridge_optimum_R3():
    C_oo = np.diag([2.0, 1.0, 0.0])
    C_to = np.arange(9.0).reshape(3, 3)
    with pytest.raises(ValueError, match="reg > 0"):
        P.lrp(C_oo, C_to)
    Wp = P.lrp(C_oo, C_to, reg=0.5)
    np.testing.assert_allclose(Wp @ (C_oo + 0.5 * np.eye(3)), C_to, atol=1e-12)


def test_neumann_matches_lrp_to_second_order_near_identity_R4():
    rng = np.random.default_rng(8)
    E = rng.normal(size=(N, N))
    E = (E + E.T) / 2
    C_to = rng.normal(size=(N, N))
    errors = []
    for delta in (1e-2, 5e-3, 2.5e-3):
        C_oo = np.eye(N) + delta * E
        errors.append(np.abs(P.neumann(C_oo, C_to) - P.lrp(C_oo, C_to)).max())
    for a, b in zip(errors, errors[1:], strict=False):
        assert a / b == pytest.approx(4.0, rel=0.05)  # O(delta^2)
    np.testing.assert_allclose(P.neumann(np.eye(N), C_to), C_to, atol=1e-14)


# --------------------------------------------------------------------------- R1, R2


SPECTRUM = np.array([4.0, 1.0, 0.25, 0.0])


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"eps": 0.1}, np.sqrt(SPECTRUM / 4) + 0.1),
        ({"eps": 0.1, "variant": "paper"}, np.sqrt(SPECTRUM) + 0.1 * 4),
        ({"eps": 0.0, "variant": "paper", "c": 0.5}, np.sqrt(np.maximum(SPECTRUM - 0.5, 0))),
        ({"eps": 0.0, "c": 0.5}, np.maximum(np.sqrt(np.maximum(SPECTRUM - 0.5, 0) / 4), 1e-4)),
    ],
)
def test_directpred_formulas_on_a_known_spectrum_R1(kwargs, expected):
    F, Q = _from_spectrum(SPECTRUM)
    np.testing.assert_allclose(P.directpred(F, **kwargs), Q @ np.diag(expected) @ Q.T, atol=1e-12)


def test_directpred_of_zero_is_eps_identity_R1():
    np.testing.assert_allclose(P.directpred(np.zeros((3, 3)), eps=0.1), 0.1 * np.eye(3))


def test_directset_half_matches_directpred_paper_up_to_scale_R2():
    """alpha = 1/2 with eps = 0 is DirectPred's square root, divided by sqrt(s_max)."""
    F = _spd(np.random.default_rng(9))
    a = P.directset(F, alpha=0.5, eps=0.0)
    b = P.directpred(F, eps=0.0, variant="paper")
    np.testing.assert_allclose(a * np.sqrt(np.linalg.eigvalsh(F).max()), b, atol=1e-12)


@pytest.mark.parametrize("norm", ["spectral", "fro"])
def test_directcopy_without_eigh_matches_closed_form_R2(norm):
    F = _spd(np.random.default_rng(10))
    scale = np.linalg.eigvalsh(F).max() if norm == "spectral" else np.linalg.norm(F)
    expected = F / scale + 0.1 * np.eye(N)
    np.testing.assert_allclose(P.directcopy(F, eps=0.1, norm=norm), expected, atol=1e-12)
    np.testing.assert_allclose(P.directset(F, alpha=1.0, eps=0.1, norm=norm), expected, atol=1e-12)
    # the eigh path (alpha just off 1) agrees: continuity in alpha
    near = P.directset(F, alpha=1.0 + 1e-9, eps=0.1, norm=norm)
    np.testing.assert_allclose(near, expected, atol=1e-7)


def test_spectral_radius_against_a_general_eigensolver():
    """spectral_radius (no general eig) vs numpy's eigvals, used here only as the reference."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        A = rng.normal(size=(7, 7))
        rho = np.abs(np.linalg.eigvals(A)).max()
        assert float(P.spectral_radius(A)) == pytest.approx(rho, rel=2e-5)
    S = _spd(rng)
    assert float(P.spectral_radius(S)) == pytest.approx(np.linalg.eigvalsh(S).max(), rel=1e-13)
    Q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    assert float(P.spectral_radius(Q)) == pytest.approx(1.0, rel=1e-13)
    assert float(P.spectral_radius(np.zeros((3, 3)))) == 0.0


# --------------------------------------------------------------------------- R9, R10, registry


def test_ridge_adds_alpha_identity_R9(pair):
    F, C_to = pair
    for name in P.available_rules():
        base, ridged = P.get_rule(name)(F, C_to), P.get_rule(name, ridge=0.45)(F, C_to)
        np.testing.assert_allclose(ridged - base, 0.45 * np.eye(N), atol=1e-12)
    np.testing.assert_allclose(P.ridge(np.zeros((2, 2)), 0.3), 0.3 * np.eye(2))


def test_predictor_ema_is_the_explicit_ema_and_resumes_R10(pair):
    F, C_to = pair
    scales = [1.0, 2.0, 0.5, 3.0]
    raw = [P.directpred(s * F) for s in scales]
    expected = raw[0]
    rule = P.get_rule("directpred", ema=0.7)
    np.testing.assert_allclose(rule(scales[0] * F), expected)
    for s, Wp in zip(scales[1:3], raw[1:3], strict=True):
        expected = 0.7 * expected + 0.3 * Wp
        np.testing.assert_allclose(rule(s * F), expected, atol=1e-14)
    resumed = P.get_rule("directpred", ema=0.7)
    resumed.load_state_dict(rule.state_dict())
    expected = 0.7 * expected + 0.3 * raw[3]
    np.testing.assert_allclose(resumed(scales[3] * F), expected, atol=1e-14)
    np.testing.assert_allclose(P.get_rule("directpred")(3 * F), raw[3])  # default: EMA off


@pytest.mark.parametrize("name", P.available_rules())
def test_each_registered_rule_is_public_and_cites_its_equation(name):
    """Every spec of the registry is a public function of linear_ssl.predictors by the same
    name whose docstring opens with the spec's R-id, and each alias builds the same rule."""
    spec = RULES[name]
    assert name in P.__all__ and getattr(P, name).__doc__.startswith(f"{spec.equation}")
    F, C_to = _spd(np.random.default_rng(12)), _spd(np.random.default_rng(13))
    for alias in spec.aliases:
        assert P.get_rule(alias).name == name
        np.testing.assert_array_equal(P.get_rule(alias)(F, C_to), P.get_rule(name)(F, C_to))


@pytest.mark.parametrize("name", P.available_rules())
def test_needs_cross_is_whether_the_output_depends_on_C_to(name):
    """needs_cross, against an independent probe: perturbing C_to moves Wp exactly when the
    rule reads it, and C_to=None is refused exactly then; source='F' reads F only."""
    rng = np.random.default_rng(14)
    F, C_to = _spd(rng), _spd(rng)
    variants = [{}] + ([{"source": "F"}] if RULES[name].inputs == "sigma" else [])
    for params in variants:
        rule = P.get_rule(name, **params)
        moved = np.abs(rule(F, C_to) - rule(F, C_to + 0.1 * np.eye(N))).max() > 1e-6
        assert moved == rule.needs_cross == P.needs_cross(name, **params)
        if rule.needs_cross:
            with pytest.raises(ValueError, match="needs the cross-correlation"):
                rule(F)
        else:
            np.testing.assert_array_equal(rule(F), rule(F, C_to))


def test_newton_schulz_alias_on_F_is_the_eigh_square_root_R6():
    F = _spd(np.random.default_rng(12))
    np.testing.assert_allclose(P.get_rule("ns", source="F")(F), _eigh_power(F, 0.5), atol=1e-8)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: P.get_rule("directpredd"), "valid ones are directpred, directset"),
        (lambda: P.get_rule("lrp", eps=0.1), "valid ones are reg, ridge, ema"),
        (lambda: P.get_rule("directpred", variant="svd"), "'code' or 'paper'"),
        (lambda: P.get_rule("stiefel", source="target"), "'C_to'"),
        (lambda: P.get_rule("directpred", ema=1.0), r"\[0, 1\)"),
        (lambda: P.get_rule("lrp")(np.eye(3)), "needs the cross-correlation"),
    ],
)
def test_registry_errors_are_one_line(build, match):
    with pytest.raises(ValueError, match=match) as info:
        build()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: P.directpred(np.ones((2, 3))), "square"),
        (lambda: P.directpred(np.array([[1.0, np.nan], [np.nan, 1.0]])), "non-finite"),
        (lambda: P.directpred(np.array([[1.0, 0.5], [0.0, 1.0]])), "not symmetric"),
        (lambda: P.lrp(np.eye(2), np.eye(3)), "must match"),
        (lambda: P.newton_schulz(np.zeros((2, 2))), "zero"),
        (lambda: P.visser(np.eye(2), n=0), "integer >= 1"),
        (lambda: P.directpred([[1.0]]), "NumPy array or a torch tensor"),
    ],
)
def test_bad_input_is_a_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def _indefinite(seed: int = 15) -> np.ndarray:
    """Symmetric, one clearly negative eigenvalue (-0.3 of the largest)."""
    S, _ = _from_spectrum(np.array([1.0, 0.5, 0.2, -0.3, 0.1, 0.05]), seed)
    return S


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: P.newton_schulz(np.random.default_rng(16).normal(size=(N, N))), "diverged"),
        (lambda: P.newton_schulz(_indefinite()), "diverged"),
        (lambda: P.ns2(_indefinite()), "diverged"),
        (lambda: P.visser(_indefinite()), "diverged"),
        (lambda: P.directpred(_spd(np.random.default_rng(17)), eps=-1), "eps=-1 is invalid"),
        (lambda: P.directset(_spd(np.random.default_rng(17)), eps=-0.1), "eps=-0.1 is invalid"),
        (lambda: P.directpred(-_spd(np.random.default_rng(17))), "not positive semi-definite"),
        (lambda: P.directpred(_indefinite()), "not positive semi-definite"),
        (lambda: P.directset(_indefinite(), alpha=0.5), "not positive semi-definite"),
        (lambda: P.directcopy(-_spd(np.random.default_rng(17))), "not positive semi-definite"),
        (lambda: P.lrp(-np.eye(3), np.eye(3)), "C_oo is not positive semi-definite"),
        (lambda: P.neumann(-np.eye(3), np.eye(3)), "C_oo is not positive semi-definite"),
        (lambda: P.get_rule("directpred").spectrum(-np.ones(3)), "f is not positive"),
    ],
)
def test_what_a_rule_cannot_take_is_a_one_line_value_error_R1_R8(call, match):
    """Issue 9: R5-R7 on a non-symmetric or indefinite S raise instead of returning inf or
    1e145; R1-R4 refuse eps < 0 and a correlation that is not PSD."""
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["lrp", "neumann"])
def test_mixed_array_libraries_are_a_one_line_type_error_R3_R4(name):
    """Issue 9: a torch tensor with a NumPy array, either way round, and in the spectral form."""
    F = _spd(np.random.default_rng(18))
    rule = P.get_rule(name)
    for a, b in ((torch.tensor(F), F), (F, torch.tensor(F))):
        with pytest.raises(TypeError, match="pass both as NumPy arrays or both as torch") as info:
            rule(a, b)
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="f is a Tensor but c is a ndarray"):
        rule.spectrum(torch.ones(3), np.ones(3))


def test_mixed_float_precisions_are_promoted_R4():
    """float32 C_oo with float64 C_to (torch would refuse the product): float64 out."""
    rng = np.random.default_rng(19)
    C_oo, C_to = _spd(rng), rng.normal(size=(N, N))
    out = P.neumann(torch.tensor(C_oo, dtype=torch.float32), torch.tensor(C_to))
    assert out.dtype == torch.float64
    expected = P.neumann(C_oo.astype(np.float32).astype(np.float64), C_to)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_deficient_estimates_pass_the_psd_check_R1_R2(dtype):
    """A batch smaller than the dimension gives F_hat with exact zero eigenvalues, which
    float32 roundoff makes slightly negative: accepted in float32 and once cast to float64
    (the tolerance is float32's sqrt(eps)), and R1 gives the eps floor on the null space;
    a mode 1e-3 of the top below zero is refused."""
    f = torch.tensor(np.random.default_rng(20).normal(size=(10, 64)), dtype=torch.float32)
    F = f.T @ f / 10
    F = ((F + F.T) / 2).to(dtype)
    s, U = torch.linalg.eigh(F.double())
    assert float(s.min()) < 0  # roundoff made it indefinite
    Wp = P.directpred(F, eps=0.1)
    p = torch.linalg.eigvalsh(Wp.double())
    assert int((p - 0.1).abs().lt(1e-3).sum()) == 64 - 10  # the null space: p = eps
    P.directset(F, alpha=0.5)
    P.directcopy(F)
    s[0] = -1e-3 * s.max()
    with pytest.raises(ValueError, match="not positive semi-definite"):
        P.directpred(((U * s) @ U.T).to(dtype))


# --------------------------------------------------------------------------- trusted path


TRUSTED_CASES = [(name, {}) for name in P.available_rules()] + [
    ("newton_schulz", {"source": "F"}),
    ("directpred", {"ema": 0.5, "ridge": 0.3}),
]


@pytest.mark.parametrize("name, params", TRUSTED_CASES, ids=lambda v: str(v))
def test_trusted_path_computes_the_same_wp_as_the_checked_call_R1_R10(pair, name, params):
    """Issue 15: inside DeferredChecks.collect every rule gives the very Wp of the checked
    call (numpy and torch float32), and valid input leaves no failure to raise."""
    F, C_to = pair
    checks = P.DeferredChecks()
    for convert in (np.asarray, lambda a: torch.tensor(a, dtype=torch.float32)):
        checked, trusted = P.get_rule(name, **params), P.get_rule(name, **params)
        for step, scale in enumerate((1.0, 1.3), start=1):
            expected = checked(convert(scale * F), convert(scale * C_to))
            with checks.collect(step):
                out = trusted(convert(scale * F), convert(scale * C_to))
            assert type(out) is type(expected) and out.dtype == expected.dtype
            np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    checks.raise_if_failed()


def test_trusted_path_defers_failures_and_names_the_earliest_step():
    """Bad input inside collect does not raise there; raise_if_failed raises the failure of
    the earliest step in one line, then starts afresh."""
    checks = P.DeferredChecks("predictor.rule='directpred'")
    good, asymmetric = torch.eye(3), torch.tensor([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    rule = P.get_rule("directpred")
    for step, F in ((1, good), (3, asymmetric), (4, -good), (5, asymmetric)):
        with checks.collect(step):
            rule(F)
    with pytest.raises(ValueError) as info:
        checks.raise_if_failed()
    message = str(info.value)
    assert message.startswith("predictor.rule='directpred' failed at step 3: F is not symmetric")
    assert "\n" not in message
    checks.raise_if_failed()  # forgotten once raised
    with checks.collect(9):
        P.get_rule("newton_schulz", source="F")(torch.tensor(_indefinite()))
    with pytest.raises(ValueError, match="step 9: newton_schulz diverged"):
        checks.raise_if_failed()


# --------------------------------------------------------------------------- running estimates


def _batches(rng: np.random.Generator, count: int = 3, batch: int = 5):
    for _ in range(count):
        views = [rng.normal(size=(batch, N)) + 1.0 for _ in range(2)]
        targets = [v @ rng.normal(size=(N, N)) * 0.5 for v in views]
        yield views, targets


@pytest.mark.parametrize("centre", [False, True])
def test_running_correlation_is_the_explicit_ema_of_batch_correlations(centre):
    """F_hat <- rho F_hat + (1 - rho) mean(f f^T) over both views (first batch as is);
    C_to pairs each target view with the other online view."""
    rho = 0.3
    est = P.RunningCorrelation(rho=rho, cross=True, centre=centre)
    F = C = m = ma = None
    for views, targets in _batches(np.random.default_rng(13)):
        est.update(views, targets)
        samples = [x for v in views for x in v]
        batch_F = np.mean([np.outer(x, x) for x in samples], axis=0)
        batch_C = np.mean(
            [np.outer(targets[1][b], views[0][b]) for b in range(5)]
            + [np.outer(targets[0][b], views[1][b]) for b in range(5)],
            axis=0,
        )
        batch_m = np.mean(samples, axis=0)
        batch_ma = np.mean([x for t in targets for x in t], axis=0)
        if F is None:
            F, C, m, ma = batch_F, batch_C, batch_m, batch_ma
        else:
            F, C = rho * F + (1 - rho) * batch_F, rho * C + (1 - rho) * batch_C
            m, ma = rho * m + (1 - rho) * batch_m, rho * ma + (1 - rho) * batch_ma
    if centre:
        F, C = F - np.outer(m, m), C - np.outer(ma, m)
    np.testing.assert_allclose(est.F, F, atol=1e-12)
    np.testing.assert_allclose(est.C_to, C, atol=1e-12)
    assert est.count == 3


def test_running_correlation_torch_matches_numpy_and_resumes_from_state():
    batches = list(_batches(np.random.default_rng(14), count=4))
    ref = P.RunningCorrelation(rho=0.5, cross=True)
    for views, targets in batches:
        ref.update(views, targets)
    est = P.RunningCorrelation(rho=0.5, cross=True)
    for views, targets in batches[:2]:
        est.update([torch.tensor(v) for v in views], [torch.tensor(t) for t in targets])
    resumed = P.RunningCorrelation(rho=0.5, cross=True)
    resumed.load_state_dict(est.state_dict())
    for views, targets in batches[2:]:
        resumed.update([torch.tensor(v) for v in views], [torch.tensor(t) for t in targets])
    assert isinstance(resumed.F, torch.Tensor)
    np.testing.assert_allclose(resumed.F.numpy(), ref.F, atol=1e-12)
    np.testing.assert_allclose(resumed.C_to.numpy(), ref.C_to, atol=1e-12)
    with pytest.raises(ValueError, match="rho"):
        P.RunningCorrelation(rho=0.3, cross=True).load_state_dict(est.state_dict())
    with pytest.raises(ValueError, match="no C_to"):
        _ = P.RunningCorrelation().C_to


SPECTRAL_CASES = RULE_CASES[:-1] + [
    ("directpred", {"c": 0.05, "ridge": 0.2}),
    ("directset", {"alpha": 1.0, "norm": "fro"}),
    ("visser", {"source": "F"}),
    ("stiefel", {"source": "F", "n": 5}),
    ("ns2", {"n": 4}),
]


@pytest.mark.parametrize("name, params", SPECTRAL_CASES, ids=lambda v: str(v))
def test_spectrum_equals_the_matrix_rule_on_diagonal_inputs_R1_R9(name, params):
    """rule.spectrum(f, c) (R1-R8 with R9 ridge, O(n)) is the diagonal of rule(diag(f),
    diag(c)) to 1e-12, and that matrix is diagonal; numpy and torch alike."""
    rule = P.get_rule(name, **params)
    assert rule.has_spectrum
    rng = np.random.default_rng(4)
    f = np.sort(rng.uniform(0.01, 2.0, 12))[::-1].copy()
    f[3] = f[4]  # a tie
    c = f * rng.uniform(0.5, 1.0, f.size)
    Wp = rule(np.diag(f), np.diag(c))
    np.testing.assert_allclose(Wp - np.diag(np.diagonal(Wp)), 0.0, atol=1e-14)
    p = rule.spectrum(f, c)
    np.testing.assert_allclose(p, np.diagonal(Wp), rtol=1e-12, atol=1e-12)
    p_t = rule.spectrum(torch.tensor(f), torch.tensor(c))
    np.testing.assert_allclose(p_t.numpy(), p, rtol=1e-12, atol=1e-12)


def test_spectrum_is_refused_with_ema_or_a_per_eigenvalue_c():
    for rule in (P.get_rule("directpred", ema=0.5), P.get_rule("directpred", c=[0.1, 0.2])):
        assert not rule.has_spectrum
        with pytest.raises(ValueError, match="no spectral form"):
            rule.spectrum(np.ones(2))
    with pytest.raises(ValueError, match="needs the diagonal of C_to"):
        P.get_rule("lrp").spectrum(np.ones(3))
    with pytest.raises(ValueError, match="it must be a 1-D array"):
        P.get_rule("directpred").spectrum(np.eye(3))
