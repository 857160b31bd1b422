"""The theory engine: flows of linear BYOL exact in expectation (NumPy/SciPy/SymPy only).

Submodules: ``modes`` (T7-T10, one scalar system per eigen-mode), ``matrix`` (T1, T3-T6,
the full matrix flow), ``sgd`` (the minibatch algorithm T1 is the limit of), ``symbolic``
(SymPy derivations), ``solvers`` (the integrators and solution type they all share).
This package never imports torch.
"""

from linear_ssl.theory import matrix, modes, sgd, solvers, symbolic
from linear_ssl.theory.params import Hyper

__all__ = ["Hyper", "matrix", "modes", "sgd", "solvers", "symbolic"]
