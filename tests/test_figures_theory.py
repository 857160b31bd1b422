"""Theory figures (theory.md section 7): each figure's data checked against the theory it draws.

Data functions run with small settings; pixels are never compared (test_figures.py renders
every figure of the registry and checks its legends and files).
"""

import numpy as np
import pytest

from linear_ssl import diagnostics
from linear_ssl.figures import (
    FIGURES,
    THEORY_FIGURES,
    make_figure,
    t_fig7_ema_correlation,
    theory_figures,
)
from linear_ssl.figures.style import SADDLE, STABLE, UNSTABLE
from linear_ssl.theory import Hyper, modes, normalised


def _data(name: str, **settings):
    """The data of theory figure `name` at `settings`, through the registry."""
    return FIGURES[name].data(**settings)


def t7_closed_form(alpha_p, eta, sigma2, tau, p, s):
    """T7's (dp/dt, ds/dt) written out independently of the engine."""
    g = tau - (1 + sigma2) * p
    return alpha_p * s * g - eta * p, 2 * p * s * g - 2 * eta * s


@pytest.fixture(scope="module")
def portraits():
    return _data("t_fig3_phase_portrait", grid=9, points=61).panels


def test_fig3_fixed_points_are_T9s(portraits):
    """[T] Fig. 3 / T9: marked points are 0 and p-+ of modes.fixed_points on the parabola."""
    by_eta = {d.h.eta: d for d in portraits}
    d = by_eta[0.01]
    p_minus, p_plus = modes.fixed_points(d.h, tau=1.0)
    fixed = d.fixed.set_index("p")
    np.testing.assert_allclose(sorted(fixed.index), sorted([0.0, p_minus, p_plus]), rtol=1e-12)
    np.testing.assert_allclose(fixed.s, fixed.index**2 / d.h.alpha_p)  # T8 parabola
    assert fixed.loc[0.0, "kind"] == STABLE
    assert fixed.loc[float(p_minus), "kind"] == UNSTABLE  # the collapse basin edge
    assert fixed.loc[float(p_plus), "kind"] == STABLE
    # every marked point is a zero of T7
    dp, ds = t7_closed_form(1.0, 0.01, 0.0, 1.0, fixed.index.values, fixed.s.values)
    np.testing.assert_allclose(np.c_[dp, ds], 0.0, atol=1e-12)
    # eta = 1 is past T9's threshold 1/4: only the origin
    assert by_eta[1.0].fixed.p.tolist() == [0.0]


def test_fig3_eta0_fixed_lines_are_T9s(portraits):
    """T9 at eta = 0: s = 0 is unstable only for 0 < p < 1; the line p = 1 is stable."""
    lines = {d.h.eta: d for d in portraits}[0.0].fixed_lines
    kinds = lines.groupby("segment").kind.first().to_dict()
    assert kinds == {
        "s=0, p<0": STABLE,
        "s=0, 0<p<p*": UNSTABLE,
        "s=0, p>p*": STABLE,
        "p=p*": STABLE,
    }
    dp, ds = t7_closed_form(1.0, 0.0, 0.0, 1.0, lines.p.values, lines.s.values)
    np.testing.assert_allclose(np.c_[dp, ds], 0.0, atol=1e-12)


def test_fig3_field_and_orbits_are_T7(portraits):
    """[T] Fig. 3: the drawn field is T7's RHS; orbits keep T8's invariant c."""
    for d in portraits:
        P, S = np.meshgrid(d.p, d.s)
        dp, ds = t7_closed_form(d.h.alpha_p, d.h.eta, d.h.sigma2, 1.0, P, S)
        np.testing.assert_allclose(d.dp, dp, atol=1e-12)
        np.testing.assert_allclose(d.ds, ds, atol=1e-12)
        for _, tr in d.trajectories.groupby("start"):  # T8: s = p^2/alpha_p + e^{-2 eta t} c
            assert np.all(np.isfinite(tr[["p", "s"]]))
            c0 = tr.s.iloc[0] - tr.p.iloc[0] ** 2 / d.h.alpha_p
            predicted = tr.p**2 / d.h.alpha_p + np.exp(-2 * d.h.eta * tr.t) * c0
            np.testing.assert_allclose(tr.s, predicted, atol=1e-5)


