"""Batched augmentations: identities where they must be, formulas where they apply."""

from __future__ import annotations

import pytest
import torch

from course_utils.augment import ViewAugment
from course_utils.images import to_float

# Views that keep the image whole (no crop, no flip) and switch every other operation off;
# each test below switches on the one it looks at.
PLAIN = dict(crop_scale=(1, 1), crop_ratio=(1, 1), flip_p=0, jitter_p=0, grayscale_p=0)


@pytest.fixture
def batch():
    return torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_full_crop_without_flip_is_the_identity(batch):
    assert torch.allclose(ViewAugment(16, **PLAIN)(batch), to_float(batch), atol=1e-5)


def test_flip_with_probability_one_mirrors_left_right(batch):
    out = ViewAugment(16, **{**PLAIN, "flip_p": 1.0})(batch)
    assert torch.allclose(out, to_float(batch).flip(-1), atol=1e-5)


def test_crop_resizes_and_differs_per_image():
    same = torch.randint(0, 256, (1, 1, 28, 28), dtype=torch.uint8).repeat(8, 1, 1, 1)
    out = ViewAugment(20, jitter_p=0, grayscale_p=0)(same, generator=torch.Generator().manual_seed(1))
    assert out.shape == (8, 1, 20, 20)
    assert not torch.allclose(out[0], out[1]), "every image must get its own crop"


def test_grayscale_uses_luma_weights(batch):
    out, x = ViewAugment(16, **{**PLAIN, "grayscale_p": 1.0})(batch), to_float(batch)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        assert torch.allclose(out[:, c], luma, atol=1e-5)


def test_jitter_of_zero_strength_changes_nothing(batch):
    out = ViewAugment(16, **{**PLAIN, "jitter": (0, 0, 0, 0), "jitter_p": 1})(batch)
    assert torch.allclose(out, to_float(batch), atol=1e-5)


def test_brightness_scales_pixels_within_the_range():
    x = torch.full((200, 1, 4, 4), 128, dtype=torch.uint8)
    out = ViewAugment(4, **{**PLAIN, "jitter": (0.4, 0, 0, 0), "jitter_p": 1})(x)
    factors = out[:, 0, 0, 0] / (128 / 255)
    assert factors.min() >= 0.6 - 1e-5 and factors.max() <= 1.4 + 1e-5
    assert factors.std() > 0.1, "each image draws its own factor"


def test_hue_rotation_keeps_luma(batch):
    images = (batch * 0.2 + 102).to(torch.uint8)  # muted colours: a hue turn cannot leave [0, 1], nothing clips
    out, x = ViewAugment(16, **{**PLAIN, "jitter": (0, 0, 0, 0.3), "jitter_p": 1})(images), to_float(images)
    luma = lambda x: 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # noqa: E731
    assert torch.allclose(luma(out), luma(x), atol=1e-4)
    assert (out - x).abs().max() > 0.01, "the colours themselves must change"


def test_blur_keeps_flat_images_and_smooths_noise():
    flat = torch.full((2, 3, 10, 10), 77, dtype=torch.uint8)
    assert torch.allclose(ViewAugment(10, **PLAIN, blur_kernel=5, blur_p=1)(flat), to_float(flat), atol=1e-5)
    noise = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8)
    blurred = ViewAugment(32, **PLAIN, blur_kernel=9, blur_sigma=(2.0, 2.0), blur_p=1)(noise)
    assert blurred.std() < to_float(noise).std() / 2


