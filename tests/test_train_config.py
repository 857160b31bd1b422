"""Trainer configs: schema, experiments, overrides and one-line errors on bad input."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from linear_ssl.train.config import CONFIGS_DIR, find_experiment, load_config  # noqa: E402


def _one_line_error(exc_info, *words: str) -> None:
    message = str(exc_info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_every_experiment_config_loads_and_validates_with_paper_hyperparameters():
    """theory.md section 5: the reference runs use lr 0.03, momentum 0.9, wd 4e-4, batch 128,
    EMA 0.996 (BYOL); DirectPred rho 0.3 eps 0.1 (R1)."""
    paths = sorted(CONFIGS_DIR.rglob("*.yaml"))
    names = {p.relative_to(CONFIGS_DIR).as_posix() for p in paths}
    for needed in (
        "smoke.yaml",
        "cifar10/directpred.yaml",
        "cifar10/lrp.yaml",
        "stl10/directpred_freq5.yaml",
        "stl10/table6_sweep.yaml",
    ):
        assert needed in names
    for path in paths:
        if path.name == "table6_sweep.yaml":
            continue
        cfg = load_config(path)
        if path.parent.name in ("cifar10", "stl10"):
            assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (0.03, 0.9, 4e-4)
            assert cfg.batch_size == 128
            if cfg.method.name == "byol":
                assert cfg.method.ema == 0.996
            if cfg.predictor.kind == "closed_form" and cfg.predictor.rule == "directpred":
                assert cfg.predictor.rho == 0.3 and cfg.predictor.params["eps"] == 0.1


def test_short_names_and_paths_find_the_same_experiment():
    assert find_experiment("smoke") == CONFIGS_DIR / "smoke.yaml"
    assert find_experiment("cifar10/directpred") == CONFIGS_DIR / "cifar10" / "directpred.yaml"
    assert find_experiment(str(CONFIGS_DIR / "smoke.yaml")) == CONFIGS_DIR / "smoke.yaml"
    directpred = CONFIGS_DIR / "cifar10" / "directpred.yaml"
    assert find_experiment("cifar10/directpred.yaml") == directpred
    assert find_experiment("experiments/cifar10/directpred.yaml") == directpred  # old home
    with pytest.raises(FileNotFoundError) as err:
        find_experiment("no_such_experiment")
    _one_line_error(err, "no_such_experiment")


def test_dotted_overrides_reach_the_schema():
    cfg = load_config("smoke", ["optim.lr=0.05", "predictor.params.eps=0.01", "seed=3"])
    assert cfg.optim.lr == 0.05 and cfg.predictor.params.eps == 0.01 and cfg.seed == 3
    cfg = load_config("smoke", ["predictor.rule=lrp", "predictor.params={reg: 0.01}"])
    assert dict(cfg.predictor.params) == {"reg": 0.01}  # a mapping replaces the file's


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["optim.lrr=0.1"], ["lrr"]),  # misspelt key (struct mode)
        (["optimizer.lr=0.1"], ["optimizer"]),
        (["optim.lr"], ["optim.lr", "key=value"]),
        (["optim.lr=0"], ["optim.lr"]),
        (["optim.lr=-0.1"], ["optim.lr"]),
        (["optim.lr=abc"], ["lr"]),
        (["method.ema=1.0"], ["method.ema"]),
        (["method.ema=-0.1"], ["method.ema"]),
        (["method.target_init=twin"], ["method.target_init", "'copy' or 'independent'"]),
        (["optim.momentum=1"], ["optim.momentum"]),
        (["predictor.rho=1.5"], ["predictor.rho"]),
        (["predictor.freq=0"], ["predictor.freq"]),
        (["predictor.rule=directpredd"], ["predictor.rule", "directpredd"]),
        (["predictor.params.epss=0.1"], ["epss"]),
        (["predictor.params.eps=nan"], ["eps"]),
        (["predictor.kind=mystery"], ["predictor.kind"]),
        (["method.name=simclr"], ["method.name"]),
        (["batch_size=0"], ["batch_size"]),
        (["augment.crop_scale=[0.5,0.2]"], ["augment.crop_scale"]),
        (["optim.name=adam"], ["optim.name"]),
    ],
)
def test_bad_config_is_a_one_line_value_error_naming_the_key(overrides, words):
    with pytest.raises(ValueError) as err:
        load_config("smoke", overrides)
    _one_line_error(err, *words)


def test_bad_device_is_a_one_line_value_error():
    torch = pytest.importorskip("torch")
    from linear_ssl.train.loop import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device") as err:
        resolve_device("gpu0")
    _one_line_error(err, "gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_misspelt_key_in_a_yaml_file_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lr: 0.03\n  momentun: 0.9\n")
    with pytest.raises(ValueError) as err:
        load_config(path)
    _one_line_error(err, "momentun")


def test_table6_sweep_expands_to_the_rho_by_eps_grid():
    """[T] Table 6: every (rho, eps) point of the sweep is a valid run of its base config."""
    from linear_ssl.train.config import expand_sweep

    points = expand_sweep("stl10/table6_sweep")
    assert len(points) == 3 * 4
    cfgs = [load_config(base, overrides) for base, overrides in points]
    grid = {(c.predictor.rho, c.predictor.params.eps) for c in cfgs}
    assert grid == {(r, e) for r in (0.3, 0.5, 0.7) for e in (0.0, 0.01, 0.1, 0.5)}
    assert len({c.run_dir for c in cfgs}) == 12