def test_fig4_zero_crossings_are_p_plus_minus():
    """[T] Fig. 4 / T9: dp/dt's zeros are 0, p-, p+; kinds per regime; the curve is T9's."""
    data = _data("t_fig4_parabola_flow", etas=(0.0, 0.1, 0.4), points=301)
    curves, fixed = data.curves, data.fixed
    assert data.threshold == pytest.approx(0.25)  # T9: tau^2 / (4 (1 + sigma2))
    for eta, c in curves.groupby("eta"):
        g = 1.0
        np.testing.assert_allclose(c.dpdt, c.p**2 * (1.0 - g * c.p) - eta * c.p, atol=1e-12)
        nonzero = c[c.dpdt != 0]  # strict sign changes, between non-zero neighbours
        sign = np.sign(nonzero.dpdt.values)
        change = np.flatnonzero(sign[1:] != sign[:-1])
        crossings = (nonzero.p.values[change] + nonzero.p.values[change + 1]) / 2
        expected = [p for p in fixed[fixed.eta == eta].p if not (eta == 0 and p == 0)]
        step = np.diff(c.p.values)[0]
        np.testing.assert_allclose(np.sort(crossings), np.sort(expected), atol=step)
    kinds = {eta: f.set_index("p").kind.to_dict() for eta, f in fixed.groupby("eta")}
    assert kinds[0.0] == {0.0: SADDLE, 1.0: STABLE}
    p_minus, p_plus = (float(x) for x in modes.fixed_points(Hyper(eta=0.1)))
    assert kinds[0.1] == {0.0: STABLE, p_minus: UNSTABLE, p_plus: STABLE}
    assert kinds[0.4] == {0.0: STABLE}  # past the threshold 1/4: all collapse


def test_fig5_curves_are_modes_integrate():
    """[T] Fig. 5: curves equal modes.integrate (T7); K_j is T6's K in the eigenbasis."""
    df = _data("t_fig5_mode_sweeps", etas=(0.04,), betas=(0.4, None), t_end=5.0, step=0.05).table
    sub = df[(df.sweep == "beta") & (df.beta == 0.4)]
    h = Hyper(alpha_p=1.0, beta=0.4, eta=0.04)
    p0 = np.array([-0.1, 0.0, 0.05, 0.1, 0.2, 0.4])
    t = np.arange(0.0, 5.0 + 0.025, 0.05)
    sol = modes.integrate(h, p0, np.full_like(p0, 0.02), t)
    wide = sub.pivot(index="t", columns="mode", values="p")
    np.testing.assert_allclose(wide.values, sol.p, rtol=1e-12)
    np.testing.assert_allclose(sub.pivot(index="t", columns="mode", values="s").values, sol.s)
    K = (0.02 / 2 + p0**2) - 1.0 * p0 + 1.5 * 0.04  # T6 at t = 0 (s = 0.02, tau = 1)
    np.testing.assert_allclose(sub[sub.t == 0].K.values, K, rtol=1e-12)
    # SimSiam rows keep tau == 1; T8 holds along every curve whatever tau does
    assert np.all(df[df.beta.isna()].tau == 1.0)
    for _, m in sub.groupby("mode"):
        c0 = m.s.iloc[0] - m.p.iloc[0] ** 2
        np.testing.assert_allclose(m.s, m.p**2 + np.exp(-2 * 0.04 * m.t) * c0, atol=1e-6)


def test_entry_correlation_is_pearson():
    """[T] Fig. 7's corr(Wa, W) is the Pearson correlation of the entries (np.corrcoef)."""
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(2, 4, 3, 5))
    expected = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(A, B, strict=True)]
    np.testing.assert_allclose(t_fig7_ema_correlation.entry_correlation(A, B), expected, rtol=1e-12)
    assert np.isnan(t_fig7_ema_correlation.entry_correlation(np.zeros((1, 2, 2)), A[:1, :2, :2]))[0]


def test_fig7_A1_holds_for_a_fast_ema():
    """[T] Fig. 7 / A1: with Wa(0) = 0 and beta = 1, corr(Wa, W) is ~1 at the end."""
    df = _data("t_fig7_ema_correlation", etas=(0.0,), betas=(1.0,), n=5, runs=2, points=11).table
    assert df[df.t == 0]["corr"].isna().all()  # Wa(0) = 0: undefined
    assert df[df.t == df.t.max()]["corr"].min() > 0.99


def test_fig8_skew_part_vanishes_in_range_and_decays_as_eta_p_on_null():
    """[T] Fig. 8 (corrected): under the unsymmetrised T1 with a rank-deficient F, the skew
    part of Wp on null(F) is exactly exp(-eta_p t) times its start (frozen at eta = 0),
    while inside range(F) it vanishes for every eta, eta = 0 included."""
    df = _data("t_fig8_predictor_symmetry", etas=(0.0, 0.1), n=5, t_end=100.0, points=51).table
    for eta, g in df.groupby("eta"):
        np.testing.assert_allclose(g["null"], g["null_predicted"], rtol=1e-6, atol=1e-12)
        assert g["range"].iloc[-1] < 0.1 * g["range"].iloc[0], eta
        assert g["sym"].iloc[-1] > 0.1  # the symmetric part survives
    frozen = df[df.eta == 0.0]
    assert np.all(np.diff(frozen["range"].to_numpy()) < 0)  # still falling at t_end
    assert frozen["null"].iloc[-1] == pytest.approx(frozen["null"].iloc[0], rel=1e-9)


