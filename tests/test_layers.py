"""design.md's layers: the theory engine, predictors, diagnostics, figures and the bridge
work without torch (``pip install linear-ssl`` without the torch extra)."""

from __future__ import annotations

import subprocess
import sys

TORCH_FREE = [
    "linear_ssl.theory",
    "linear_ssl.predictors",
    "linear_ssl.diagnostics",
    "linear_ssl.runs",
    "linear_ssl.bridge",
    "linear_ssl.figures",
    "linear_ssl.plots",
    "linear_ssl.plots_runs",
    "linear_ssl.compare",
    "linear_ssl.cli",
]


def test_torch_free_modules_import_and_compute_with_torch_blocked():
    """With torch made unimportable, the torch-free layers import and R1 computes
    p_j = sqrt(s_j / s_max) + eps on a diagonal F (reference-code variant)."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        + "".join(f"import {name}\n" for name in TORCH_FREE)
        + "import numpy as np\n"
        "from linear_ssl import predictors\n"
        "Wp = predictors.directpred(np.diag([4.0, 1.0]), eps=0.1)\n"
        "print(Wp[0, 0], Wp[1, 1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    top, second = map(float, out.stdout.split())
    assert abs(top - 1.1) < 1e-12 and abs(second - 0.6) < 1e-12
