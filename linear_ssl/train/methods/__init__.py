"""Methods (BYOL, SimSiam) and predictor heads behind two registries.

Adding a method or a predictor kind is one file in this package: a class decorated
with ``@register_method("name")`` or ``@register_predictor("name")``, imported below.
Configs select them by name (``method.name``, ``predictor.kind``).
"""

from linear_ssl.train.methods import (  # noqa: E402,F401  (register methods)  # noqa: E402,F401  (register predictor kinds)
    byol,
    closed_form,
    identity,
    linear,
    mlp,
    simsiam,
)
from linear_ssl.train.methods.base import (
    METHODS,
    PREDICTORS,
    Method,
    PredictorHead,
    StepOutput,
    build_method,
    build_predictor,
    register_method,
    register_predictor,
    regression_loss,
    symmetric_loss,
)

__all__ = [
    "METHODS",
    "PREDICTORS",
    "Method",
    "PredictorHead",
    "StepOutput",
    "build_method",
    "build_predictor",
    "register_method",
    "register_predictor",
    "regression_loss",
    "symmetric_loss",
]
