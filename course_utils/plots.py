"""The figures the notebooks share: image grids, view pairs, curves, confusion
matrices, per-class bars and 2-D embeddings (static and interactive)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.express as px
import torch
from sklearn.metrics import ConfusionMatrixDisplay

from course_utils.images import to_float


def _as_image(image: torch.Tensor) -> np.ndarray:
    x = to_float(image) if image.dtype == torch.uint8 else image
    return x.permute(1, 2, 0).squeeze(-1).cpu().numpy()


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    wrong: Sequence[bool] | None = None,
    size: float = 1.4,
) -> plt.Figure:
    """Show a batch (N, C, H, W) in a grid; titles marked ``wrong`` are drawn in red."""
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
    fig.tight_layout()
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


def curves(history: dict[str, list[float]], keys: Sequence[str], xlabel: str = "epoch") -> plt.Figure:
    """One small panel per logged quantity."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=True):
        values = history[key]
        ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, classes: list[str]) -> plt.Figure:
    """Confusion matrix with class names (rows: true class, columns: predicted)."""
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true), np.asarray(y_pred), display_labels=classes, ax=ax, xticks_rotation=45, colorbar=False
    )
    fig.tight_layout()
    return fig


def per_class_bars(values: dict[str, Sequence[float]], classes: list[str], ylabel: str = "F1") -> plt.Figure:
    """Grouped bars: one group per class, one bar per entry of ``values``."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    width = 0.8 / len(values)
    x = np.arange(len(classes))
    for i, (name, heights) in enumerate(values.items()):
        ax.bar(x + (i - (len(values) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def embedding_static(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str = "") -> plt.Figure:
    """2-D embedding as a matplotlib scatter, one colour per class name."""
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, name in enumerate(classes):
        mask = labels == c
        ax.scatter(points[mask, 0], points[mask, 1], s=3, label=name, color=plt.cm.tab10(c % 10))
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def embedding_interactive(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str = ""):
    """2-D embedding as an interactive plotly scatter, coloured and labelled by class name."""
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
    return fig
