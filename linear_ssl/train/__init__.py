"""The trainer (torch): BYOL-family training on real images, recording spectra as it goes.

    from linear_ssl.train import train, resume, load_config
    run_dir = train(load_config("smoke", ["optim.lr=0.05"]))
    resume(run_dir)            # continue a stopped run to the end of its config

``train_from_cli`` and ``evaluate_run`` back ``linear-ssl train`` and ``linear-ssl eval``.
"""

from linear_ssl.train.config import TrainConfig, load_config
from linear_ssl.train.loop import (
    CollapseError,
    NonFiniteLossError,
    Trainer,
    evaluate_run,
    resume,
    train,
    train_from_cli,
)

__all__ = [
    "CollapseError",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "evaluate_run",
    "load_config",
    "resume",
    "train",
    "train_from_cli",
]
