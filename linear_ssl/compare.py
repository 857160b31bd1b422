"""Deprecated: the bridge is ``linear_ssl.bridge`` now (seed, rule_flow, comparison, report,
linear_runs); ``linear-ssl compare`` lives in ``linear_ssl.cli``. This module re-exports the
old names for one release."""

from __future__ import annotations

import warnings
from pathlib import Path

from linear_ssl.bridge import (
    LOST_THRESHOLD,
    Comparison,
    Seed,
    aligned_init,
    compare_run,
    linear_record,
    parabola_fit,
    rule_flow,
    rule_from_config,
    rule_spectrum,
    seed_from_run,
    write_linear_run,
)

__all__ = [
    "LOST_THRESHOLD",
    "Comparison",
    "Seed",
    "aligned_init",
    "compare_cli",
    "compare_run",
    "linear_record",
    "parabola_fit",
    "rule_flow",
    "rule_from_config",
    "rule_spectrum",
    "seed_from_run",
    "write_linear_run",
]

warnings.warn(
    "linear_ssl.compare is deprecated: import linear_ssl.bridge instead",
    DeprecationWarning,
    stacklevel=2,
)


def compare_cli(run_dir: str | Path, out_dir: str | Path | None = None) -> int:
    """Deprecated: ``linear-ssl compare RUN [--out DIR]`` (``linear_ssl.cli.main``)."""
    from linear_ssl.cli import main

    return main(["compare", str(run_dir), *(["--out", str(out_dir)] if out_dir else [])])
