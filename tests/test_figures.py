"""Every figure of the registry (linear_ssl.figures.FIGURES), rendered as a paper reader
sees it: no legend lies on plotted data, no label covers a marker, and each writes a PNG
and a PDF. The tests iterate the registry, so a new figure is checked without a new test.

Overlap is computed by matplotlib itself after a draw: a legend's window extent against
every line's path and every collection's paths (fill_between bands, streamlines, scatter
points) transformed to display coordinates, clipped to the axes where the artist is.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from linear_ssl.bridge import aligned_init, write_linear_run  # noqa: E402
from linear_ssl.figures import FIGURES, figure_data, save_figure  # noqa: E402
from linear_ssl.theory import Hyper  # noqa: E402


@pytest.fixture(scope="module")
def linear_runs(tmp_path_factory):
    """Two short linear-model runs in the trainer's format (for the run figures)."""
    root = tmp_path_factory.mktemp("runs")
    h = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.2)
    return [
        write_linear_run(
            root / f"run{seed}",
            h,
            *aligned_init([1.0, 0.4, 0.1], [0.5, 0.3, 0.2], 0.9, n1=4, seed=seed),
            lr=0.05,
            steps=120,
            batch=64,
            record_every=20,
            seed=seed,
        )  # fmt: skip
        for seed in (0, 1)
    ]


def _data(name, runs):
    """The figure's data: fast settings for a theory figure; for a run figure one run, or
    both runs where it draws several."""
    spec = FIGURES[name]
    if spec.runs == "many":
        return spec.data(runs)
    return figure_data(name, runs[0], fast=True)


def _display_paths(artist):
    """(path in display coordinates, filled?) for each path an artist draws."""
    if isinstance(artist, Line2D):
        xy = artist.get_transform().transform(artist.get_xydata())
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) == 0:
            return []
        if artist.get_linestyle() in ("None", "none", "", " "):  # markers only: the points
            return [(MplPath(xy[[i, i]]), False) for i in range(len(xy))]
        return [(MplPath(xy), False)]
    transform = artist.get_transform()
    offsets = artist.get_offsets() if hasattr(artist, "get_offsets") else np.zeros((0, 2))
    if len(offsets) > 1:  # scatter-like: one marker per offset point
        pts = artist.get_offset_transform().transform(offsets)
        return [(MplPath(pts[[i, i]]), False) for i in range(len(pts))]
    filled = isinstance(artist, PolyCollection)
    return [(transform.transform_path(p), filled) for p in artist.get_paths()]


def _hits(artist, box: Bbox) -> bool:
    for path, filled in _display_paths(artist):
        if len(path.vertices) and (
            box.count_contains(path.vertices) or path.intersects_bbox(box, filled=filled)
        ):
            return True
    return False


def legend_overlaps(fig) -> list[str]:
    """Every (legend, artist) pair where the artist's drawn data enters the legend's box."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for i, ax in enumerate(fig.axes):
            artists = [a for a in [*ax.lines, *ax.collections] if a.get_visible()]
            for artist in artists:
                region = Bbox.intersection(box, ax.bbox) if artist.get_clip_on() else box
                if region is not None and _hits(artist, region):
                    found.append(f"legend over {type(artist).__name__} {artist.get_label()!r} "
                                 f"of axes {i} ({ax.get_title()!r})")  # fmt: skip
    return found


def label_covers(fig) -> list[str]:
    """Every text annotation whose box touches a plotted marker (its radius included)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        markers = [
            ln for ln in ax.lines if ln.get_visible() and ln.get_marker() not in ("None", "", None)
        ]
        for text in ax.texts:
            if not text.get_text().strip():
                continue
            box = text.get_window_extent(renderer)
            for ln in markers:
                radius = ln.get_markersize() / 2 * fig.dpi / 72
                pts = ln.get_transform().transform(ln.get_xydata())
                grown = box.expanded(1 + 2 * radius / max(box.width, 1e-9),
                                     1 + 2 * radius / max(box.height, 1e-9))  # fmt: skip
                if grown.count_contains(pts[np.all(np.isfinite(pts), axis=1)]):
                    found.append(
                        f"label {text.get_text()!r} touches a marker of {ax.get_title()!r}"
                    )
    return found


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_renders_with_legends_and_labels_off_the_data(name, linear_runs, tmp_path):
    """Issue 9 for every figure: legends beside the data, labels clear of markers; the
    files are a real PNG and PDF; the figure carries its module's TITLE."""
    spec = FIGURES[name]
    assert spec.title and spec.module.__name__.endswith(name)
    fig = spec.draw(_data(name, linear_runs))
    assert legend_overlaps(fig) == []
    assert label_covers(fig) == []
    for path in save_figure(fig, tmp_path, name):
        assert path.read_bytes()[:8].startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")
        assert path.stat().st_size > 5000


def test_the_check_sees_a_legend_on_data():
    """The overlap check itself: a legend placed on a line, a band and scatter points is
    reported; the same legend moved outside the axes is not."""
    fig, ax = plt.subplots(layout="constrained")
    x = np.linspace(0, 1, 50)
    ax.plot(x, 0.97 - 0.05 * x, label="line")  # across the top, under the legend
    ax.fill_between(x, 0.85, 0.9, label="band")
    ax.plot(x, 0.5 * x, label="below")  # low on the right: clear of it
    ax.legend(loc="upper left")
    found = legend_overlaps(fig)
    assert any("'band'" in f for f in found) and any("'line'" in f for f in found)
    assert not any("'below'" in f for f in found)
    ax.get_legend().remove()
    fig.legend(loc="outside lower center")
    assert legend_overlaps(fig) == []
    ax.plot([0.5], [0.5], "o", ms=8)
    ax.annotate("p", (0.5, 0.5), xytext=(1, 1), textcoords="offset points")
    assert label_covers(fig)
    plt.close(fig)