def test_fig9_commutator_obeys_T6_bound():
    """[T] Fig. 9 / T6: lambda_min(K) >= l0 > 0 on [0, t] gives ||L(t)|| <= e^{-2 l0 t}||L(0)||."""
    settings = ((0.05, None), (0.0, None))
    df = _data("t_fig9_commutator", settings=settings, n=5, points=81).table
    g = df[df.eta == 0.05]
    lam0 = np.minimum.accumulate(g.lambda_min.values)
    assert lam0[-1] > 0
    bound = np.exp(-2 * lam0 * g.t.values) * g.commutator.values[0]
    assert np.all(g.commutator.values <= bound * (1 + 1e-4) + 1e-12)
    # without weight decay K < 0 early and the commutator grows
    g0 = df[df.eta == 0.0]
    assert g0.lambda_min.values[1] < 0 and g0.commutator.max() > 1.5 * g0.commutator.values[0]


def test_fig10_end_points_are_T4_fixed_points():
    """[T] Fig. 10 / T4: every orbit ends where w = w_a and w_p w = w l_d / l_s."""
    traj = _data("t_fig10_scalar_system", points=50).trajectories
    end = traj.groupby("start").tail(1)
    np.testing.assert_allclose(end.w, end.wa, atol=1e-4)
    np.testing.assert_allclose(end.wp * end.w * 1.0, end.w * 0.5, atol=1e-4)
    assert (end.w.abs() > 0.1).sum() >= 3 and (end.w.abs() < 1e-3).sum() >= 1  # both branches


def test_e_fig2_trained_predictor_is_lrp_at_convergence():
    """[E] Fig. 2 analogue / R3: at T1's fixed point (eta = 0) Wp = C_to C_oo^-1 = LRP, so
    E5 and E3 of the trained predictor and of LRP agree; both are diagnostics' values."""
    df = _data("e_fig2_polar_distance", betas=(3.0,), times=(200.0,), runs=3).table
    df = df[df.coo_condition > 1e-2]  # a collapsing mode leaves LRP ill-determined
    assert df.run.nunique() >= 2
    for metric in ("polar_distance", "quasi_orthogonality"):
        wide = df.pivot_table(index="run", columns="predictor", values=metric)
        np.testing.assert_allclose(wide["trained"], wide["LRP"], rtol=1e-4)
    P = np.diag([1.0, 0.5])  # E5 of a diagonal P: sqrt(mean (sigma - 1)^2) after P / rho(P)
    assert diagnostics.polar_distance(P) == pytest.approx(np.sqrt(0.25 / 2))


def test_theory_figures_writes_png_and_pdf_per_figure(tmp_path):
    """theory_figures (what `linear-ssl figures` runs) writes a PNG and a PDF per theory
    figure of the registry, and nothing else; an unknown name is a one-line error."""
    names = ["t_fig4_parabola_flow", "t_fig10_scalar_system"]
    paths = theory_figures(tmp_path, fast=True, names=names, progress=False)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{x}" for n in names for x in ("png", "pdf")
    )
    assert set(names) <= set(THEORY_FIGURES)
    for path in paths:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")


def test_unknown_figure_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no figure 'fig99'") as err:
        make_figure("fig99", tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown theory figures"):
        theory_figures(tmp_path, names=["fig99"], progress=False)


def test_n_fig3_grid_and_trajectories_agree_and_differ_from_T7():
    """N2's shape portrait: the batched grid solve ends where a lone solve of the same
    grid point does (two computations); at eta = 0.1 T7 brings every surviving mode to T9's
    (p+, p+^2), an even split, while N2 keeps the shares apart."""
    data = _data("n_fig3_shape_portrait", etas=(0.1,), grid=25, t_end=30.0, points=11)
    h = Hyper(alpha_p=1.0, eta=0.1)
    for i, j in [(3, 17), (9, 7), (18, 12)]:
        p0, share0 = np.array([data.p0[j], data.p1]), np.array([data.share0[i], 0.0])
        share0[1] = 1.0 - share0[0]
        lone = normalised.integrate_modes(h, p0, share0, np.linspace(0.0, data.t_end, 31))
        assert lone.shape[-1, 0] == pytest.approx(data.share[0, i, j], abs=1e-4)
    both = (data.squared[0] > 0.05) & (data.squared[0] < 0.95)
    assert both.mean() > 0.5
    assert np.mean(np.abs(data.squared[0][both] - 0.5) < 0.02) > 0.9  # a few still moving
    assert data.share[0][both].std() > 0.2


def test_n_fig5_large_p_modes_lose_and_the_p_meet():
    """N2 on [T] Fig. 5's modes: without weight decay every p_j meets the common rest value
    (g_j = 0 for all j when the modes share tau and sigma2), and the mode started with the
    largest p ends with the smallest share of the spectrum (under T7 it would win)."""
    df = _data("n_fig5_mode_sweeps", etas=(0.0,), betas=(), t_end=30.0, step=1.0).table
    last = df[df.t == df.t.max()].sort_values("mode")
    assert last.p.max() - last.p.min() < 1e-3 * last.p.abs().max()
    assert last["shape"].idxmin() == last.index[-1]  # mode 5 started at p0 = 0.4
    np.testing.assert_allclose(last["shape"].sum(), 1.0)
