"""[T] Fig. 4: T9's 1-D flow dp/dt on the parabola in its three eta regimes.

Data: linear_ssl.plots.parabola_flow_data
Drawing: linear_ssl.plots.draw_parabola_flow
Run: python paper_figures/t_fig4_parabola_flow.py [--fast]
Writes paper_figures/out/t_fig4_parabola_flow.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
