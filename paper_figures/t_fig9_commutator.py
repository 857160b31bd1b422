"""[T] Fig. 9: ||[F, Wp]||_F (T6) over time for several (eta, tau).

Data: linear_ssl.plots.alignment_commutator_data
Drawing: linear_ssl.plots.draw_alignment_commutator
Run: python paper_figures/t_fig9_commutator.py [--fast]
Writes paper_figures/out/t_fig9_commutator.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
