"""The shared figures: words on the axes, legends that cover nothing, error bars that are
the standard deviation over seeds, and the interactive embedding's MIME bundle."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # not through MPLBACKEND: the notebooks' kernels that nbval starts would inherit it

import base64
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer

from course_utils.plots import (
    BEST_EPOCH_LABEL,
    NAMES,
    compare_curves,
    curves,
    embedding_interactive,
    image_grid,
    label_curve,
    library_style,
    per_class_bars,
)


def _extent(artist, fig):
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer())


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_curves_titles_and_ylabels_are_words():
    history = {"loss": [1.0, 0.5], "knn_accuracy": [0.3, 0.6], "my_new_key": [1, 2]}
    fig = curves(history, ["loss", "knn_accuracy", "my_new_key"], labels={"my_new_key": "something else"})
    expected = ["training loss", "kNN accuracy (validation)", "something else"]
    assert [ax.get_title() for ax in fig.axes] == expected
    assert [ax.get_ylabel() for ax in fig.axes] == expected
    assert NAMES["loss"] == "training loss"


def test_curves_unknown_key_gets_spaces_and_old_call_still_works():
    fig = curves({"grad_norm": [1.0, 2.0, 3.0]}, ["grad_norm"])
    ax = fig.axes[0]
    assert ax.get_title() == "grad norm"
    assert ax.get_xlabel() == "epoch"
    assert ax.lines[0].get_marker() == "o"  # fewer than 30 points
    assert fig.legends == []  # no best epoch, nothing to explain


def test_curves_best_epoch_line_in_every_panel_with_legend_outside():
    history = {"loss": [3.0, 2.0, 1.5, 1.4], "val_accuracy": [0.5, 0.7, 0.65, 0.6]}
    fig = curves(history, ["loss", "val_accuracy"], best_epoch=2)
    for ax in fig.axes:
        dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert len(dotted) == 1
        assert list(dotted[0].get_xdata()) == [2, 2]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [BEST_EPOCH_LABEL]
    for ax in fig.axes:
        assert not _overlaps(_extent(legend, fig), _extent(ax, fig))


def test_compare_curves_one_line_per_run_and_shared_legend_outside():
    histories = {
        "with stop-gradient": {"z_std": [0.1, 0.2, 0.3]},
        "without": {"z_std": [0.1, 0.01, 0.0]},
    }
    fig = compare_curves(histories, ["z_std"])
    (ax,) = fig.axes
    assert ax.get_title() == "spread of z (std per dimension)"
    assert [list(line.get_ydata()) for line in ax.lines] == [[0.1, 0.2, 0.3], [0.1, 0.01, 0.0]]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["with stop-gradient", "without"]
    assert not _overlaps(_extent(legend, fig), _extent(ax, fig))


def test_per_class_bars_legend_beside_axes_and_ylim_shows_differences():
    values = {"supervised": [0.75, 0.9, 0.82], "SimSiam": [0.8, 0.95, 0.88]}
    fig = per_class_bars(values, ["a", "b", "c"], title="per-class F1")
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert _extent(legend, fig).x0 >= _extent(ax, fig).x1  # wholly right of the axes box
    assert not _extent(legend, fig).overlaps(_extent(ax.title, fig)), "the legend covers the title"
    # Lowest bar 0.75: 0.65 rounded down to a multiple of 0.1.
    assert ax.get_ylim() == pytest.approx((0.6, 1.0))
    assert ax.get_ylabel() == "F1 (axis starts at 0.6)"
    assert per_class_bars({"x": [0.05, 0.8]}, ["a", "b"]).axes[0].get_ylabel() == "F1"  # from 0: nothing to say


def test_per_class_bars_ylim_rounding_and_floor_at_zero():
    ax = per_class_bars({"x": [0.7, 0.8]}, ["a", "b"]).axes[0]
    assert ax.get_ylim() == pytest.approx((0.6, 1.0))  # 0.7 - 0.1 is 0.5999... in floats
    ax = per_class_bars({"x": [0.05, 0.8]}, ["a", "b"]).axes[0]
    assert ax.get_ylim() == pytest.approx((0.0, 1.0))


def test_per_class_bars_error_bars():
    fig = per_class_bars({"x": [0.7, 0.8]}, ["a", "b"], errors={"x": [0.02, 0.05]})
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    segments = bars.errorbar.lines[2][0].get_segments()
    assert [seg[1][1] - seg[0][1] for seg in segments] == pytest.approx([0.04, 0.1])


def test_label_curve_error_bars_are_std_over_seeds():
    ks = [1, 10, 100]
    seeds = [[0.30, 0.36, 0.31], [0.55, 0.61, 0.58], [0.80]]
    fig = label_curve(ks, {"SimSiam + linear probe": seeds})
    ax = fig.axes[0]
    (container,) = ax.containers
    data_line, _, (bars,) = container.lines
    assert list(data_line.get_ydata()) == pytest.approx([np.mean(v) for v in seeds])
    segments = bars.get_segments()
    for k, values, seg in zip(ks[:2], seeds[:2], segments[:2]):
        half = (seg[1][1] - seg[0][1]) / 2
        assert seg[0][0] == k
        assert half == pytest.approx(np.std(values, ddof=1))
    assert np.isnan(segments[2]).all()  # one seed: no error bar
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "100"]
    assert ax.xaxis.get_minorticklocs().size == 0
    assert ax.get_ylim()[0] > 0.2 and ax.get_ylim()[1] < 0.9  # fitted to the data, not 0-1
    assert ax.get_xlabel() == "labelled images per class"


def test_label_curve_legend_covers_no_points_and_no_title():
    long = "a title as long as the one notebook 02 gives its label curve, and longer"
    fig = label_curve([1, 10], {"a long series name": [[0.2, 0.3], [0.5, 0.6]], "b": [[0.4], [0.7]]}, title=long)
    (legend,) = fig.legends
    assert not _overlaps(_extent(legend, fig), _extent(fig.axes[0], fig))
    # under the axes and their tick labels, far from the title however long it is
    assert _extent(legend, fig).y1 <= fig.axes[0].get_tightbbox(fig.canvas.get_renderer()).y0


def test_image_grid_title_covers_no_image_title():
    fig = image_grid(torch.zeros(4, 1, 8, 8), ["0", "1", "2", "3"], ncols=2, title="a batch")
    suptitle = _extent(fig._suptitle, fig)
    for ax in fig.axes:
        assert suptitle.y0 >= _extent(ax.title, fig).y1, "the figure title reaches down into the first row"


def test_library_style_is_undone_after_the_block():
    grid, facecolor = plt.rcParams["axes.grid"], plt.rcParams["axes.facecolor"]
    with library_style():
        plt.style.use("ggplot")  # what Optuna's matplotlib plots do
        assert plt.rcParams["axes.facecolor"] != facecolor
    assert (plt.rcParams["axes.grid"], plt.rcParams["axes.facecolor"]) == (grid, facecolor)


def test_label_curve_rejects_wrong_number_of_ks():
    with pytest.raises(ValueError, match="expected 2"):
        label_curve([1, 10], {"a": [[0.2]]})


def test_embedding_interactive_mime_bundle():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 2))
    labels = np.arange(30) % 3
    shown = embedding_interactive(points, labels, ["cat", "dog", "bird"], "a title")
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.plotly.v1+json", "image/png", "text/plain"}
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    plotly_json = bundle["application/vnd.plotly.v1+json"]
    json.dumps(plotly_json)  # plain JSON, no numpy arrays
    assert [trace["name"] for trace in plotly_json["data"]] == ["cat", "dog", "bird"]
    assert len(shown.figure.data) == 3
    assert plt.get_fignums() == []  # the static figure is closed, so it is not shown twice
    assert set(shown._repr_mimebundle_(include={"image/png"})) == {"image/png"}


def test_embedding_interactive_uses_given_static_figure():
    static, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1])
    shown = embedding_interactive(np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], static=static)
    png = base64.b64decode(shown._repr_mimebundle_()["image/png"])
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width < 200 and height < 120  # about 2x1 inches at 80 dpi, not the 8x6 inch embedding_static
