"""theory.md section 8: the protocol's scores, the recorder's N2 quantities, rung 1's
agreement bound (T1 with measured X, X'), old runs, and the ladder command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from linear_ssl.bridge import aligned_init, ladder, protocol, write_linear_run
from linear_ssl.diagnostics import EigenTracker
from linear_ssl.runs import load_run
from linear_ssl.theory import Hyper, matrix, sgd
from linear_ssl.train.recorder import WindowEstimate, window_record

# --------------------------------------------------------------------------- protocol


def _trajectories(sign: float = 1.0):
    """s_j(t) = exp(sign (r_j t + c_j t^2)): log shapes bend, so log-linear is not exact."""
    t = np.linspace(0.0, 3.0, 13)
    r = np.array([0.6, 0.2, -0.1, -0.5, 0.3])
    c = np.array([-0.08, 0.05, 0.1, -0.04, 0.0])
    return t, np.exp(sign * (t[:, None] * r + t[:, None] ** 2 * c))


def test_skill_is_one_for_a_perfect_flow_zero_for_persistence_negative_for_wrong_sign():
    t, meas = _trajectories()
    w = protocol.split_windows(np.arange(t.size) * 10)
    persistence = protocol.persistence_baseline(meas, w)
    loglinear = protocol.loglinear_baseline(t, meas, w)
    err_p = protocol.shape_error(persistence, meas[w.held])
    err_l = protocol.shape_error(loglinear, meas[w.held])
    assert err_p > 0 and err_l > 0
    # a perfect flow: skill 1 against both baselines
    assert protocol.skill(protocol.shape_error(meas[w.held], meas[w.held]), err_p) == 1.0
    # a flow that predicts persistence: skill 0 against persistence
    assert protocol.skill(protocol.shape_error(persistence, meas[w.held]), err_p) == pytest.approx(
        0.0, abs=1e-12
    )
    # growth of the wrong sign (same seed, every rate negated): below 0 against both
    _, wrong = _trajectories(sign=-1.0)
    err_wrong = protocol.shape_error(wrong[w.held], meas[w.held])
    assert protocol.skill(err_wrong, err_p) < 0
    assert protocol.skill(err_wrong, err_l) < 0


def test_windows_seed_fit_held_out_partition_the_records():
    w = protocol.split_windows(np.arange(16) * 20)
    assert w.seed == 0 and w.fit.tolist() == [1, 2, 3, 4, 5] and w.held[0] == 6
    assert w.held[-1] == 15
    with pytest.raises(ValueError, match="at least 3"):
        protocol.split_windows([0, 10])


def test_interval_is_students_t_and_agrees_needs_both_lower_ends_above_zero():
    mean, lo, hi = protocol.interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(protocol.interval([1.0])[1])
    assert protocol.agrees([0.5, 0.1, 0.9], [0.4, 0.05, 0.7])
    assert not protocol.agrees([0.5, 0.1, 0.9], [0.4, -0.05, 0.7])
    assert not protocol.agrees([0.5, math.nan, math.nan], [0.4, math.nan, math.nan])


def test_grow_shrink_auc_orders_and_reverses():
    run = np.array([1.0, -1.0, 0.5, -0.2])
    assert protocol.grow_shrink_auc(run * 3, run) == 1.0
    assert protocol.grow_shrink_auc(-run, run) == 0.0
    assert math.isnan(protocol.grow_shrink_auc(run, np.abs(run)))


def test_fit_globals_recovers_a_time_scale_and_caps_the_count():
    t = np.linspace(0.0, 3.0, 13)
    rates = np.array([0.6, 0.2, -0.1, -0.5, 0.3])
    target = np.exp(1.7 * t[:, None] * rates)
    (k,) = protocol.fit_globals(
        lambda x: protocol.shape_error(np.exp(x[0] * t[:, None] * rates), target),
        [1.0],
        [(0.2, 5.0)],
    )
    assert k == pytest.approx(1.7, abs=2e-3)
    with pytest.raises(ValueError, match="1 to 3"):
        protocol.fit_globals(lambda x: 0.0, [1.0] * 4, [(0, 1)] * 4)


# --------------------------------------------------------------------------- recorder


def test_recorder_sigma2_tau_and_a4_norms_equal_their_closed_forms_on_the_linear_model():
    """N2's operational form: sigma_j^2 = u^T (C11 - C12) u / s_j, tau_j = u^T C_to u / s_j
    with C12 = W X W^T, C11 = W (X+X') W^T, C_to = Wa X W^T; N_q^2 = tr(Wp C11 Wp^T)."""
    g = torch.Generator().manual_seed(0)
    n1, n2, batch, batches = 10, 4, 512, 64
    lam = torch.tensor([4.0, 2.0, 1.0, 0.5] + [0.1] * 6, dtype=torch.float64)
    X = torch.diag(lam)
    Xp = 0.3 * torch.eye(n1, dtype=torch.float64)
    W = torch.zeros(n2, n1, dtype=torch.float64)
    W[range(n2), range(n2)] = 1.0
    Wa = 0.7 * W
    Wp = torch.diag(torch.tensor([0.9, 0.6, 0.4, 0.2], dtype=torch.float64))
    est = WindowEstimate()
    for _ in range(batches):
        x = torch.randn(batch, n1, generator=g, dtype=torch.float64) * lam.sqrt()
        x1 = x + 0.3**0.5 * torch.randn(batch, n1, generator=g, dtype=torch.float64)
        x2 = x + 0.3**0.5 * torch.randn(batch, n1, generator=g, dtype=torch.float64)
        z1, z2, t1, t2 = x1 @ W.T, x2 @ W.T, x1 @ Wa.T, x2 @ Wa.T
        est.add(z1, z2, t1, t2, z1 @ Wp.T, z2 @ Wp.T)
    means = {k: v.numpy() for k, v in est.means().items()}
    rec = window_record(means, Wp.numpy(), EigenTracker())
    C12, C11 = (W @ X @ W.T).numpy(), (W @ (X + Xp) @ W.T).numpy()
    s_true = np.diag(C12)  # W picks the coordinates: eigenvectors e_j
    np.testing.assert_allclose(rec["mode12_s"], s_true, rtol=0.05)
    np.testing.assert_allclose(rec["mode12_sigma2"], 0.3 / s_true, rtol=0.1)
    np.testing.assert_allclose(rec["mode12_tau"], 0.7, rtol=0.05)
    np.testing.assert_allclose(rec["mode12_p"], np.diag(Wp.numpy()), rtol=1e-3)  # sampled u_j
    Nq2 = np.trace(Wp.numpy() @ C11 @ Wp.numpy().T)
    assert float(rec["N_q"]) ** 2 == pytest.approx(Nq2, rel=0.03)
    assert float(rec["N_a"]) ** 2 == pytest.approx(0.49 * np.trace(C11), rel=0.03)  # Wa = 0.7 W


# --------------------------------------------------------------------------- rung 1


def _gaussian_problem():
    rng = np.random.default_rng(0)
    n1, n2 = 12, 4
    A, B = rng.standard_normal((2, n1, n1))
    X, Xp = A @ A.T / n1 * 0.5, B @ B.T / n1 * 0.3
    W0 = 0.3 * rng.standard_normal((n2, n1))
    Wp0 = 0.5 * np.eye(n2) + 0.1 * rng.standard_normal((n2, n2))
    return X, Xp, W0, Wp0


@pytest.mark.parametrize("batch", [64, 256])
def test_rung1_sgd_agrees_with_t1_within_the_lr_batch_bound_and_not_with_xprime_zero(batch):
    """Gaussian 'images' with known X, X': SGD on the squared error against T1 from the
    same start; C12 = W X W^T within agreement_bound(dt, batch); with X' mis-measured as 0
    the same comparison fails the bound."""
    X, Xp, W0, Wp0 = _gaussian_problem()
    lr = 0.05
    run = sgd.simulate(
        None, W0, Wp0, W0, lr=lr, steps=400, batch=batch, X=X, Xp=Xp, ema=0.99,
        seeds=4, record_every=40,
    )  # fmt: skip
    C_run = np.einsum("rsij,jk,rslk->sril", run.W, X, run.W)
    bound = ladder.agreement_bound(run.h.dt, batch)
    for Xp_flow, ok in ((Xp, True), (0 * Xp, False)):
        sol = matrix.integrate(run.h, W0, Wp0, W0, run.t, X=X, Xp=Xp_flow)
        C_flow = ladder.correlation_along(sol.W, X)
        worst = max(ladder.flow_error(c, C_flow) for c in C_run)
        assert (worst < bound) is ok, (worst, bound)


def test_the_trainers_linear_rung_descends_t1_on_gaussian_views():
    """The trainer's rung 1 (PixelEncoder W, BYOL target Wa, trainable linear predictor
    Wp, the squared loss) on Gaussian views with known X, X': minus its gradient over a
    large batch is T1's dW/dt and dWp/dt (eta = 0: decay is the optimizer's) to sampling
    error, and with X' mis-set to 0 it is not."""
    from linear_ssl.train.config import load_config
    from linear_ssl.train.loop import build_model

    cfg = load_config(None, ladder.rung_config("linear", steps=10))
    model = build_model(cfg).double()
    pixels = cfg.model.pixels
    n1 = 3 * pixels * pixels
    g = torch.Generator().manual_seed(0)
    A = torch.randn(n1, n1, generator=g, dtype=torch.float64)
    X, Xp = A @ A.T / n1**2, 0.5 * torch.eye(n1, dtype=torch.float64) / n1
    with torch.no_grad():  # a target away from the online encoder, so Wa's term shows
        Wa = 0.7 * model.backbone.weight + 0.02 * torch.randn(
            model.backbone.weight.shape, generator=g, dtype=torch.float64
        )
        model.target_backbone.weight.copy_(Wa)
    root_X = torch.linalg.cholesky(X + 1e-12 * torch.eye(n1, dtype=torch.float64))
    for _ in range(8):  # 8 x 8192 pairs; features x = image / sqrt(n1) (pixel_features)
        x = torch.randn(8192, n1, generator=g, dtype=torch.float64) @ root_X.T
        v1, v2 = (x + Xp[0, 0].sqrt() * torch.randn(x.shape, generator=g, dtype=x.dtype)
                  for _ in range(2))  # fmt: skip
        views = [n1**0.5 * v.reshape(-1, 3, pixels, pixels) for v in (v1, v2)]
        model(*views).loss.backward()
    W, Wp = model.backbone.weight, model.predictor.net.weight
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.0, sigma2=0.0)
    arrays = [m.detach().numpy() for m in (W, Wp, model.target_backbone.weight)]
    for Xp_flow, ok in ((Xp, True), (0 * Xp, False)):
        dW, dWp, _ = matrix.vector_field(h, *arrays, X=X.numpy(), Xp=Xp_flow.numpy())
        for grad, rate in ((W.grad / 8, dW), (Wp.grad / 8, dWp)):
            error = np.linalg.norm(-grad.numpy() - rate) / np.linalg.norm(rate)
            assert bool(error < 0.1) is ok, error  # sampling error ~0.04 at 65k pairs


