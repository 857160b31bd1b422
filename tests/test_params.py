"""Hyper and the T1 map from discrete training to the flow (linear_ssl.theory.params)."""

import math

import pytest

from linear_ssl.theory.params import Hyper

BAD_FIELDS = [
    ("alpha_p", 0.0),
    ("alpha_p", -1.0),
    ("eta", -1e-3),
    ("sigma2", -0.1),
    ("beta", 0.0),
    ("beta", -0.4),
    ("dt", 0.0),
    ("dt", -0.01),
] + [
    (field, bad)
    for field in ("alpha_p", "beta", "eta", "sigma2", "dt")
    for bad in (math.nan, math.inf, -math.inf)
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_t1_hyper_rejects_bad_field_with_one_line_message(field, value):
    """T1: every invalid Hyper field is a one-line ValueError naming that field."""
    with pytest.raises(ValueError) as err:
        Hyper(**{field: value})
    message = str(err.value)
    assert f"Hyper.{field}=" in message
    assert "\n" not in message


def test_t1_hyper_accepts_boundary_values():
    """T1: eta = 0, sigma2 = 0 and beta None (SimSiam) are valid."""
    h = Hyper(alpha_p=1.0, beta=None, eta=0.0, sigma2=0.0)
    assert h.simsiam
    assert not Hyper(beta=0.4).simsiam


def test_t1_from_training_torch_convention():
    """T1 (torch): dt = lr / (1 - m), alpha_p = plr / lr, beta = (1 - ema) / dt, eta = wd."""
    h = Hyper.from_training(lr=0.03, predictor_lr=0.06, ema=0.996, weight_decay=4e-4, momentum=0.9)
    assert h.dt == pytest.approx(0.3)
    assert h.alpha_p == pytest.approx(2.0)
    assert h.beta == pytest.approx(0.004 / 0.3)
    assert h.eta == pytest.approx(4e-4)


def test_t1_from_training_paper_convention_fig5():
    """T1 (paper) and [T] Fig. 5: step 0.01, ema 0.996, wd 4e-4 -> beta 0.4, eta 0.04."""
    h = Hyper.from_training(lr=0.01, ema=0.996, weight_decay=4e-4, convention="paper")
    assert h.dt == pytest.approx(0.01)
    assert h.beta == pytest.approx(0.4)
    assert h.eta == pytest.approx(0.04)
    assert h.alpha_p == pytest.approx(1.0)
    # lr * beta = 1 - ema and lr * eta = wd; momentum is ignored in this convention
    k = Hyper.from_training(lr=0.02, ema=0.99, weight_decay=1e-4, momentum=0.9, convention="paper")
    assert k.dt * k.beta == pytest.approx(0.01)
    assert k.dt * k.eta == pytest.approx(1e-4)


def test_t1_from_training_simsiam_and_sigma2():
    """T1: ema=None gives SimSiam (beta None); sigma2 passes through."""
    h = Hyper.from_training(lr=0.05, ema=None, sigma2=0.3)
    assert h.beta is None and h.sigma2 == 0.3 and h.dt == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum"),
        ({"lr": 0.1, "ema": 1.0}, "ema"),
        ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
        ({"lr": 0.1, "predictor_lr": -0.1}, "predictor_lr"),
        ({"lr": 0.1, "convention": "jax"}, "convention"),
    ],
)
def test_t1_from_training_rejects_bad_arguments(kwargs, name):
    """T1: a bad training setting is a one-line ValueError naming the argument."""
    with pytest.raises(ValueError, match=name) as err:
        Hyper.from_training(**kwargs)
    assert "\n" not in str(err.value)


def test_t1_time_of_step_round_trip():
    """T1: time_of_step(n) = n dt and step_of_time inverts it."""
    h = Hyper.from_training(lr=0.03, momentum=0.9)
    assert h.time_of_step(100) == pytest.approx(30.0)
    for step in (0, 1, 7, 12345):
        assert h.step_of_time(h.time_of_step(step)) == pytest.approx(step)


def test_t1_time_of_step_without_dt_is_an_error():
    """T1: mapping steps to time needs dt; without one the error says how to get it."""
    h = Hyper(alpha_p=1.0)
    for call in (h.time_of_step, h.step_of_time):
        with pytest.raises(ValueError, match="from_training"):
            call(10)


@pytest.mark.parametrize("value", ["1", b"1", [1.0], True, None, 1j])
@pytest.mark.parametrize("field", ["alpha_p", "eta", "sigma2"])
def test_t1_hyper_rejects_a_non_number_with_a_one_line_type_error(field, value):
    """Hyper(alpha_p='1') and friends: a TypeError naming the field and the type given,
    not a comparison failing inside __post_init__."""
    with pytest.raises(TypeError) as err:
        Hyper(**{field: value})
    message = str(err.value)
    assert message.startswith(f"Hyper.{field}={value!r} is a {type(value).__name__}")
    assert "\n" not in message


@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay", "predictor_lr", "ema"])
def test_t1_from_training_rejects_a_string_with_a_one_line_type_error(name):
    kwargs = {"lr": 0.1, name: "0.5"}
    with pytest.raises(TypeError, match=rf"Hyper.{name}='0.5' is a str") as err:
        Hyper.from_training(**kwargs)
    assert "\n" not in str(err.value)


def test_t1_hyper_accepts_numpy_and_integer_numbers():
    import numpy as np

    h = Hyper(alpha_p=np.float64(2.0), beta=1, eta=np.float32(0.5), sigma2=0)
    assert (h.alpha_p, h.beta, h.eta, h.sigma2) == (2.0, 1, 0.5, 0)
