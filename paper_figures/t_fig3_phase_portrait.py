"""[T] Fig. 3: (p, s) phase portraits of T7 at tau = 1, alpha_p = 1, eta in {0, 0.01, 1}.

Data: linear_ssl.plots.phase_portrait_data
Drawing: linear_ssl.plots.draw_phase_portrait
Run: python paper_figures/t_fig3_phase_portrait.py [--fast]
Writes paper_figures/out/t_fig3_phase_portrait.png and .pdf.
"""

import sys
from pathlib import Path

from linear_ssl.plots import make_figure

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    for path in make_figure(Path(__file__).stem, out, fast="--fast" in sys.argv[1:]):
        print(path)
