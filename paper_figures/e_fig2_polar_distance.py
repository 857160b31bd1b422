"""[E] Fig. 2 analogue: E5 and E3 of the linear model's predictor vs the EMA rate.

Data: linear_ssl.plots.polar_distance_data
Drawing: linear_ssl.plots.draw_polar_distance
Run: python paper_figures/e_fig2_polar_distance.py [--fast]
Writes paper_figures/out/e_fig2_polar_distance.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