# --------------------------------------------------------------------------- old runs


def test_an_old_run_without_the_new_records_still_compares_and_names_what_is_missing(tmp_path):
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.0, sigma2=0.1)
    W0, Wp0, Wa0 = aligned_init(np.linspace(0.2, 1.0, 6), np.linspace(0.3, 0.9, 6), n1=8)
    run_dir = write_linear_run(
        tmp_path / "old", h, W0, Wp0, Wa0, lr=0.01, steps=300, batch=256, record_every=20
    )
    result = ladder.assess_run(run_dir)
    assert result["flow"] == "T7"
    assert any("C12/C11/C_to" in u for u in result["unavailable"])
    assert any("balance identity" in u for u in result["unavailable"])
    assert np.isfinite(result["skill_persistence"]) and np.isfinite(result["skill_loglinear"])
    assert result["time_scale"] == pytest.approx(1.0, abs=0.3)  # T7 is the linear model's flow


# --------------------------------------------------------------------------- the command


def test_ladder_command_rejects_bad_input_with_one_line(tmp_path, capsys):
    from linear_ssl.cli import main

    assert main(["ladder", "--out", str(tmp_path), "--rungs", "linear,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nope" in err
    assert main(["ladder", "--out", str(tmp_path), "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_ladder_rung1_end_to_end_writes_the_contract(tmp_path):
    from linear_ssl.cli import main

    out = tmp_path / "lad"
    code = main(
        ["ladder", "--out", str(out), "--rungs", "linear", "--seeds", "2", "--steps", "40",
         "--limit", "512"]
    )  # fmt: skip
    assert code == 0
    rows = json.loads((out / "ladder.json").read_text())
    (row,) = rows
    for key in ("skill_persistence", "skill_loglinear", "identity_error"):
        assert len(row[key]) == 3
    assert isinstance(row["agrees"], bool) and row["flow"] == "T1"
    assert row["settings"]["method"]["loss"] == "squared"
    assert row["flow_error"][0] < 1.0
    assert (out / "ladder.md").is_file() and (out / "ladder.png").is_file()


def test_closed_form_runs_say_their_agreement_is_built_in():
    """theory.md section 8: DirectPred's symmetry, alignment and parabola hold by
    construction, and every figure or table showing them says so."""
    from types import SimpleNamespace

    from linear_ssl.bridge.protocol import by_construction

    directpred = SimpleNamespace(
        config={"predictor": {"kind": "closed_form", "rule": "directpred"}}
    )
    assert "by construction (DirectPred)" in by_construction(directpred)
    assert "s ∝ p²" in by_construction(directpred)
    directcopy = SimpleNamespace(
        config={"predictor": {"kind": "closed_form", "rule": "directcopy"}}
    )
    assert "by construction (DirectCopy)" in by_construction(directcopy)
    assert "p²" not in by_construction(directcopy)  # R2 sets p ~ s, not R1's parabola
    lrp = SimpleNamespace(config={"predictor": {"kind": "closed_form", "rule": "lrp"}})
    assert by_construction(lrp) == ""  # R3 reads C_to: Wp need not be symmetric
    assert by_construction(SimpleNamespace(config={"predictor": {"kind": "linear"}})) == ""


def test_linear_encoder_with_squared_loss_has_t1s_gradient():
    """model.arch=linear, method.loss=squared: the trainer's loss is T1's J (the mean of
    the two symmetric terms), so its autograd gradient equals theory.sgd's closed form."""
    from linear_ssl.train.config import load_config
    from linear_ssl.train.loop import build_model
    from linear_ssl.train.nets import pixel_features

    cfg = load_config(
        None,
        ["model.arch=linear", "model.pixels=4", "model.projector_out=6", "method.loss=squared",
         "predictor.kind=linear"],
    )  # fmt: skip
    method = build_model(cfg).double()
    torch.manual_seed(0)
    v1, v2 = torch.randn(2, 32, 3, 4, 4, dtype=torch.float64)
    out = method(v1, v2)
    out.loss.backward()
    W = method.backbone.weight.detach().numpy()
    Wp = method.predictor.matrix.detach().numpy()
    Wa = method.target_backbone.weight.detach().numpy()
    x1, x2 = (pixel_features(v, 4).numpy()[None] for v in (v1, v2))
    gW1, gWp1 = sgd._gradients(W[None], Wp[None], Wa[None], x1, x2)
    gW2, gWp2 = sgd._gradients(W[None], Wp[None], Wa[None], x2, x1)
    np.testing.assert_allclose(method.backbone.weight.grad.numpy(), (gW1 + gW2)[0] / 2, rtol=1e-10)
    grad_wp = method.predictor.net.weight.grad.numpy()
    np.testing.assert_allclose(grad_wp, (gWp1 + gWp2)[0] / 2, rtol=1e-10)


# --------------------------------------------------------------------------- scoring a run


def _write_run(path, h_cfg, W, Wp, Wa, X, Xp, mu, steps, *, loss, weights, noise=0.0):
    """A run directory whose records are what the recorder would measure with no sampling
    noise (``window_record`` of the exact moments of W, Wp, Wa on data X, X', mean mu; A4's
    spreads 0), the window's C12 perturbed by ``noise`` (relative, symmetric); with
    ``weights`` the encoder's W, Wa too (the pixel rungs' records)."""
    from linear_ssl.runs import RunWriter

    lr, momentum, ema, wd = h_cfg
    writer = RunWriter(path)
    writer.write_config(
        f"name: fake\nmethod: {{name: byol, ema: {ema}, loss: {loss}}}\n"
        f"predictor: {{kind: linear}}\noptim: {{lr: {lr}, momentum: {momentum}, "
        f"weight_decay: {wd}}}\nbatch_size: 128\nrecord: {{every: 10, batches: 1}}\n"
    )
    tracker, rng = EigenTracker(), np.random.default_rng(5)
    for i, step in enumerate(steps):
        Q = Wp[i] @ W[i]
        C12 = W[i] @ X @ W[i].T
        E = rng.standard_normal(C12.shape)
        E = (E + E.T) / 2
        qq, aa = np.trace(Q @ (X + Xp) @ Q.T), np.trace(Wa[i] @ (X + Xp) @ Wa[i].T)
        means = {
            "C12": C12 + noise * np.linalg.norm(C12) * E / np.linalg.norm(E),
            "C11": W[i] @ (X + Xp) @ W[i].T,
            "C_to": Wa[i] @ X @ W[i].T,
            "mean_f": W[i] @ mu,
            "mean_fa": Wa[i] @ mu,
            "qq": qq, "aa": aa, "qa": np.trace(Q @ X @ Wa[i].T),
            "norm_q": np.sqrt(qq), "norm_q2": qq, "norm_a": np.sqrt(aa), "norm_a2": aa,
            "cos": 1.0, "cos2": 1.0,
        }  # fmt: skip
        rec = window_record(means, Wp[i], tracker)
        if weights:
            rec.update(W_online=W[i], W_target=Wa[i])
        writer.write_spectra(int(step), rec)
    return path


def test_rung1_is_scored_on_the_exact_c12_and_the_window_estimate_beside_it(tmp_path):
    """Rung 1 (T1 with X, X' measured): a run that IS T1's trajectory, its window C12
    estimate off by 30 % sampling noise. Scored on the exact C12 = W X W^T from its recorded
    weights, flow and run agree to the integrator (flow_error ~ 0, skill 1 at time scale 1);
    the window estimate's flow error is the noise."""
    X, Xp, W0, Wp0 = _gaussian_problem()
    mu = 0.2 * np.ones(X.shape[0])
    cfg = (0.05, 0.0, 0.99, 1e-3)
    h = Hyper.from_training(lr=0.05, ema=0.99, weight_decay=1e-3, momentum=0.0)
    steps = np.arange(0, 401, 25)
    sol = matrix.integrate(h, W0, Wp0, W0, h.time_of_step(steps), X=X + np.outer(mu, mu), Xp=Xp)
    run_dir = _write_run(
        tmp_path / "t1", cfg, sol.W, sol.Wp, sol.Wa, X + np.outer(mu, mu), Xp, mu, steps,
        loss="squared", weights=True, noise=0.3,
    )  # fmt: skip
    cov = {"X": X + np.outer(mu, mu), "Xp": Xp, "mu": mu}
    result = ladder.assess_run(run_dir, cov)
    assert result["flow"] == "T1" and result["seed_step"] == 0
    assert result["flow_error"] < 2e-3  # exact: integrator and interpolation only
    assert result["flow_error_window"] > 0.1  # the window's noise
    assert result["time_scale"] == pytest.approx(1.0, abs=0.02)
    assert result["skill_persistence"] > 0.95 and result["skill_loglinear"] > 0.95
    assert result["skill_persistence_window"] < result["skill_persistence"]


def _n2_records(h, steps, p0, s0, tau0, sigma2):
    """N2's trajectory (``normalised.integrate_modes``, its (p, s, tau) form) from steps[1],
    as the diagonal linear model it reduces to (W = diag(sqrt s), Wa = diag(tau sqrt s),
    Wp = diag(p), X = I, X' = diag(sigma2)); record 0 has Wp far off C12's eigenvectors
    (an initialisation: A1/A3 fail, the modes carry a small share of E||q||^2)."""
    from linear_ssl.theory import normalised

    t = h.time_of_step(steps[1:] - steps[1])
    sol = normalised.integrate_modes(h, p0, s0, t, tau0, sigma2, c_loss=ladder.C_LOSS)
    assert sol.all_ok
    w = np.sqrt(sol.s)
    W = np.concatenate([w[:1], w])[:, :, None] * np.eye(len(s0))
    Wa = np.concatenate([(sol.tau * w)[:1], sol.tau * w])[:, :, None] * np.eye(len(s0))
    Wp = np.concatenate([sol.p[:1], sol.p])[:, :, None] * np.eye(len(s0))
    rng = np.random.default_rng(1)
    A = rng.standard_normal(Wp[0].shape)
    Wp[0] = 0.05 * np.eye(len(s0)) + (A - A.T)  # diagonal 0.05, mostly off the diagonal
    return W, Wp, Wa, sol


def test_n2_is_seeded_where_the_modes_carry_e_q2_and_reproduces_a_known_n2_trajectory(tmp_path):
    """N2 (A1/A3/A4): record 0's Wp is off C12's eigenvectors, so its modes' N_q is far
    below the measured one; the seed is the first record where the modes carry half the
    centred E||q||^2 (record 1), and from there the ladder's N2 reproduces the trajectory
    the records were written from (skill 1, time scale 1), as the output says."""
    h = Hyper.from_training(lr=0.05, ema=0.99, weight_decay=1e-3, momentum=0.0)
    steps = np.r_[0, np.arange(10, 311, 20)]
    sigma2 = np.array([0.2, 0.5, 0.3, 1.0, 0.4])
    W, Wp, Wa, _ = _n2_records(
        h, steps, [0.9, 0.6, 0.5, 0.3, 0.2], [1.0, 0.6, 0.3, 0.2, 0.1], 0.8, sigma2
    )
    k = len(sigma2)
    run_dir = _write_run(
        tmp_path / "n2", (0.05, 0.0, 0.99, 1e-3), W, Wp, Wa, np.eye(k), np.diag(sigma2),
        np.zeros(k), steps, loss="normalised", weights=False,
    )  # fmt: skip
    result = ladder.assess_run(run_dir)
    assert result["flow"] == "N2"
    assert result["seed_step"] == 10 and "record 1 (step 10)" in result["seed"]
    assert result["seed_share"] == pytest.approx(1.0, rel=1e-6)  # diagonal from record 1
    assert result["err_flow"] < 1e-3
    assert result["time_scale"] == pytest.approx(1.0, abs=0.01)
    assert result["skill_persistence"] > 0.99 and result["skill_loglinear"] > 0.99


def test_n2_in_mode_amplitudes_is_n1_on_diagonal_matrices_past_tau_s_blow_up():
    """N2 in (p, w, wa) equals N1 on W = diag(w), Wa = diag(wa), Wp = diag(p), X = I,
    X' = diag(sigma2) (A1, A3, A4 exact there), also where a mode with p_j < 0 dies and the
    (p, s, tau) form's tau_j = wa_j / w_j runs to infinity (integrate_modes stops)."""
    from linear_ssl.theory import normalised

    h = Hyper(alpha_p=1.0, beta=0.02, eta=0.0)
    p, s, tau = np.array([0.9, 0.5, -0.4]), np.array([1.0, 0.4, 0.01]), np.array([0.5, 0.6, 0.9])
    sigma2 = np.array([0.3, 0.5, 2.0])
    t = np.linspace(0.0, 20.0, 21)
    stopped = normalised.integrate_modes(
        h, p, s, t, tau, sigma2, c_loss=ladder.C_LOSS, on_failure="ignore"
    )
    assert not stopped.all_ok  # tau of the dying mode blows up
    amp = ladder._n2_amplitudes(h, p, s, tau, sigma2, t)
    assert np.all(np.isfinite(amp))
    w = np.sqrt(s)
    n1 = normalised.integrate(
        h, np.diag(w), np.diag(p), np.diag(tau * w), t, Xp=np.diag(sigma2), c_loss=ladder.C_LOSS
    )
    s_n1 = np.diagonal(n1.W, axis1=1, axis2=2) ** 2
    np.testing.assert_allclose(amp, s_n1, rtol=1e-4, atol=1e-9 * s.max())


# --------------------------------------------------------------------------- by construction


def _rule_run(path, kind: str):
    """The same linear-model records (Wp = DirectPred(F_hat) along a T1 trajectory) under a
    closed-form DirectPred config or a trainable linear predictor's."""
    from linear_ssl import bridge, predictors
    from linear_ssl.runs import RunWriter

    h = Hyper.from_training(lr=0.01, ema=0.99, weight_decay=0.01, momentum=0.0, sigma2=0.3)
    steps = np.arange(0, 601, 100)
    W0, _, Wa0 = aligned_init([1.0, 0.4, 0.1], [0.5, 0.3, 0.2], 0.7, n1=4, seed=2)
    sol = matrix.integrate(
        h, W0, None, Wa0, h.time_of_step(steps).astype(float), predictor="directpred", eps=0.1
    )
    predictor = (
        "{kind: closed_form, rule: directpred, params: {eps: 0.1}, freq: 1}"
        if kind == "closed_form"
        else "{kind: linear}"
    )
    writer = RunWriter(path)
    writer.write_config(
        f"name: {kind}\nmethod: {{name: byol, ema: 0.99}}\npredictor: {predictor}\n"
        "optim: {lr: 0.01, momentum: 0.0, weight_decay: 0.01}\ntheory: {sigma2: 0.3}\n"
    )
    rule = predictors.get_rule("directpred", eps=0.1)
    X, Xp, tracker = np.eye(4), 0.3 * np.eye(4), EigenTracker()
    for i, step in enumerate(steps):
        Wp = rule(sol.W[i] @ (X + Xp) @ sol.W[i].T)
        record = bridge.linear_record(sol.W[i], Wp, sol.Wa[i], X, Xp, tracker)
        writer.write_spectra(int(step), record)
    return path


def test_directpred_report_and_figures_say_by_construction_a_trained_predictor_does_not(tmp_path):
    """theory.md section 8: with DirectPred (R1) Wp's symmetry, its alignment with F_hat and
    the parabola hold by construction; the compare report, [T] Fig. 2 on the run and the
    overlay label them so; the same records with a trainable predictor carry no label."""
    import matplotlib.pyplot as plt

    from linear_ssl.bridge import compare_run
    from linear_ssl.figures import run_overlay, run_t_fig2

    label = "by construction (DirectPred)"
    for kind, expected in (("closed_form", True), ("linear", False)):
        run_dir = _rule_run(tmp_path / kind, kind)
        report = compare_run(run_dir).to_markdown()
        rows = [line for line in report.splitlines() if line.startswith("| parabola_r2 ")]
        assert (label in rows[0]) is expected
        assert (label in report) is expected
        fig = run_t_fig2.draw(run_t_fig2.data(run_dir))
        titles = " ".join(ax.get_title() for ax in fig.axes)
        assert (label in titles) is expected
        plt.close(fig)
        fig = run_overlay.draw(run_overlay.data(run_dir))
        texts = " ".join(ax.get_title() for ax in fig.axes)
        texts += " ".join(t.get_text() for leg in fig.legends for t in leg.get_texts())
        assert (label in texts) is expected
        plt.close(fig)
    assert protocol.built_in(load_run(tmp_path / "closed_form")) == (
        "symmetry",
        "alignment",
        "parabola",
    )


# --------------------------------------------------------------------------- X and X'


class _NoisyViews:
    """An augmentation with known X': each view is the image in [0, 1] plus i.i.d.
    N(0, noise^2) per pixel, so X' = noise^2 / n1 I and X = E[x x^T] / n1 exactly."""

    def __init__(self, noise: float) -> None:
        self.noise = noise

    def two_views(self, images):
        x = images.double() / 255.0
        return tuple(x + self.noise * torch.randn_like(x) for _ in range(2))


def test_measured_x_and_xprime_are_those_of_the_whole_set_not_of_its_first_rows():
    """T1's X = E[xbar xbar^T] and X' = E[Var(x'|x)] (theory.md section 1) of a set sorted
    by 'class' (dark images first, bright ones last): a random sample of `limit` images
    gives the whole set's closed form; the first `limit` rows would be off by ~4x."""
    torch.manual_seed(0)
    pixels, n = 4, 2048
    n1 = 3 * pixels * pixels
    levels = torch.cat([torch.full((n // 2,), 40), torch.full((n // 2,), 200)])
    images = levels[:, None, None, None] + torch.randint(-30, 31, (n, 3, pixels, pixels))
    images = images.clamp(0, 255).to(torch.uint8)
    noise = 0.2
    cov = ladder.measure_covariances(images, _NoisyViews(noise), pixels, views=8, limit=512)
    x = images.double().flatten(1).numpy() / 255.0 / np.sqrt(n1)
    X_all, X_first = x.T @ x / n, x[:512].T @ x[:512] / 512
    assert np.trace(X_first) < 0.3 * np.trace(X_all)  # the trap the sample must avoid
    np.testing.assert_allclose(np.trace(cov["X"]), np.trace(X_all), rtol=0.05)
    np.testing.assert_allclose(cov["mu"], x.mean(0), atol=0.01)
    np.testing.assert_allclose(np.diag(cov["Xp"]), noise**2 / n1, rtol=0.05)
    off = cov["Xp"] - np.diag(np.diag(cov["Xp"]))
    assert np.abs(off).max() < 0.1 * noise**2 / n1


def test_run_ladder_takes_one_number_or_one_per_rung_and_names_a_missing_rung(tmp_path):
    with pytest.raises(ValueError, match="steps gives no value for rung.*linear-cosine"):
        ladder.run_ladder(tmp_path, rungs=["linear", "linear-cosine"], steps={"linear": 10})
    with pytest.raises(ValueError, match="--steps 2 of rung linear-cosine"):
        ladder.run_ladder(
            tmp_path, rungs=["linear", "linear-cosine"], steps={"linear": 10, "linear-cosine": 2}
        )
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
