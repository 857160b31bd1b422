"""[T] Fig. 7: validity of A1, corr(Wa, W) on the matrix flow across EMA rates.

Data: linear_ssl.plots.ema_correlation_data
Drawing: linear_ssl.plots.draw_ema_correlation
Run: python paper_figures/t_fig7_ema_correlation.py [--fast]
Writes paper_figures/out/t_fig7_ema_correlation.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
