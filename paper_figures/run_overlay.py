"""The overlay: the T7 / rule flow seeded from the run, dashed over its measured s_j, p_j, tau_j.

Data and drawing: linear_ssl.plots_runs (RUN_FIGURES["run_overlay"]).
Run: python paper_figures/run_overlay.py RUN [--out DIR]
Writes DIR/run_overlay.png and .pdf (default DIR: paper_figures/out).
"""

import sys

from linear_ssl.plots_runs import script_main

if __name__ == "__main__":
    sys.exit(script_main("run_overlay"))
