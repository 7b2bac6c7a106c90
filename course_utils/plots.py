"""The figures the notebooks share: image grids, view pairs, training curves, confusion
matrices, per-class bars, label-efficiency curves and 2-D embeddings (static and interactive).

Importing this module sets the course's figure style (``STYLE``); ``library_style`` keeps a
library that sets its own style for the whole session (Optuna's plots switch to ggplot) from
changing the figures drawn after it."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO

import matplotlib.pyplot as plt
import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
import torch
from matplotlib.ticker import MaxNLocator, NullLocator
from sklearn.metrics import ConfusionMatrixDisplay

from course_utils import checks
from course_utils.evaluate import seed_spread
from course_utils.images import to_float
from course_utils.methods.rows import LAYOUTS, image_to_rows

# Light grids behind the data, no box around plots and legends; sizes and layout stay per figure.
STYLE = {
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "legend.frameon": False,
}
plt.rcParams.update(STYLE)


@contextmanager
def library_style() -> Iterator[None]:
    """Draw a library's figures inside this block: whatever style they set (Optuna's
    matplotlib plots call ``plt.style.use("ggplot")``) is undone when it ends."""
    with plt.rc_context():
        yield


def starts_at(label: str, bottom: float) -> str:
    """An axis label that says where a truncated axis starts, e.g. "F1 (axis starts at 0.4)"."""
    return f"{label} (axis starts at {bottom:g})" if bottom > 0 else label


def _as_image(image: torch.Tensor) -> np.ndarray:
    x = to_float(image) if image.dtype == torch.uint8 else image
    return x.permute(1, 2, 0).squeeze(-1).cpu().numpy()


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    wrong: Sequence[bool] | None = None,
    size: float = 1.4,
    title: str = "",
) -> plt.Figure:
    """Show a batch (N, C, H, W) in a grid; titles marked ``wrong`` are drawn in red.
    ``title`` goes above the grid, laid out with it so that it covers no image title."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.3)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_as_image(images[i]), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8, color="red" if wrong is not None and wrong[i] else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()  # after the suptitle, which it then leaves room for
    return fig


def view_pairs(images: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor], seed: int = 0) -> plt.Figure:
    """Each image (top row) and two random views of it (rows below)."""
    generator = torch.Generator().manual_seed(seed)
    views = [augment(images, generator=generator) for _ in range(2)]
    size = views[0].shape[-1]
    originals = torch.nn.functional.interpolate(to_float(images), size=(size, size), mode="bilinear")
    grid = torch.cat([originals, *views])
    titles = ["original"] * len(images) + ["view 1"] * len(images) + ["view 2"] * len(images)
    return image_grid(grid, titles, ncols=len(images))


# What the course logs, in words, for panel titles and axis labels.
NAMES = {
    "loss": "training loss",
    "train_accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "knn_accuracy": "kNN accuracy (validation)",
    "z_std": "spread of z (std per dimension)",
    "z_rank": "effective rank of z",
    "z_std_after_bn": "spread of z after its last BatchNorm",
    "top1": "positive ranked first (top-1)",
    "top5": "positive in the top 5",
    "mean_position": "mean rank of the positive",
    "step_loss": "training loss per step",
}
BEST_EPOCH_LABEL = "epoch kept (best on validation)"


def name_of(key: str, labels: dict[str, str] | None = None) -> str:
    """The words for a logged key: ``labels`` first, then ``NAMES``, else the key with spaces."""
    if labels and key in labels:
        return labels[key]
    return NAMES.get(key, key.replace("_", " "))


