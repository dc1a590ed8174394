"""store.save_figure: a laid-out figure drawn once on Agg gives savefig's PNG bytes; one whose
content leaves its bounds (or with no layout engine) is saved with a tight bounding box."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from wdlab import store


def _fig(title: str, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(4.0, 3.0), layout=layout)
    ax = fig.subplots()
    ax.plot(np.logspace(-3, 2, 20), np.linspace(1, 2, 20), label="a")
    ax.set_xscale("log")
    ax.set_title(title)
    ax.legend()
    return fig


def _size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def test_png_is_savefig_bytes_drawn_once(tmp_path, monkeypatch):
    expected = io.BytesIO()
    _fig("short").savefig(expected, format="png", dpi=store.FIGURE_DPI)
    fig = _fig("short")
    draws = []
    real = fig.draw
    monkeypatch.setattr(fig, "draw", lambda r: (draws.append(1), real(r))[1])
    (png,) = store.save_figure(fig, tmp_path / "f", formats=("png",))
    assert png.read_bytes() == expected.getvalue()
    assert len(draws) == 1
    assert _size(png) == (4 * store.FIGURE_DPI, 3 * store.FIGURE_DPI)
    assert fig.dpi == Figure().dpi  # the figure's own dpi is given back


def test_content_outside_the_figure_falls_back_to_tight(tmp_path):
    fig = _fig("a title far too long for a four-inch figure, so it runs past both edges")
    png, svg = store.save_figure(fig, tmp_path / "f", formats=("png", "svg"))
    width, _ = _size(png)
    assert width > 4 * store.FIGURE_DPI  # the tight box holds the whole title
    assert svg.suffix == ".svg" and svg.stat().st_size > 0


def test_no_layout_engine_is_saved_tight(tmp_path):
    (png,) = store.save_figure(_fig("short", layout=None), tmp_path / "f", formats=("png",))
    assert _size(png) != (4 * store.FIGURE_DPI, 3 * store.FIGURE_DPI)


def test_pyplot_agg_figure_keeps_its_canvas(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4.0, 3.0), layout="constrained")
    fig.subplots().plot([1, 2, 3])
    canvas = fig.canvas
    (png,) = store.save_figure(fig, tmp_path / "f", formats=("png",))
    assert fig.canvas is canvas
    plt.close(fig)
    assert _size(png) == (4 * store.FIGURE_DPI, 3 * store.FIGURE_DPI)
