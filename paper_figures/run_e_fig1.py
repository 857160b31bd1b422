"""[E] Fig. 1: stable rank and trace of the normalised linear predictor over training (E4).

Data and drawing: linear_ssl.plots_runs (RUN_FIGURES["run_e_fig1"]).
Run: python paper_figures/run_e_fig1.py RUN [--out DIR]
Writes DIR/run_e_fig1.png and .pdf (default DIR: paper_figures/out).
"""

import sys

from linear_ssl.plots_runs import script_main

if __name__ == "__main__":
    sys.exit(script_main("run_e_fig1"))