def _panels(keys: Sequence[str], xlabel: str, labels: dict[str, str] | None) -> tuple[plt.Figure, list[plt.Axes]]:
    """One titled, labelled panel per key; constrained layout leaves room for a figure legend."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False, layout="constrained")
    for ax, key in zip(axes.flat, keys, strict=True):
        ax.set_title(name_of(key, labels))
        ax.set_ylabel(name_of(key, labels))
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps are whole numbers
        ax.grid(alpha=0.3)
    return fig, list(axes.flat)


def _plot_values(ax: plt.Axes, values: Sequence[float], first: int = 1, **kwargs) -> None:
    ax.plot(range(first, first + len(values)), values, marker="o" if len(values) < 30 else None, **kwargs)


def _legend_below(fig: plt.Figure, ax: plt.Axes) -> None:
    """One legend for the whole figure, under the panels, from the entries of ``ax``."""
    handles, texts = ax.get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=min(len(texts), 4), frameon=False)


def curves(
    history: dict[str, list[float]],
    keys: Sequence[str],
    xlabel: str = "epoch",
    labels: dict[str, str] | None = None,
    best_epoch: int | None = None,
) -> plt.Figure:
    """One small panel per logged quantity, titled in words (``NAMES``, overridden by ``labels``).

    ``best_epoch`` (counted from 1) draws a dotted line at the epoch whose weights were kept.
    """
    fig, axes = _panels(keys, xlabel, labels)
    for ax, key in zip(axes, keys, strict=True):
        _plot_values(ax, history[key])
        if best_epoch is not None:
            ax.axvline(best_epoch, linestyle=":", color="black", label=BEST_EPOCH_LABEL)
    if best_epoch is not None:
        _legend_below(fig, axes[0])
    return fig


def compare_curves(
    histories: dict[str, dict[str, list[float]]],
    keys: Sequence[str],
    xlabel: str = "epoch",
    labels: dict[str, str] | None = None,
    first_epoch: int = 1,
) -> plt.Figure:
    """Several runs (name -> history) as one line each in every panel, with one legend under the
    panels. ``first_epoch`` numbers the first value (0 when it was measured before training)."""
    fig, axes = _panels(keys, xlabel, labels)
    for ax, key in zip(axes, keys, strict=True):
        for run, history in histories.items():
            _plot_values(ax, history[key], first_epoch, label=run)
    _legend_below(fig, axes[0])
    return fig


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, classes: list[str]) -> plt.Figure:
    """Confusion matrix with class names (rows: true class, columns: predicted)."""
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true), np.asarray(y_pred), display_labels=classes, ax=ax, xticks_rotation=45, colorbar=False
    )
    fig.tight_layout()
    return fig


def _lower_limit(heights: np.ndarray) -> float:
    """0.1 below the lowest bar, rounded down to a multiple of 0.1, never below 0."""
    # round() first so that, e.g., 0.7 - 0.1 = 0.5999... still rounds down to 0.6.
    return max(0.0, math.floor(round((heights.min() - 0.1) * 10, 6)) / 10)


def per_class_bars(
    values: dict[str, Sequence[float]],
    classes: list[str],
    ylabel: str = "F1",
    errors: dict[str, Sequence[float]] | None = None,
    title: str = "",
) -> plt.Figure:
    """Grouped bars: one group per class, one bar per entry of ``values``.

    The y axis starts just below the lowest bar so that the differences show, and its label
    says where it starts; ``errors`` (name -> per-class standard deviation) adds error bars.
    The legend sits to the right of the axes, where it covers neither bars nor the title.
    """
    fig, ax = plt.subplots(figsize=(10, 3.8 if title else 3.5), layout="constrained")
    width = 0.8 / len(values)
    x = np.arange(len(classes))
    for i, (name, heights) in enumerate(values.items()):
        yerr = None if errors is None else errors.get(name)
        ax.bar(x + (i - (len(values) - 1) / 2) * width, heights, width, yerr=yerr, capsize=2, label=name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    every = np.concatenate([np.asarray(h, dtype=float) for h in values.values()])
    bottom = _lower_limit(every)
    ax.set_ylim(bottom, 1.0 if every.max() <= 1 else None)
    ax.set_ylabel(starts_at(ylabel, bottom))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    ax.grid(axis="x", visible=False)
    return fig


def _mean_and_spread(values_per_k: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds per k, and the sample standard deviation (NaN, no bar, for a single seed)."""
    spreads = [seed_spread(list(values)) for values in values_per_k]
    means = np.array([s["mean"] for s in spreads])
    return means, np.array([s["std"] if s["runs"] > 1 else np.nan for s in spreads])


