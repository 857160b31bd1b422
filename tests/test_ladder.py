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
    assert "BY CONSTRUCTION" in by_construction(directpred)
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
