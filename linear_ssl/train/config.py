"""Typed training configuration: OmegaConf structured configs from dataclasses.

A config is the ``TrainConfig`` schema below, merged with a YAML file (a path, or the name
of a config shipped in linear_ssl/configs/) and dotted overrides (``optim.lr=0.05``). The
schema is in struct mode, so a misspelt key is an error rather than silently ignored;
``validate`` turns every invalid value into a one-line ``ValueError`` naming the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from linear_ssl.runs import read_yaml

#: The named experiment configs, package data of linear_ssl (a checkout or an installed wheel).
CONFIGS_DIR = Path(str(files("linear_ssl") / "configs"))
EXPERIMENTS_DIR = CONFIGS_DIR  # the name this directory had when it lived in experiments/


@dataclass
class DataConfig:
    """The data set (see linear_ssl.train.data.load_dataset)."""

    name: str = "embedded"  # cifar10 | cifar100 | stl10 | imagefolder | embedded
    root: str | None = None  # directory (or zip for imagefolder); unused for embedded
    train_split: str = "train"  # stl10 pre-training: "train+unlabeled"
    test_split: str = "test"
    test_root: str | None = None  # where the evaluation splits live (None: root)
    eval_train_split: str = "train"  # the linear probe's training split
    download: bool = False
    cache_dir: str | None = None
    limit: int | None = None  # train on a fixed random subset of this size (quick runs)
    stream: bool = False  # imagefolder read by DataLoader workers, not resident (stream.py)
    workers: int = 8  # DataLoader worker processes when stream (0: decode in the main process)


@dataclass
class AugmentConfig:
    recipe: str = "cifar10"  # cifar10 | stl10 | byol (theory.md section 5)
    image_size: int = 32
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # RandomResizedCrop


@dataclass
class ModelConfig:
    """Backbone and projector of theory.md section 5, or a pixel encoder (section 8)."""

    arch: str = "resnet"  # resnet | linear | mlp (pixel encoders: nets.pixel_encoder)
    pixels: int = 8  # linear / mlp: images average-pooled to pixels x pixels (n1 = 3 p^2)
    depth: int = 18
    stem: str = "cifar"  # cifar | imagenet
    width: int = 64
    projector_hidden: int = 512
    projector_out: int = 128
    bn_affine: bool = False  # projector BatchNorm affine ([T]: False; BYOL ImageNet: True)
    sync_bn: bool = False  # BatchNorm statistics of the global batch across ranks (BYOL)


@dataclass
class MethodConfig:
    name: str = "byol"  # a name in linear_ssl.train.methods.METHODS: byol | simsiam
    ema: float = 0.996  # BYOL target EMA gamma_a (T1: beta = (1 - ema) / dt)
    target_init: str = "copy"  # copy | independent (the reference code's own init)
    loss: str = "normalised"  # normalised (-2 cos, two terms summed) | squared (T1's J)


@dataclass
class PredictorConfig:
    """The predictor head; ``kind`` is a name in linear_ssl.train.methods.PREDICTORS.

    none: identity (the collapse baseline); linear: trainable Wp (bias, symmetric);
    mlp: 2-layer (projector-shaped); closed_form: Wp set by the R-rule ``rule`` from the
    running F_hat / C_to (rho) after the optimiser step every ``freq`` steps, with
    ``params`` passed to ``linear_ssl.predictors.get_rule`` (eps, variant, c, alpha, norm,
    reg, n, source, ridge (R9), ema (R10, the predictor EMA; default off), partitions and
    partition_seed (R1's partition variant, ``predictors.PartitionedRule``)).
    """

    kind: str = "closed_form"
    rule: str = "directpred"
    params: dict[str, Any] = field(default_factory=dict)
    rho: float = 0.3  # R1 EMA rate of F_hat / C_to (first batch stored as is)
    freq: int = 1  # apply the rule every freq steps; SGD steps on Wp in between
    bias: bool = False
    symmetric: bool = False
    hidden_dim: int = 512  # mlp kind
    lr: float | None = None  # predictor learning rate (None: optim.lr)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | lars
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 4e-4
    schedule: str = "none"  # none | cosine (with linear warm-up)
    warmup_steps: int = 0
    lars_eta: float = 0.001  # LARS trust coefficient


@dataclass
class RecordConfig:
    every: int = 50  # spectra record every k steps (0: off)
    batches: int = 8  # C12 / C11 / C_to of a record: the mean over its last k batches
    log_every: int = 10  # metrics row every k steps
    rho: float | None = None  # EMA rate of the recorder's F_hat / C_to (None: predictor.rho)
    progress: bool = True  # tqdm progress bar
    collapse_floor: float = 2.0  # flag a run whose projector RankMe (E9) stays below (0: off)
    collapse_window: int = 500  # ... at every record of a stretch this many steps long
    stop_on_collapse: bool = False  # stop (state failed) once flagged


@dataclass
class CheckpointConfig:
    every: int = 500  # steps between checkpoints (the last step always gets one)
    keep: int = 2  # most recent checkpoints kept


@dataclass
class SpeedConfig:
    """One device, fast (linear_ssl.train.speed)."""

    amp: str = "fp32"  # fp32 | bf16 (torch.autocast; not "off": YAML reads off as false)
    channels_last: bool = False
    # false | true / "encoders" (nn.Module.compile() of the encoders) | "step" (the whole
    # forward step, augmentation + both encoders + loss, as one torch.compile; CUDA graphs)
    compile: Any = False
    fused: bool = True  # fused SGD on CUDA, foreach elsewhere


@dataclass
class DistributedConfig:
    """Under torchrun (linear_ssl.train.distributed); ignored in one process."""

    backend: str = "auto"  # auto (nccl on CUDA, gloo otherwise) | nccl | gloo
    global_augment: bool = False  # every rank augments the whole batch, keeps its rows


@dataclass
class EvalConfig:
    at_end: bool = False  # run linear probe + kNN after training (writes eval.json)
    probe_epochs: int = 50
    knn_k: int = 200
    batch_size: int = 512  # images per batch of the feature pass
    crop_fraction: float = 0.875  # streamed data: central crop of the image resized to S / it
    online_probe: bool = False  # linear probe trained alongside (train/probe.py), logged
    online_probe_lr: float = 3e-4  # its Adam learning rate


@dataclass
class TrainConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    seed: int = 0
    epochs: int = 1
    max_steps: int | None = None  # stop after this many steps (None: epochs decide)
    batch_size: int = 128
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    run_dir: str | None = None  # None: runs/<name>-<timestamp>


def _one_line(err: Exception) -> str:
    """OmegaConf messages span several lines (full_key, object_type...): keep the first,
    prefixed by the offending key."""
    first = str(err).strip().splitlines()[0]
    key = getattr(err, "full_key", None)
    return f"{key}: {first}" if key else first


def find_experiment(name_or_path: str | Path) -> Path:
    """A config path as given, or the name of a shipped config ("smoke", "cifar10/directpred",
    "cifar10/directpred.yaml") in CONFIGS_DIR; "experiments/NAME.yaml", the configs' old
    place in the checkout, still names NAME."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = path.as_posix().removeprefix("experiments/").removesuffix(".yaml")
    candidate = CONFIGS_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"config {str(name_or_path)!r} not found: give a YAML path or the name of a config in "
        f"{CONFIGS_DIR} (e.g. 'smoke', 'cifar10/directpred')"
    )


def _merge_dotlist(cfg: DictConfig, items: list[str]) -> DictConfig:
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(items)) if items else cfg


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> DictConfig:
    """Schema defaults <- YAML file (path or experiment name) <- overrides, validated.

    ``overrides`` is a list of dotted ``key=value`` strings or a (nested) dict. A mapping
    value replaces the whole entry (``predictor.params={reg: 0.01}`` drops the file's
    eps), any other value merges. A key not in the schema raises a one-line ValueError;
    so does an invalid value.
    """
    cfg = OmegaConf.structured(TrainConfig)
    try:
        if path is not None:
            loaded = read_yaml(find_experiment(path))
            loaded.pop("method_facts", None)  # a run's config.yaml: derived, not an input
            cfg = OmegaConf.merge(cfg, loaded)
        if isinstance(overrides, dict):
            cfg = OmegaConf.merge(cfg, OmegaConf.create(overrides))
        elif overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise ValueError(f"override {bad[0]!r} is not key=value (e.g. optim.lr=0.05)")
            pending: list[str] = []  # plain key=value items, merged at once (a merge copies)
            for item in overrides:
                key, value = item.split("=", 1)
                if not value.lstrip().startswith("{"):
                    pending.append(item)
                    continue
                cfg, pending = _merge_dotlist(cfg, pending), []
                if OmegaConf.select(cfg, key) is None:  # a whole mapping replaces, not merges
                    raise ValueError(f"override {item!r}: {key} is not a config key")
                OmegaConf.update(cfg, key, OmegaConf.create(value), merge=False)
            cfg = _merge_dotlist(cfg, pending)
    except OmegaConfBaseException as err:
        raise ValueError(f"invalid config: {_one_line(err)}") from None
    validate(cfg)
    return cfg