def label_curve(
    ks: Sequence[int], series: dict[str, Sequence[Sequence[float]]], ylabel: str = "test accuracy", title: str = ""
) -> plt.Figure:
    """Score against labelled images per class (log scale), one line per method.

    ``series`` maps a method to one list of values over seeds per k; points are the mean,
    error bars the standard deviation over seeds. The legend sits under the axes.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    for name, values_per_k in series.items():
        if len(values_per_k) != len(ks):
            raise ValueError(f"{name!r} has values for {len(values_per_k)} ks, expected {len(ks)}")
        means, spreads = _mean_and_spread(values_per_k)
        ax.errorbar(ks, means, yerr=spreads, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    # Under the axes, which then span the figure's width: neither the title nor a point is covered.
    fig.legend(loc="outside lower center", ncol=min(len(series), 3))
    return fig


def embedding_static(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str = "") -> plt.Figure:
    """2-D embedding as a matplotlib scatter, one colour per class name."""
    fig, ax = plt.subplots(figsize=(8, 6))
    for c, name in enumerate(classes):
        mask = labels == c
        ax.scatter(points[mask, 0], points[mask, 1], s=3, label=name, color=plt.cm.tab10(c % 10))
    ax.legend(markerscale=4, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


class InteractiveEmbedding:
    """A plotly figure that Jupyter shows together with a static PNG of the same points.

    Front ends that run JavaScript (JupyterLab, VS Code) draw the plotly figure; those that
    do not (GitHub, nbviewer, PDF export) fall back to the PNG in the same output.
    """

    def __init__(self, figure: go.Figure, static: plt.Figure, description: str) -> None:
        self.figure = figure
        self.description = description
        self.png = _png_base64(static)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, object]:
        # As plotly's own PlotlyRenderer builds it: plain JSON, numpy arrays turned into lists.
        bundle = {
            "application/vnd.plotly.v1+json": json.loads(pio.to_json(self.figure, validate=False)),
            "image/png": self.png,
            "text/plain": self.description,
        }
        return {k: v for k, v in bundle.items() if (not include or k in include) and k not in (exclude or ())}


def _png_base64(fig: plt.Figure) -> str:
    """The figure as a base64 PNG; closed, so that the inline backend does not show it a second time."""
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def embedding_interactive(
    points: np.ndarray, labels: np.ndarray, classes: list[str], title: str = "", static: plt.Figure | None = None
) -> InteractiveEmbedding:
    """2-D embedding as an interactive plotly scatter, coloured and labelled by class name.

    Displayed in Jupyter it also carries a PNG (``static``, or ``embedding_static`` of the
    same points) for viewers without JavaScript; ``.figure`` is the plotly figure.
    """
    names = np.asarray(classes)[labels]
    fig = px.scatter(
        x=points[:, 0],
        y=points[:, 1],
        color=names,
        category_orders={"color": classes},
        labels={"color": "class"},
        title=title,
        opacity=0.7,
    )
    fig.update_traces(marker_size=3)
    fig.update_layout(width=750, height=600, xaxis_visible=False, yaxis_visible=False)
    if static is None:
        static = embedding_static(points, labels, classes, title)
    description = f"interactive 2-D embedding of {len(points)} points in {len(classes)} classes" + (
        f": {title}" if title else ""
    )
    return InteractiveEmbedding(fig, static, description)


def plot_histories(histories: dict[str, dict[str, list[float]]]) -> plt.Figure:
    """Loss and accuracy per epoch of several runs: training dashed, validation solid,
    the chosen (best validation accuracy) epoch circled."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (name, history) in enumerate(histories.items()):
        color = plt.cm.tab10(i)
        epochs = range(1, len(history["val_loss"]) + 1)
        best = int(history["best_epoch"][0])
        for ax, train_key, val_key in [(axes[0], "loss", "val_loss"), (axes[1], "train_accuracy", "val_accuracy")]:
            ax.plot(epochs, history[train_key], "--", marker=".", color=color, label=f"{name} training")
            ax.plot(epochs, history[val_key], "-", marker=".", color=color, label=f"{name} validation")
            ax.plot(best, history[val_key][best - 1], "o", color=color, markersize=9, fillstyle="none")
    for ax, title in zip(axes, ["cross-entropy loss", "accuracy"]):
        ax.set_title(f"{title} (circle: epoch kept)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def plot_step_gradients(norms: dict[str, dict[str, torch.Tensor]]) -> plt.Figure:
    """``norms[stage][cell]`` from :func:`step_gradient_norms`: one panel per stage (e.g.
    at initialisation, after training), one line per cell, on a log scale."""
    fig, axes = plt.subplots(1, len(norms), figsize=(5.5 * len(norms), 3.8), squeeze=False, sharey=True)
    for ax, (stage, per_cell) in zip(axes.flat, norms.items()):
        for name, values in per_cell.items():
            ax.semilogy(range(len(values)), values.cpu(), marker=".", label=name)
        ax.set_title(f"gradient of the loss per input row, {stage}")
        ax.set_xlabel("time step = image row (0: top, read first)")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    axes.flat[0].set_ylabel(r"mean $\|\partial \mathcal{L} / \partial x_t\|$")
    fig.tight_layout()
    return fig


def plot_step(image: torch.Tensor, step: int) -> plt.Figure:
    """What time step ``step`` sees of a uint8 image (3, H, W): the image with that row
    marked, and the row's 3 x W values in both layouts, coloured by channel."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"plot_step expects one uint8 image (3, H, W), got {image.dtype} {tuple(image.shape)}")
    checks.count("step (a row of the image)", step, 0, image.shape[1] - 1)
    rows = {layout: image_to_rows(image[None].float(), layout)[0, step] for layout in LAYOUTS}
    channel_of = {
        "interleaved": torch.arange(rows["interleaved"].numel()) % 3,
        "planar": torch.arange(rows["planar"].numel()) // image.shape[-1],
    }
    fig = plt.figure(figsize=(12, 3.6))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 3.2])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.axhspan(step - 0.5, step + 0.5, fill=False, edgecolor="yellow", linewidth=2)
    ax.set_title(f"row {step} is time step {step}")
    ax.axis("off")
    for i, layout in enumerate(LAYOUTS):
        ax = fig.add_subplot(grid[i, 1])
        ax.bar(range(len(rows[layout])), rows[layout], color=[("red", "green", "blue")[c] for c in channel_of[layout]])
        ax.set_title(f"the {len(rows[layout])} values of step {step}, {layout} layout", fontsize=10)
        ax.set_ylabel("pixel value")
        ax.set_xlim(-1, len(rows[layout]))
    ax.set_xlabel("position in the input vector")
    fig.tight_layout()
    return fig
