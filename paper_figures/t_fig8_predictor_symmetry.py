"""[T] Fig. 8: symmetric and skew parts of Wp under the unsymmetrised flow.

Data: linear_ssl.plots.symmetry_data
Drawing: linear_ssl.plots.draw_symmetry
Run: python paper_figures/t_fig8_predictor_symmetry.py [--fast]
Writes paper_figures/out/t_fig8_predictor_symmetry.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
