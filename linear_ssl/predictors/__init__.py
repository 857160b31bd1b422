"""Closed-form predictors R1-R10 (theory.md section 3), written once for NumPy and torch.

Every function takes NumPy arrays or torch tensors (CPU or GPU, float32 or float64) and
returns the same type: the code goes through ``array_api_compat.array_namespace`` and the
namespace's ``linalg`` extension. Only the symmetric eigensolver (``eigh``) is used.

Conventions (theory.md): column vectors, f = W x (online), f_a = Wa x (target), and

- ``F`` = C_oo = E[f f^T], the online correlation (DirectPred's F_hat), symmetric PSD;
- ``C_to`` = E[f_a f^T], the target-online cross-correlation (f_a of one view, f of the other).

The predictor acts as ``Wp @ f``. [E] writes row-major latents Z (batch x d) and
predictions ``Z P``: its matrices are the transposes of ours. Translated once, here:
[E]'s Z^T Z is our F, its Sigma = Z^T Z' is our C_to^T, and its P is our Wp^T. Matrix
functions (square roots) commute with the transpose, so [E]'s P = Sigma^(1/2) reads
Wp = C_to^(1/2) in our convention; its optimum P = (Z^T Z)^-1 Z^T Z' reads
Wp = C_to C_oo^-1 (R3).

Which input each rule takes (``source`` of the registry, see ``get_rule``):

- R1 DirectPred and R2 DirectSet / DirectCopy ([T], [W]): F.
- R3 LRP and R4 Neumann ([E]): both F (= C_oo) and C_to.
- R5 Visser, R6 Newton-Schulz, R7 NS^2, R8 Stiefel ([E]): [E]'s Sigma, which we read as
  the cross-correlation C_to by default (R8 orthogonalises Sigma through Sigma^T Sigma, so
  Sigma is not symmetric: the cross term; and R4 without its second term is "DirectCopy on
  C_to"); ``source="F"`` applies the same rule to F instead (then R6 is DirectPred's
  square root computed without an eigendecomposition).

The modules: ``rules`` (R1-R9, each with the spec the registry is built from),
``registry`` (``get_rule``, ``PredictorRule``, ``PartitionedRule``), ``estimates``
(``RunningCorrelation``, ``PartitionedCorrelation``), ``linalg`` (what the rules share).

The trusted path: the rules' input checks read values on the host, which on a GPU stalls
the step. Inside ``DeferredChecks.collect(step)`` they are recorded on the device instead
and raised later by ``raise_if_failed()`` (the trainer does it at its log steps). The
matmul-only rules (R2 with alpha = 1, R4-R8) are then free of host synchronisation; R1,
R2 with alpha != 1 and R3 are not, since torch's ``eigh`` and ``solve`` check their own
convergence flags on the host (``benchmarks/README.md``, predictors).
"""

from linear_ssl._arrays import DeferredChecks
from linear_ssl.predictors.estimates import PartitionedCorrelation, RunningCorrelation
from linear_ssl.predictors.linalg import spectral_radius
from linear_ssl.predictors.registry import (
    PartitionedRule,
    PredictorRule,
    available_rules,
    get_rule,
    needs_cross,
)
from linear_ssl.predictors.rules import (
    directcopy,
    directpred,
    directset,
    lrp,
    neumann,
    newton_schulz,
    ns2,
    ridge,
    stiefel,
    visser,
)

__all__ = [
    "DeferredChecks",
    "PartitionedCorrelation",
    "PartitionedRule",
    "PredictorRule",
    "RunningCorrelation",
    "available_rules",
    "directcopy",
    "directpred",
    "directset",
    "get_rule",
    "lrp",
    "needs_cross",
    "neumann",
    "newton_schulz",
    "ns2",
    "ridge",
    "spectral_radius",
    "stiefel",
    "visser",
]
