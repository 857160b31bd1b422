"""Minibatch SGD on sampled data against its slow limit, the matrix flow T1."""

import dataclasses

import numpy as np
import pytest

from linear_ssl.theory import matrix, sgd
from linear_ssl.theory.params import Hyper

N1, N2 = 4, 3
FLOW_TIME = 2.0


def _problem(eta=0.05):
    """A small non-isotropic BYOL problem: its flow h, initial weights, X and X'."""
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(N1, N1)), rng.normal(size=(N1, N1))
    X = A @ A.T / N1 + 0.2 * np.eye(N1)
    Xp = B @ B.T / (4 * N1)
    W0 = 0.7 * rng.normal(size=(N2, N1))
    Wp0 = 0.5 * rng.normal(size=(N2, N2))
    Wa0 = 0.5 * rng.normal(size=(N2, N1))
    h = Hyper(alpha_p=1.5, beta=0.5, eta=eta)
    return h, W0, Wp0, Wa0, X, Xp


def _error(run, h):
    """Max deviation of the seed-averaged run from the flow h over recorded times and weights."""
    _, W0, Wp0, Wa0, X, Xp = _problem()
    t = h.time_of_step(run.steps)
    sol = matrix.integrate(h, W0, Wp0, Wa0, t, X, Xp)
    return max(
        np.abs(getattr(run, k).mean(axis=1) - getattr(sol, k)).max() for k in ("W", "Wp", "Wa")
    )


def _run(dt, momentum, symmetric_loss=False, eta=0.05):
    h, W0, Wp0, Wa0, X, Xp = _problem(eta)
    steps = int(round(FLOW_TIME / dt))
    return sgd.simulate(
        h, W0, Wp0, Wa0, lr=dt * (1 - momentum), steps=steps, batch=64, X=X, Xp=Xp,
        momentum=momentum, seeds=128, seed=0, record_every=steps // 4,
        symmetric_loss=symmetric_loss,
    )  # fmt: skip


@pytest.mark.parametrize(
    "momentum, symmetric_loss, dts",
    [
        (0.0, False, (0.08, 0.04, 0.02)),
        (0.9, False, (0.02, 0.01, 0.005)),
        (0.0, True, (0.08, 0.04, 0.02)),
    ],
    ids=["momentum0", "momentum0.9", "symmetric-loss"],
)
def test_T1_sgd_converges_to_the_flow_linearly_in_lr(momentum, symmetric_loss, dts):
    """T1, torch convention: SGD with lr = dt (1 - m), predictor_lr = alpha_p lr,
    ema = 1 - beta dt, weight decay eta, averaged over 128 seeds, approaches
    matrix.integrate(h) with an error ~ dt (log-log slope 1) as lr shrinks; with momentum 0.9
    the flow time of a step is lr / (1 - m). The symmetrised loss has the same flow."""
    h = _problem()[0]
    runs = [_run(dt, momentum, symmetric_loss) for dt in dts]
    for run, dt in zip(runs, dts, strict=True):
        assert dataclasses.replace(run.h, dt=None) == h and run.h.dt == pytest.approx(dt)
    errors = [_error(run, run.h) for run in runs]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert np.all(np.diff(errors) < 0), errors
    assert 0.75 < slope < 1.25, (slope, errors)
    assert errors[-1] < 0.05


def test_T1_paper_convention_is_off_with_momentum():
    """T1: [T]'s loose reading (dt = lr, beta lr = 1 - ema) misplaces a momentum-0.9 run by
    O(1), even without weight decay, and its error does not shrink with lr, unlike the torch
    convention's (at momentum 0 and no weight decay the two conventions coincide)."""
    same = [Hyper.from_training(0.01, 0.02, 0.99, convention=c) for c in ("torch", "paper")]
    assert same[0] == same[1]
    dts = (0.02, 0.005)
    torch_errors, paper_errors = [], []
    for dt in dts:
        run = _run(dt, 0.9, eta=0.0)
        torch_errors.append(_error(run, run.h))
        paper = Hyper.from_training(
            run.lr, run.predictor_lr, run.ema, run.weight_decay, run.momentum, convention="paper"
        )
        paper_errors.append(_error(run, paper))
    assert min(paper_errors) > 0.3
    assert paper_errors[1] > 0.8 * paper_errors[0]
    assert paper_errors[1] > 10 * torch_errors[1]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("beta", [0.5, None], ids=["byol", "simsiam"])
def test_T1_training_hyper_inverts_from_training(momentum, beta):
    """T1: the per-step settings that simulate derives from h map back to h."""
    h = Hyper(alpha_p=2.0, beta=beta, eta=0.01, sigma2=0.0)
    lr = 0.01
    settings = sgd.training_hyper(h, lr, momentum)
    back = Hyper.from_training(lr, momentum=momentum, **settings)
    assert back.dt == pytest.approx(lr / (1 - momentum))
    assert back.alpha_p == pytest.approx(h.alpha_p) and back.eta == pytest.approx(h.eta)
    assert back.beta is None if beta is None else back.beta == pytest.approx(beta)
    run = sgd.simulate(
        h, np.eye(2), np.eye(2), np.eye(2), lr=lr, steps=1, batch=1, momentum=momentum
    )
    assert run.predictor_weight_decay * run.predictor_lr == pytest.approx(h.eta * lr)


def test_runs_are_seeded_and_simsiam_targets_the_online_weights():
    """Reproducible for a seed; seeds are independent runs; SimSiam's Wa is W."""
    h, W0, Wp0, _, X, Xp = _problem()
    simsiam = dataclasses.replace(h, beta=None)
    kwargs = dict(lr=0.05, steps=6, batch=8, X=X, Xp=Xp, seeds=3, record_every=2)
    a = sgd.simulate(simsiam, W0, Wp0, None, seed=1, **kwargs)
    b = sgd.simulate(simsiam, W0, Wp0, None, seed=1, **kwargs)
    c = sgd.simulate(simsiam, W0, Wp0, None, seed=2, **kwargs)
    assert a.W.shape == (4, 3, N2, N1) and a.Wp.shape == (4, 3, N2, N2)
    np.testing.assert_array_equal(a.steps, [0, 2, 4, 6])
    np.testing.assert_allclose(a.t, a.steps * 0.05)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.allclose(a.W[-1], c.W[-1])
    assert not np.allclose(a.W[-1, 0], a.W[-1, 1])
    np.testing.assert_array_equal(a.Wa, a.W)


def test_bad_settings_raise_one_line_errors():
    h, W0, Wp0, Wa0, _, _ = _problem()
    cases = [
        (dict(h=h, ema=0.99), "either h or the training settings"),
        (dict(h=dataclasses.replace(h, beta=200.0)), "exceeds 1"),
        (dict(h=dataclasses.replace(h, dt=0.3)), "must agree"),
        (dict(h=h, steps=0), "steps=0"),
        (dict(h=h, Wa0=np.ones((N2, N1 + 1))), "Wa0 has shape"),
    ]
    for overrides, message in cases:
        kwargs = {**dict(h=h, W0=W0, Wp0=Wp0, Wa0=Wa0, lr=0.01, steps=2, batch=4), **overrides}
        with pytest.raises(ValueError, match=message) as err:
            sgd.simulate(
                kwargs.pop("h"), kwargs.pop("W0"), kwargs.pop("Wp0"), kwargs.pop("Wa0"), **kwargs
            )
        assert "\n" not in str(err.value)
