"""[T] Fig. 6: several runs side by side: F_hat's top eigenvalues and participation ratio.

alpha_p > 1 lets a symmetric Wp train without EMA: give such runs and their baselines.

Data and drawing: linear_ssl.plots_runs (RUN_FIGURES["run_t_fig6"]).
Run: python paper_figures/run_t_fig6.py RUN [RUN ...] [--labels L ...] [--out DIR]
Writes DIR/run_t_fig6.png and .pdf (default DIR: paper_figures/out).
"""

import sys

from linear_ssl.plots_runs import script_main

if __name__ == "__main__":
    sys.exit(script_main("run_t_fig6"))
