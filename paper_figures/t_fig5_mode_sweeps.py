"""[T] Fig. 5: T7 simulated; eta sweep and EMA sweep; p_j, s_j and lambda_min(K).

Data: linear_ssl.plots.mode_sweeps_data
Drawing: linear_ssl.plots.draw_mode_sweeps
Run: python paper_figures/t_fig5_mode_sweeps.py [--fast]
Writes paper_figures/out/t_fig5_mode_sweeps.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
