"""[T] Fig. 10: T4's scalar system (l_s = 1, l_d = 1/2, alpha_p = beta = 1).

Data: linear_ssl.plots.scalar_system_data
Drawing: linear_ssl.plots.draw_scalar_system
Run: python paper_figures/t_fig10_scalar_system.py [--fast]
Writes paper_figures/out/t_fig10_scalar_system.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
