"""[T] Fig. 2: log eig(F_hat), eig(Wp), cos(u_j, Wp u_j) and the asymmetry of Wp over training.

Data and drawing: linear_ssl.plots_runs (RUN_FIGURES["run_t_fig2"]).
Run: python paper_figures/run_t_fig2.py RUN [--out DIR]
Writes DIR/run_t_fig2.png and .pdf (default DIR: paper_figures/out).
"""

import sys

from linear_ssl.plots_runs import script_main

if __name__ == "__main__":
    sys.exit(script_main("run_t_fig2"))
