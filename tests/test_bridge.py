"""linear_ssl.bridge: the flow seeded from a run (T7, T8, T9, the closed-form rule flow).

The closed loop: a linear model trained by minibatch SGD (theory.sgd), written as a run
directory, fed back to the bridge, reproduces T7's prediction, better as lr shrinks (T1).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from linear_ssl import bridge, diagnostics, predictors
from linear_ssl.cli import main
from linear_ssl.runs import RunWriter, load_run
from linear_ssl.theory import Hyper, matrix

H = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.1)
S0, P0, TAU0 = [1.0, 0.5, 0.2, 0.05], [0.6, 0.4, 0.3, 0.1], 0.8
FLOW_TIME = 10.0


def _linear_run(path, lr, h=H, s0=S0, p0=P0, tau0=TAU0, flow_time=FLOW_TIME, batch=512):
    W0, Wp0, Wa0 = bridge.aligned_init(s0, p0, tau0, n1=6, seed=1)
    steps = int(round(flow_time / lr))
    return bridge.write_linear_run(
        path, h, W0, Wp0, Wa0, lr=lr, steps=steps, batch=batch, record_every=steps // 10
    )


@pytest.fixture(scope="module")
def closed_loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("linear")
    return {lr: bridge.compare_run(_linear_run(root / f"lr{lr}", lr)) for lr in (0.02, 0.005)}


def test_t1_round_trip_and_seed_are_the_linear_model_inputs(closed_loop):
    """T1: Run.hyper() of a written linear run gives back h; the seed (with the sigma2
    conversion of F_hat = W (X + X') W^T) is the aligned initial spectrum exactly."""
    c = closed_loop[0.02]
    for key in ("alpha_p", "beta", "eta", "sigma2"):
        assert getattr(c.hyper, key) == pytest.approx(getattr(H, key), rel=1e-12)
    assert c.hyper.dt == pytest.approx(0.02)
    order = np.argsort(c.seed.modes)
    np.testing.assert_allclose(c.seed.s[order], S0, rtol=1e-10)
    np.testing.assert_allclose(c.seed.p[order], P0, rtol=1e-10)
    np.testing.assert_allclose(c.seed.tau, TAU0, rtol=1e-10)


def test_t7_closed_loop_sgd_run_matches_the_flow_and_error_falls_with_lr(closed_loop):
    """T7 + T1: SGD on the aligned linear model follows T7 to ~1e-2, and better at smaller lr."""
    coarse, fine = (closed_loop[lr].agreement for lr in (0.02, 0.005))
    assert coarse["flow"] == "t7"
    for q in ("s", "p", "tau"):
        assert coarse[f"err_{q}_median"] < 0.02
        assert fine[f"err_{q}_median"] < 0.6 * coarse[f"err_{q}_median"]
    assert np.all(np.isfinite(closed_loop[0.005].table["predicted"]))
    # A1-A3 hold up to SGD noise: the reported violations are small
    assert fine["asymmetry_max"] < 0.01 and fine["offdiag_last"] < 1e-4
    assert fine["tau_spread"] < 1e-10


def test_table_at_t0_predicted_equals_measured(closed_loop):
    """The tidy table: at the seed step the flow's state is the measured one (all of s, p, tau)."""
    c = closed_loop[0.02]
    at_t0 = c.table[c.table["step"] == c.seed.step]
    assert set(at_t0["quantity"]) == {"s", "p", "tau"}
    assert len(at_t0) == 3 * len(c.seed.modes)
    np.testing.assert_allclose(at_t0["predicted"], at_t0["measured"], rtol=1e-9)
    assert list(c.table.columns) == ["step", "mode", "quantity", "measured", "predicted"]


def test_t9_collapse_basin_against_lost_modes(tmp_path):
    """T9 (SimSiam, eta = 0.2): p- = (1 - sqrt(0.2)) / 2 = 0.276; a mode seeded on the
    parabola below it is lost by the run and by the flow, the one above is kept."""
    h = Hyper(alpha_p=1.0, beta=None, eta=0.2, sigma2=0.0)
    p0 = [0.6, 0.1]
    s0 = [p**2 for p in p0]  # on T8's parabola
    run = _linear_run(tmp_path / "run", 0.02, h, s0, p0, 1.0, flow_time=40.0, batch=256)
    c = bridge.compare_run(run)
    pm = c.per_mode.sort_values("mode")
    assert pm["collapsed_t9"].tolist() == [False, True]
    assert pm["lost_run"].tolist() == [False, True]
    assert pm["lost_flow"].tolist() == [False, True]
    assert c.agreement["collapse_agreement"] == 1.0
    assert c.agreement["lost_at_t0"] == 0.0  # lost during the run, not before it
    np.testing.assert_allclose(c.seed.tau, 1.0)


def test_parabola_fit_t8():
    """T8: exact s = k p^2 data gives back k with R^2 = 1; a noisy cloud gives R^2 < 1."""
    p = np.linspace(0.1, 1.0, 7)
    k, r2 = bridge.parabola_fit(p, 2.5 * p**2)
    assert k == pytest.approx(2.5) and r2 == pytest.approx(1.0)
    _, r2_noisy = bridge.parabola_fit(p, 2.5 * p**2 + np.array([0.3, -0.3] * 3 + [0.3]))
    assert r2_noisy < 0.99


def test_rule_spectrum_r1_r2_match_the_rules_on_a_rotated_matrix():
    """R1 / R2 / R3 on commuting inputs: rule_spectrum(diag) equals u_j^T rule(U diag U^T) u_j."""
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    s = np.array([2.0, 1.0, 0.4, 0.1, 0.01])
    tau = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    for name, params in [("directpred", {"eps": 0.1}), ("directcopy", {"eps": 0.05})]:
        rule = predictors.get_rule(name, **params)
        Wp = rule(U @ np.diag(1.1 * s) @ U.T)
        expected = np.einsum("ij,ik,kj->j", U, Wp, U)
        np.testing.assert_allclose(bridge.rule_spectrum(rule, s, tau, 0.1), expected, atol=1e-10)
    rule = predictors.get_rule("lrp")
    np.testing.assert_allclose(bridge.rule_spectrum(rule, s, tau, 0.0), tau, rtol=1e-10)


def test_rule_flow_directpred_matches_a_hand_written_r1_flow():
    """The reduced flow of R1 (code variant): d log s/dt = 2 Delta with p_j = sqrt(s_j/s_max)
    + eps, dtau/dt = beta (1 - tau) - tau Delta, integrated independently by solve_ivp."""
    h = Hyper(alpha_p=1.0, beta=0.3, eta=0.02, sigma2=0.0)
    s0, tau0, eps = np.array([1.0, 0.3, 0.05]), np.array([0.5, 0.6, 0.7]), 0.1
    t = np.linspace(0.0, 5.0, 11)
    sol = bridge.rule_flow(h, predictors.get_rule("directpred", eps=eps), s0, t, tau0)

    def rhs(_t, y):
        s, tau = np.exp(y[:3]), y[3:]
        p = np.sqrt(s / s.max()) + eps
        delta = p * (tau - p) - h.eta
        return np.concatenate([2 * delta, h.beta * (1 - tau) - tau * delta])

    ref = solve_ivp(rhs, (0, 5), np.r_[np.log(s0), tau0], t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.s, np.exp(ref.y[:3].T), rtol=1e-4)
    np.testing.assert_allclose(sol.tau, ref.y[3:].T, rtol=1e-4)
    np.testing.assert_allclose(sol.p, np.sqrt(sol.s / sol.s.max(1, keepdims=True)) + eps)


def test_rule_flow_closed_loop_against_the_matrix_flow_with_directpred(tmp_path):
    """R1 + T1: the matrix flow with Wp = directpred(W (X+X') W^T) at every instant
    (matrix.integrate(predictor=...)), written as a closed-form run, is what compare's
    reduced rule flow predicts, mode by mode (sigma2 > 0 exercises the F_hat conversion)."""
    lr, steps = 0.01, np.arange(0, 1001, 100)
    h = Hyper.from_training(lr=lr, ema=0.99, weight_decay=0.01, momentum=0.0, sigma2=0.3)
    W0, _, Wa0 = bridge.aligned_init([1.0, 0.4, 0.1], [0.5, 0.3, 0.2], 0.7, n1=4, seed=2)
    sol = matrix.integrate(
        h, W0, None, Wa0, h.time_of_step(steps).astype(float), predictor="directpred", eps=0.1
    )
    writer = RunWriter(tmp_path / "cf")
    writer.write_config(
        "name: cf\nmethod: {name: byol, ema: 0.99}\n"
        "predictor: {kind: closed_form, rule: directpred, params: {eps: 0.1}, freq: 1}\n"
        "optim: {lr: 0.01, momentum: 0.0, weight_decay: 0.01}\ntheory: {sigma2: 0.3}\n"
    )
    rule = predictors.get_rule("directpred", eps=0.1)
    X, Xp, tracker = np.eye(4), 0.3 * np.eye(4), diagnostics.EigenTracker()
    for i, step in enumerate(steps):
        W, Wa = sol.W[i], sol.Wa[i]
        Wp = rule(W @ (X + Xp) @ W.T)
        writer.write_spectra(int(step), bridge.linear_record(W, Wp, Wa, X, Xp, tracker))
    c = bridge.compare_run(tmp_path / "cf")
    assert c.flow == "rule:directpred"
    for q in ("s", "p", "tau"):
        assert c.agreement[f"err_{q}_median"] < 1e-5
    # T7 (p free) is not this run's flow: it misses by far
    assert bridge.compare_run(tmp_path / "cf", flow="t7").agreement["err_p_median"] > 0.05
    # the flow moved: s of the weakest mode changed by more than 10 %
    s = c.table[(c.table["quantity"] == "s") & (c.table["mode"] == c.seed.modes[-1])]
    assert abs(s["measured"].iloc[-1] / s["measured"].iloc[0] - 1) > 0.1
    # R1 puts p on s = s_max (p - eps)^2, not on T8's parabola s = p^2 / alpha_p
    assert c.agreement["parabola_scale"] != pytest.approx(1.0, rel=0.1)


def test_missing_spectra_and_bad_t0_give_one_line_errors(tmp_path, capsys, closed_loop):
    writer = RunWriter(tmp_path / "bare")
    writer.write_config("name: bare\noptim: {lr: 0.1, momentum: 0.0, weight_decay: 0.0}\n")
    with pytest.raises(ValueError, match="no spectra records") as err:
        bridge.compare_run(tmp_path / "bare")
    assert "\n" not in str(err.value)
    assert main(["compare", str(tmp_path / "bare")]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "no spectra records" in message
    mlp = RunWriter(tmp_path / "mlp")
    mlp.write_config("name: mlp\npredictor: {kind: mlp}\n")
    mlp.write_spectra(10, {"mode_s": np.ones(3), "mode_tau": np.ones(3)})
    with pytest.raises(ValueError, match=r"records no mode_p \(predictor.kind='mlp'\)"):
        bridge.compare_run(tmp_path / "mlp")
    run = closed_loop[0.02].run
    with pytest.raises(ValueError, match="not a record step"):
        bridge.compare_run(run, t0_step=7)
    with pytest.raises(ValueError, match="last record"):
        bridge.compare_run(run, t0_step=int(run.spectra.steps[-1]))
    with pytest.raises(FileNotFoundError):
        bridge.compare_run(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="sigma2=-1.0 is invalid"):
        bridge.compare_run(run, sigma2=-1.0)
    with pytest.raises(ValueError, match="flow='rule' needs a closed-form"):
        bridge.compare_run(run, flow="rule")


def test_modes_selection_and_markdown(closed_loop):
    """modes=k keeps the k largest seeded s_j; the printed table names every agreement key."""
    run = closed_loop[0.02].run
    c = bridge.compare_run(run, modes=2)
    np.testing.assert_allclose(np.sort(c.seed.s), [0.5, 1.0], rtol=1e-10)
    text = str(c)
    for key in ("err_s_median", "parabola_r2", "commutator_slope", "collapse_agreement"):
        assert f"| {key} |" in text


def test_compare_cli_writes_the_overlay(closed_loop, tmp_path, capsys):
    assert main(["compare", str(closed_loop[0.02].run.path), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "err_s_median" in out
    for suffix in ("png", "pdf"):
        assert (tmp_path / "figs" / f"overlay.{suffix}").stat().st_size > 1000
    assert load_run(closed_loop[0.02].run.path).config["theory"]["linear_model"] is True


def test_t1_torch_convention_with_momentum_closed_loop(tmp_path):
    """T1: heavy-ball SGD (momentum 0.8) follows T7 at dt = lr / (1 - m) (torch convention);
    the paper's looser reading (dt = lr, momentum ignored) misses the same run."""
    lr, momentum = 0.004, 0.8
    W0, Wp0, Wa0 = bridge.aligned_init(S0, P0, TAU0, n1=6, seed=1)
    steps = int(round(FLOW_TIME * (1 - momentum) / lr))
    run = bridge.write_linear_run(
        tmp_path / "mom", H, W0, Wp0, Wa0, lr=lr, momentum=momentum, steps=steps, batch=512,
        record_every=steps // 10,
    )  # fmt: skip
    torch_like = bridge.compare_run(run).agreement
    paper = bridge.compare_run(run, convention="paper").agreement
    assert torch_like["dt"] == pytest.approx(lr / (1 - momentum))
    for q in ("s", "p", "tau"):
        assert torch_like[f"err_{q}_median"] < 0.01
        assert paper[f"err_{q}_median"] > 0.3
