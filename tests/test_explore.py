"""The slider explorers: the softmax over candidates, the panels it draws, and the scaled augmentations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # not through MPLBACKEND: the notebooks' kernels that nbval starts would inherit it

import math

import ipywidgets
import pytest
import torch

from course_utils.augment import ViewAugment
from course_utils.explore import (
    augmentation_explorer,
    draw_temperature,
    scaled_views,
    softmax_over_candidates,
    temperature_explorer,
)


def test_softmax_over_candidates_by_hand():
    # Similarities 0.9 (positive), 0.5, 0.1 at temperature 0.5: exponents 1.8, 1.0, 0.2.
    exps = [math.exp(1.8), math.exp(1.0), math.exp(0.2)]
    expected = [e / sum(exps) for e in exps]
    got = softmax_over_candidates(torch.tensor([0.9, 0.5, 0.1]), 0.5)
    assert got.tolist() == pytest.approx(expected)


def test_softmax_over_candidates_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        softmax_over_candidates(torch.tensor([0.9, 0.5]), 0.0)
    with pytest.raises(ValueError, match="1-D"):
        softmax_over_candidates(torch.zeros(2, 3), 0.1)


def test_draw_temperature_panels():
    similarities = torch.tensor([0.5, 0.9, 0.1, 0.3])  # the positive (first) is second most similar
    fig = draw_temperature(similarities, [0.1, 1.0])
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    exps = [math.exp(s / 0.1) for s in [0.9, 0.5, 0.3, 0.1]]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([e / sum(exps) for e in exps])  # sorted, most similar first
    assert ax.get_title() == f"τ = 0.1: positive gets {100 * exps[1] / sum(exps):.2g}%"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["positive (rank 2)"]
    assert ax.get_xticks().tolist() == [1]
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours[1] != colours[0] and colours[0] == colours[2] == colours[3]
    assert ax.get_ylabel() == "softmax probability"
    assert ax.get_xlabel() == "the 4 most similar of 4 candidates"


def test_draw_temperature_adds_a_low_ranked_positive_after_the_top():
    similarities = torch.tensor([0.0, 0.9, 0.8, 0.7, 0.6])  # the positive ranks last, 5th
    ax = draw_temperature(similarities, [0.5], shown=2).axes[0]
    exps = [math.exp(s / 0.5) for s in [0.9, 0.8, 0.0]]
    total = sum(math.exp(s / 0.5) for s in similarities.tolist())
    assert [bar.get_height() for bar in ax.patches] == pytest.approx([e / total for e in exps])
    assert [bar.get_x() + bar.get_width() / 2 for bar in ax.patches] == pytest.approx([0, 1, 3]), "after a gap"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["positive (rank 5)"]


def test_temperature_explorer_is_a_widget_with_the_slider():
    widget = temperature_explorer(torch.tensor([0.9, 0.5, 0.1]))
    assert isinstance(widget, ipywidgets.Widget)
    (slider,) = [w for w in widget.children if isinstance(w, ipywidgets.FloatLogSlider)]
    assert slider.value == pytest.approx(0.2)
    assert 10**slider.min == pytest.approx(0.01) and 10**slider.max == pytest.approx(2)


AUGMENT = ViewAugment(size=8, crop_scale=(0.2, 1.0), crop_ratio=(0.5, 2.0), jitter=(0.4, 0.4, 0.4, 0.1))


def test_scaled_views_zero_is_no_crop_no_jitter():
    plain = scaled_views(AUGMENT, 0)
    assert plain.crop_scale == (1, 1)
    assert plain.crop_ratio == (1, 1)
    assert plain.jitter_p == 0
    assert plain.grayscale_p == AUGMENT.grayscale_p  # only crop and jitter are scaled


def test_scaled_views_half_and_full():
    half = scaled_views(AUGMENT, 0.5)
    assert half.crop_scale == pytest.approx((1 - 0.5 * (1 - 0.2), 1.0))  # lower bound 0.6
    assert half.crop_ratio == pytest.approx((0.5**0.5, 2**0.5))
    assert half.jitter == pytest.approx((0.2, 0.2, 0.2, 0.05))
    assert half.jitter_p == AUGMENT.jitter_p
    assert scaled_views(AUGMENT, 1) == AUGMENT
    with pytest.raises(ValueError, match="strength"):
        scaled_views(AUGMENT, 1.5)


def test_scaled_views_zero_leaves_the_image_whole():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    plain = scaled_views(ViewAugment(size=8, flip_p=0, grayscale_p=0), 0)
    assert torch.allclose(plain(images), images.float() / 255, atol=1e-5)


def test_augmentation_explorer_is_a_widget_with_the_slider():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    widget = augmentation_explorer(images, AUGMENT)
    assert isinstance(widget, ipywidgets.Widget)
    (slider,) = [w for w in widget.children if isinstance(w, ipywidgets.FloatSlider)]
    assert (slider.value, slider.min, slider.max, slider.step) == (1.0, 0.0, 1.0, 0.1)
