"""The bridge: the eigen-mode flow of theory.md section 2 seeded from a training run.

``compare_run(RUN)`` reads a run directory (``linear_ssl.runs``), takes the theory's inputs
from it (``seed``), integrates T7 or a closed-form rule's flow (``rule_flow``) and puts the
prediction beside the measurement (``comparison``, printed by ``report``).
``write_linear_run`` (``linear_runs``) writes a linear-model SGD run in the trainer's
format, the bridge's closed-loop check.

Modules (imports point down): comparison -> seed, rule_flow, report; linear_runs stands
alone. None of them imports figures, the CLI or torch.
"""

from linear_ssl.bridge.comparison import LOST_THRESHOLD, Comparison, compare_run, parabola_fit
from linear_ssl.bridge.linear_runs import (
    aligned_init,
    linear_method_facts,
    linear_record,
    write_linear_run,
)
from linear_ssl.bridge.rule_flow import rule_flow, rule_from_config, rule_spectrum
from linear_ssl.bridge.seed import Seed, seed_from_run

__all__ = [
    "LOST_THRESHOLD",
    "Comparison",
    "Seed",
    "aligned_init",
    "compare_run",
    "linear_method_facts",
    "linear_record",
    "parabola_fit",
    "rule_flow",
    "rule_from_config",
    "rule_spectrum",
    "seed_from_run",
    "write_linear_run",
]