RESUME_KEYS = (
    "optim.lr",
    "predictor.lr",
    "epochs",
    "max_steps",
    "record.every",
    "record.log_every",
    "record.progress",
    "checkpoint.every",
    "checkpoint.keep",
)  # what a resume may change (docs/run_format.md, "config history")


def check_resume_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` when every one is ``key=value`` with a key in RESUME_KEYS; otherwise a
    one-line ValueError naming the first that is not."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if "=" not in item or key not in RESUME_KEYS:
            raise ValueError(
                f"resume override {item!r} is not allowed: a resumed run may change only "
                f"{', '.join(RESUME_KEYS)} (key=value); start a new run to change anything else"
            )
    return overrides


def run_config_yaml(cfg: DictConfig) -> str:
    """A run's config.yaml: the resolved config, then the ``method_facts`` block of its
    method class (``Method.facts()``; docs/run_format.md), which ``load_config`` drops."""
    from linear_ssl.train.methods import METHODS

    facts = OmegaConf.create({"method_facts": METHODS[cfg.method.name].facts(cfg.method.loss)})
    return OmegaConf.to_yaml(cfg, resolve=True) + OmegaConf.to_yaml(facts)


def as_config(config: DictConfig | TrainConfig | dict | str | Path) -> DictConfig:
    """Accept a DictConfig, a TrainConfig, a plain dict or a YAML path/name; validate."""
    if isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, DictConfig):
        return load_config(None, OmegaConf.to_container(config, resolve=True))
    if isinstance(config, TrainConfig):
        return load_config(None, OmegaConf.to_container(OmegaConf.structured(config)))
    return load_config(None, dict(config))


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"config {key}={value!r} is invalid: it must be {allowed}")


def validate(cfg: DictConfig) -> None:
    """One-line ValueError naming the first invalid key (registries checked by name), so
    that a bad config fails before a run directory or the data are touched."""
    from linear_ssl.train.augment import RECIPES
    from linear_ssl.train.data import DATASETS
    from linear_ssl.train.methods import METHODS, PREDICTORS
    from linear_ssl.train.nets import DEPTHS, STEMS

    def positive(key: str, value: Any, integer: bool = False) -> None:
        ok = value is not None and math.isfinite(value) and value > 0
        _require(ok, key, value, "a positive integer" if integer else "> 0")

    positive("optim.lr", cfg.optim.lr)
    if cfg.predictor.lr is not None:
        positive("predictor.lr", cfg.predictor.lr)
    _require(0 <= cfg.optim.momentum < 1, "optim.momentum", cfg.optim.momentum, "in [0, 1)")
    _require(cfg.optim.weight_decay >= 0, "optim.weight_decay", cfg.optim.weight_decay, ">= 0")
    _require(cfg.optim.name in ("sgd", "lars"), "optim.name", cfg.optim.name, "'sgd' or 'lars'")
    _require(
        cfg.optim.schedule in ("none", "cosine"),
        "optim.schedule",
        cfg.optim.schedule,
        "'none' or 'cosine'",
    )
    _require(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", cfg.optim.warmup_steps, ">= 0")
    _require(
        cfg.method.name in METHODS, "method.name", cfg.method.name, f"one of {sorted(METHODS)}"
    )
    METHODS[cfg.method.name].check_config(cfg.method)
    loss = cfg.method.loss
    _require(loss in ("normalised", "squared"), "method.loss", loss, "'normalised' or 'squared'")
    arch = cfg.model.arch
    _require(arch in ("resnet", "linear", "mlp"), "model.arch", arch, "resnet, linear or mlp")
    positive("model.pixels", cfg.model.pixels, integer=True)
    kind = cfg.predictor.kind
    _require(kind in PREDICTORS, "predictor.kind", kind, f"one of {sorted(PREDICTORS)}")
    _require(0 <= cfg.predictor.rho < 1, "predictor.rho", cfg.predictor.rho, "in [0, 1)")
    positive("predictor.freq", cfg.predictor.freq, integer=True)
    positive("predictor.hidden_dim", cfg.predictor.hidden_dim, integer=True)
    PREDICTORS[kind].check_config(cfg.predictor)
    if cfg.record.rho is not None:
        _require(0 <= cfg.record.rho < 1, "record.rho", cfg.record.rho, "in [0, 1)")
    positive("record.batches", cfg.record.batches, integer=True)
    _require(cfg.record.every >= 0, "record.every", cfg.record.every, ">= 0 (0: off)")
    positive("record.log_every", cfg.record.log_every, integer=True)
    floor, window = cfg.record.collapse_floor, cfg.record.collapse_window
    _require(floor >= 0, "record.collapse_floor", floor, ">= 0 (0: off)")
    _require(window >= 0, "record.collapse_window", window, ">= 0 (steps)")
    if cfg.record.stop_on_collapse and not (cfg.record.every > 0 and floor > 0):
        raise ValueError(
            "record.stop_on_collapse=true needs records and a floor: set record.every > 0 "
            "and record.collapse_floor > 0"
        )
    positive("checkpoint.every", cfg.checkpoint.every, integer=True)
    positive("checkpoint.keep", cfg.checkpoint.keep, integer=True)
    positive("batch_size", cfg.batch_size, integer=True)
    _require(cfg.epochs >= 0, "epochs", cfg.epochs, ">= 0")
    if cfg.max_steps is not None:
        _require(cfg.max_steps >= 0, "max_steps", cfg.max_steps, ">= 0 or null")
    if cfg.data.limit is not None:
        positive("data.limit", cfg.data.limit, integer=True)
    _require(cfg.data.workers >= 0, "data.workers", cfg.data.workers, ">= 0")
    _require(cfg.data.name in DATASETS, "data.name", cfg.data.name, f"one of {list(DATASETS)}")
    recipe = cfg.augment.recipe
    _require(recipe in RECIPES, "augment.recipe", recipe, f"one of {list(RECIPES)}")
    _require(cfg.model.depth in DEPTHS, "model.depth", cfg.model.depth, f"one of {list(DEPTHS)}")
    _require(cfg.model.stem in STEMS, "model.stem", cfg.model.stem, f"one of {list(STEMS)}")
    for key in ("model.width", "model.projector_hidden", "model.projector_out"):
        positive(key, OmegaConf.select(cfg, key), integer=True)
    positive("augment.image_size", cfg.augment.image_size, integer=True)
    lo_hi = list(cfg.augment.crop_scale)
    _require(
        len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1] <= 1,
        "augment.crop_scale",
        lo_hi,
        "[min, max] with 0 < min <= max <= 1",
    )
    positive("eval.probe_epochs", cfg.eval.probe_epochs, integer=True)
    positive("eval.knn_k", cfg.eval.knn_k, integer=True)
    positive("eval.batch_size", cfg.eval.batch_size, integer=True)
    fraction = cfg.eval.crop_fraction
    _require(0 < fraction <= 1, "eval.crop_fraction", fraction, "in (0, 1]")
    positive("eval.online_probe_lr", cfg.eval.online_probe_lr)
    if cfg.eval.online_probe and cfg.data.stream:
        raise ValueError(
            "eval.online_probe=true needs resident data (the labels): set data.stream=false "
            "or eval.online_probe=false"
        )
    _require(cfg.speed.amp in ("fp32", "bf16"), "speed.amp", cfg.speed.amp, "'fp32' or 'bf16'")
    c = cfg.speed.compile
    _require(
        isinstance(c, bool) or c in ("encoders", "step"),
        "speed.compile",
        c,
        "false, true (= encoders), encoders or step",
    )
    device_ok = re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.device) is not None
    _require(device_ok, "device", cfg.device, "auto, cpu, mps, cuda or cuda:N")
    backends = ("auto", "nccl", "gloo")
    b = cfg.distributed.backend
    _require(b in backends, "distributed.backend", b, f"one of {list(backends)}")


def expand_sweep(path: str | Path) -> list[tuple[Path, list[str]]]:
    """A sweep file (``base``, ``grid`` of key -> values) -> (base config, overrides) per point.

    Each point gets ``run_dir=runs/<name>-<key><value>...`` unless run_dir is in the grid.
    Every point is validated, so a bad grid fails before any run starts.
    """
    import itertools

    sweep = OmegaConf.to_container(read_yaml(find_experiment(path)))
    if not isinstance(sweep, dict) or "base" not in sweep or "grid" not in sweep:
        raise ValueError(f"sweep {path} must hold 'base' (a config) and 'grid' (key: [values])")
    base = find_experiment(sweep["base"])
    keys = list(sweep["grid"])
    points = []
    for values in itertools.product(*(sweep["grid"][k] for k in keys)):
        overrides = [f"{k}={v}" for k, v in zip(keys, values, strict=True)]
        tag = "-".join(f"{k.rsplit('.', 1)[-1]}{v}" for k, v in zip(keys, values, strict=True))
        overrides.append(f"run_dir=runs/{sweep.get('name', base.stem)}-{tag}")
        load_config(base, overrides)
        points.append((base, overrides))
    return points
