"""[E] Fig. 3: normalised spectrum of the online-latent correlation over training (E8).

One or two runs (e.g. Newton-Schulz vs DirectCopy), one panel each.

Data and drawing: linear_ssl.plots_runs (RUN_FIGURES["run_e_fig3"]).
Run: python paper_figures/run_e_fig3.py RUN [RUN2] [--labels L ...] [--out DIR]
Writes DIR/run_e_fig3.png and .pdf (default DIR: paper_figures/out).
"""

import sys

from linear_ssl.plots_runs import script_main

if __name__ == "__main__":
    sys.exit(script_main("run_e_fig3"))