def test_view_augment_takes_uint8_and_is_repeatable_with_a_generator():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    augment = ViewAugment(size=24, blur_kernel=3)
    a = augment(images, generator=torch.Generator().manual_seed(7))
    b = augment(images, generator=torch.Generator().manual_seed(7))
    assert a.shape == (5, 3, 24, 24) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1 + 1e-6
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "images",
    [
        torch.rand(2, 3, 16, 16) * 255,  # 0-255 floats used to come out all white
        torch.rand(2, 3, 16, 16) * 2 - 1,  # normalised values used to be clipped away
        torch.rand(2, 3, 16, 16),  # floats in [0, 1] too: the views are made from the stored uint8 images
        torch.zeros(2, 3, 16, 16, dtype=torch.long),
        torch.zeros(0, 3, 16, 16, dtype=torch.uint8),
        torch.zeros(3, 16, 16, dtype=torch.uint8),
        torch.zeros(2, 4, 16, 16, dtype=torch.uint8),  # RGBA: the colour operations need grey or RGB
    ],
    ids=["0-255 floats", "negative floats", "floats", "int64", "empty", "3-D", "4 channels"],
)
def test_view_augment_takes_only_a_batch_of_uint8_grey_or_rgb_images(images):
    with pytest.raises(ValueError, match=r"expects a non-empty uint8 batch \(N, 1 or 3, H, W\) as stored, got torch\."):
        ViewAugment(size=16)(images)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"size": 0}, "size must be an int >= 1, got 0"),
        (
            {"crop_scale": (0.9, 0.2)},
            r"crop_scale must be a pair \(min, max\) with 0 < min <= max <= 1.0, got \(0.9, 0.2\)",
        ),
        ({"crop_scale": (0.0, 0.0)}, "crop_scale"),
        ({"crop_scale": (0.5, 2.0)}, "crop_scale"),
        ({"crop_ratio": (4 / 3, 3 / 4)}, "crop_ratio"),
        ({"crop_ratio": (0.0, 1.0)}, "crop_ratio"),
        ({"flip_p": 2}, "flip_p must be a finite number >= 0 and <= 1, got 2"),
        ({"jitter_p": -0.1}, "jitter_p must be a finite number >= 0 and <= 1"),
        ({"grayscale_p": float("nan")}, "grayscale_p must be a finite number"),
        ({"blur_p": 1.5}, "blur_p must be a finite number >= 0 and <= 1"),
        ({"jitter": (-0.4, 0.4, 0.4, 0.1)}, "jitter brightness must be a finite number >= 0 and <= 1, got -0.4"),
        ({"jitter": (0.4, 1.5, 0.4, 0.1)}, "jitter contrast must be a finite number >= 0 and <= 1"),
        ({"jitter": (0.4, 0.4, 0.4, 0.7)}, "jitter hue must be a finite number >= 0 and <= 0.5, got 0.7"),
        ({"jitter": (0.4, 0.4)}, "jitter must be 4 strengths"),
        ({"blur_kernel": 4}, r"blur_kernel must be 0 \(off\) or odd, 3 to 31 for size 16, got 4"),
        ({"size": 8, "blur_kernel": 17}, "3 to 15 for size 8, got 17"),
        ({"blur_kernel": 3, "blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        ({"blur_kernel": 3, "blur_sigma": (2.0, 1.0)}, "blur_sigma"),
    ],
)
def test_view_augment_rejects_bad_settings_when_built(settings, message):
    with pytest.raises(ValueError, match=message):
        ViewAugment(**{"size": 16, **settings})


def test_view_augment_wants_pairs_for_ranges():
    with pytest.raises(ValueError, match=r"crop_scale must be a pair \(min, max\) .*, got 0.5"):
        ViewAugment(16, crop_scale=0.5)
    with pytest.raises(TypeError, match="size must be an int, got 16.0"):
        ViewAugment(16.0)


def test_view_augment_accepts_the_edge_settings(batch):
    # the ablations switch augmentations off with zeros and pin the crop with (1, 1)
    augment = ViewAugment(16, crop_scale=(1, 1), crop_ratio=(1, 1), flip_p=0, jitter=(0, 0, 0, 0), grayscale_p=0)
    assert torch.allclose(augment(batch), to_float(batch), atol=1e-5)
    ViewAugment(16, flip_p=1, jitter=(1, 1, 1, 0.5), jitter_p=1, grayscale_p=1, blur_kernel=31, blur_p=1)(batch)


def test_the_views_of_a_fixed_seed_are_the_ones_the_stored_runs_trained_on():
    # Pixel values written down from the augmentation code the laptop-profile runs used: a change
    # in the order of the random draws or in the arithmetic shows here before it moves any number.
    images = torch.randint(0, 256, (4, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    augment = ViewAugment(size=8, blur_kernel=3, grayscale_p=0.5)
    out = augment(images, generator=torch.Generator().manual_seed(11))
    expected = [[0.44815850] * 3, [0.59054124, 0.66387105, 0.56053740], [0.73162526] * 3, [0.53680855] * 3]
    assert torch.allclose(out[:, :, 3, 4], torch.tensor(expected), atol=1e-6)
    assert out.sum().item() == pytest.approx(432.64368, abs=1e-3)
    grey = ViewAugment(size=10)(images[:, :1], generator=torch.Generator().manual_seed(5))
    assert torch.allclose(grey[:, 0, 2, 7], torch.tensor([0.30011368, 0.51446027, 0.17174038, 0.31065273]), atol=1e-6)
    assert grey.sum().item() == pytest.approx(186.14497, abs=1e-3)
