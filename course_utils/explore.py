"""Two slider explorers for the notebooks: the temperature of the contrastive softmax, and the
strength of the augmentations.

Each has a pure function that draws one state (tested, and used for the static figure that
renders everywhere) and a function that wires it to an ``ipywidgets`` slider.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import ipywidgets
import matplotlib.pyplot as plt
import torch

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.plots import view_pairs


def softmax_over_candidates(similarities: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(similarities / temperature) over one anchor's candidates (1-D, the positive first)."""
    if not isinstance(similarities, torch.Tensor) or similarities.ndim != 1 or len(similarities) < 2:
        raise ValueError(f"expects a 1-D tensor of at least 2 similarities (the positive first), got "
                         f"{getattr(similarities, 'shape', type(similarities).__name__)}")  # fmt: skip
    return torch.softmax(similarities / checks.temperature(temperature), dim=0)


def _draw_panel(ax: plt.Axes, similarities: torch.Tensor, temperature: float, shown: int) -> None:
    probabilities = softmax_over_candidates(similarities, temperature)
    order = torch.argsort(similarities, descending=True, stable=True)
    rank = int((order == 0).nonzero()) + 1
    top = order[:shown].tolist()
    if 0 not in top:  # the positive ranks lower: show it after a gap, at its own place
        top.append(0)
    places = list(range(min(shown, len(order)))) + ([shown + 1] if len(top) > shown else [])
    colours = ["tab:orange" if i == 0 else "tab:blue" for i in top]
    ax.bar(places, probabilities[top].tolist(), color=colours)
    # Only the positive is named: the negatives are anonymous, and their ticks would crowd the axis.
    ax.set_xticks([places[top.index(0)]], [f"positive (rank {rank})"])
    ax.set_title(f"τ = {temperature:g}: positive gets {100 * probabilities[0].item():.2g}%")
    ax.set_xlabel(f"the {min(shown, len(order))} most similar of {len(order)} candidates")
    ax.set_ylabel("softmax probability")


def draw_temperature(similarities: torch.Tensor, temperatures: Sequence[float], shown: int = 20) -> plt.Figure:
    """One panel per temperature: the softmax probability of the ``shown`` most similar
    candidates (the positive in orange, added after a gap when it ranks lower), most similar first."""
    if not temperatures:
        raise ValueError("draw_temperature needs at least one temperature")
    checks.count("shown", shown)
    fig, axes = plt.subplots(
        1, len(temperatures), figsize=(4 * len(temperatures), 3.2), squeeze=False, layout="constrained"
    )
    for ax, temperature in zip(axes.flat, temperatures, strict=True):
        _draw_panel(ax, similarities, temperature, shown)
    return fig


def temperature_explorer(similarities: torch.Tensor) -> ipywidgets.Widget:
    """A slider for the temperature τ (0.01 to 2, log scale) that redraws ``draw_temperature``."""
    softmax_over_candidates(similarities, 1.0)  # bad input fails here, not inside the widget's output
    slider = ipywidgets.FloatLogSlider(
        value=0.2, base=10, min=math.log10(0.01), max=math.log10(2), step=0.05, description="τ"
    )

    def show(temperature: float) -> None:
        draw_temperature(similarities, [temperature])
        plt.show()

    return ipywidgets.interactive(show, temperature=slider)


def scaled_views(augment: ViewAugment, strength: float) -> ViewAugment:
    """A copy of ``augment`` with its crop and colour jitter scaled by ``strength`` in [0, 1].

    0 means no crop (scale and ratio (1, 1)) and no jitter; 1 gives ``augment`` back. In between,
    each crop scale bound moves toward 1 (the lower one becomes ``1 - strength * (1 - low)``), the
    ratio bounds toward 1 on a log scale, and the jitter strengths are multiplied by ``strength``.
    Flip, greyscale and blur are left as they are.
    """
    strength = checks.number("strength", strength, 0, 1)
    low, high = augment.crop_scale
    return dataclasses.replace(
        augment,
        # 1 - strength * (1 - bound), written so that strengths 0 and 1 give 1 and the bound exactly.
        crop_scale=(1 - strength + strength * low, 1 - strength + strength * high),
        crop_ratio=(augment.crop_ratio[0] ** strength, augment.crop_ratio[1] ** strength),
        jitter=tuple(strength * s for s in augment.jitter),
        jitter_p=augment.jitter_p if strength > 0 else 0.0,
    )


def augmentation_explorer(images: torch.Tensor, augment: ViewAugment) -> ipywidgets.Widget:
    """A strength slider (0 to 1) that redraws ``view_pairs`` of uint8 ``images`` (N, C, H, W).

    The views use the same random draws at every strength, so only the strength changes.
    """
    if not isinstance(augment, ViewAugment):
        raise TypeError(f"augment must be a ViewAugment (its strengths are scaled), got {type(augment).__name__}")
    checks.image_batch(images, "augmentation_explorer", floats=False)
    if images.dtype != torch.uint8:
        raise TypeError(f"augmentation_explorer expects uint8 images, got {images.dtype}")
    slider = ipywidgets.FloatSlider(
        value=1.0, min=0.0, max=1.0, step=0.1, description="strength", continuous_update=False
    )

    def show(strength: float) -> None:
        view_pairs(images, scaled_views(augment, strength))
        plt.show()

    return ipywidgets.interactive(show, strength=slider)
