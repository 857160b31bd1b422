"""The theory engine: flows of linear BYOL exact in expectation (NumPy/SciPy/SymPy only).

Submodules: ``modes`` (T7-T10, one scalar system per eigen-mode), ``matrix`` (T1, T3-T6,
the full matrix flow), ``normalised`` (N1-N2, the flows of the cosine loss), ``sgd`` (the
minibatch algorithms T1 and N1 are the limits of), ``symbolic`` (SymPy derivations),
``solvers`` (the integrators and solution type they all share), ``rl`` (S1-S10,
self-predictive RL) and ``jepa`` (J1-J4, deep linear JEPA against MAE).
This package never imports torch.
"""

from linear_ssl.theory import jepa, matrix, modes, normalised, rl, sgd, solvers, symbolic
from linear_ssl.theory.params import Hyper

__all__ = ["Hyper", "jepa", "matrix", "modes", "normalised", "rl", "sgd", "solvers", "symbolic"]
