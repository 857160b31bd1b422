"""linear_ssl: the dynamics of self-predictive learning (BYOL, SimSiam, DirectPred, ...).

See README.md for a tour. The theory engine (``linear_ssl.theory``), the predictor
rules (``linear_ssl.predictors``) and diagnostics (``linear_ssl.diagnostics``) need
only NumPy/SciPy; the trainer (``linear_ssl.train``) needs the ``torch`` extra.
"""

__version__ = "0.1.0"
