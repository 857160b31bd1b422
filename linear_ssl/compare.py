"""Deprecated: the bridge is ``linear_ssl.bridge`` now (seed, rule_flow, comparison, report,
linear_runs); ``linear-ssl compare`` lives in ``linear_ssl.cli``. This module re-exports the
old names (bridge.__all__) for one release."""

from __future__ import annotations

import warnings
from pathlib import Path

from linear_ssl import bridge
from linear_ssl.bridge import *  # noqa: F403 (the old names are bridge.__all__)

__all__ = [*bridge.__all__, "compare_cli"]

warnings.warn(
    "linear_ssl.compare is deprecated: import linear_ssl.bridge instead",
    DeprecationWarning,
    stacklevel=2,
)


def compare_cli(run_dir: str | Path, out_dir: str | Path | None = None) -> int:
    """Deprecated: ``linear-ssl compare RUN [--out DIR]`` (``linear_ssl.cli.main``)."""
    from linear_ssl.cli import main

    return main(["compare", str(run_dir), *(["--out", str(out_dir)] if out_dir else [])])
