"""Batched augmentations: identities where they must be, formulas where they apply."""

from __future__ import annotations

import pytest
import torch

from course_utils.augment import (
    ViewAugment,
    color_jitter,
    gaussian_blur,
    random_grayscale,
    random_resized_crop,
    to_float,
)


@pytest.fixture
def batch():
    return torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_full_crop_without_flip_is_the_identity(batch):
    out = random_resized_crop(batch, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    assert torch.allclose(out, batch, atol=1e-5)


def test_flip_with_probability_one_mirrors_left_right(batch):
    out = random_resized_crop(batch, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    assert torch.allclose(out, batch.flip(-1), atol=1e-5)


def test_crop_resizes_and_differs_per_image():
    same = torch.rand(1, 1, 28, 28).repeat(8, 1, 1, 1)
    out = random_resized_crop(same, 20, generator=torch.Generator().manual_seed(1))
    assert out.shape == (8, 1, 20, 20)
    assert not torch.allclose(out[0], out[1]), "every image must get its own crop"


def test_grayscale_uses_luma_weights(batch):
    out = random_grayscale(batch, p=1.0)
    luma = 0.299 * batch[:, 0] + 0.587 * batch[:, 1] + 0.114 * batch[:, 2]
    for c in range(3):
        assert torch.allclose(out[:, c], luma, atol=1e-6)
    assert torch.equal(random_grayscale(batch, p=0.0), batch)


def test_jitter_off_or_zero_strength_changes_nothing(batch):
    assert torch.equal(color_jitter(batch, p=0.0), batch)
    assert torch.allclose(color_jitter(batch, 0, 0, 0, 0, p=1.0), batch, atol=1e-6)


def test_brightness_scales_pixels_within_the_range():
    x = torch.full((200, 1, 4, 4), 0.5)
    out = color_jitter(x, brightness=0.4, contrast=0, saturation=0, hue=0, p=1.0)
    factors = out[:, 0, 0, 0] / 0.5
    assert factors.min() >= 0.6 - 1e-6 and factors.max() <= 1.4 + 1e-6
    assert factors.std() > 0.1, "each image draws its own factor"


def test_hue_rotation_keeps_luma(batch):
    x = batch * 0.2 + 0.4  # muted colours: a hue turn cannot leave [0, 1], so nothing is clipped
    out = color_jitter(x, 0, 0, 0, hue=0.3, p=1.0)
    luma = lambda x: 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # noqa: E731
    assert torch.allclose(luma(out), luma(x), atol=1e-4)
    assert (out - x).abs().max() > 0.01, "the colours themselves must change"


def test_blur_keeps_flat_images_and_smooths_noise():
    flat = torch.full((2, 3, 10, 10), 0.3)
    assert torch.allclose(gaussian_blur(flat, 5, p=1.0), flat, atol=1e-6)
    noise = torch.rand(4, 1, 32, 32)
    assert gaussian_blur(noise, 9, sigma=(2.0, 2.0), p=1.0).std() < noise.std() / 2
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(noise, 4)


def test_view_augment_takes_uint8_and_is_repeatable_with_a_generator():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    augment = ViewAugment(size=24, blur_kernel=3)
    a = augment(images, generator=torch.Generator().manual_seed(7))
    b = augment(images, generator=torch.Generator().manual_seed(7))
    assert a.shape == (5, 3, 24, 24) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1 + 1e-6
    assert torch.equal(a, b)


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="uint8"):
        to_float(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_resized_crop(torch.rand(1, 4, 4), 4)


@pytest.mark.parametrize(
    "augment",
    [
        ViewAugment(size=16),
        lambda x: random_resized_crop(x, 16),
        color_jitter,
        random_grayscale,
        lambda x: gaussian_blur(x, 3),
    ],
    ids=["ViewAugment", "random_resized_crop", "color_jitter", "random_grayscale", "gaussian_blur"],
)
@pytest.mark.parametrize("scale", [255.0, -1.0, float("nan")], ids=["0-255", "negative", "nan"])
def test_float_images_outside_0_1_are_rejected(batch, augment, scale):
    # 0-255 floats used to come out all white; normalised (negative) values were clipped away
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*uint8 images or divide by 255"):
        augment(batch * scale)


def test_augmentations_reject_an_empty_batch_and_odd_channel_counts(batch):
    with pytest.raises(ValueError, match="empty batch"):
        ViewAugment(size=16)(torch.zeros(0, 3, 16, 16, dtype=torch.uint8))
    rgba = torch.rand(2, 4, 16, 16)
    for colour_op in [color_jitter, random_grayscale, ViewAugment(size=16)]:
        with pytest.raises(ValueError, match="1 .* or 3 .* channels, got 4"):
            colour_op(rgba)
    assert ViewAugment(size=8, jitter_p=0, grayscale_p=0)(rgba).shape == (2, 4, 8, 8), "crops work on any channels"
    with pytest.raises(TypeError, match="expects float images, got torch.int64"):
        ViewAugment(size=16)(batch.long())
    with pytest.raises(TypeError, match="float images, got torch.uint8; convert uint8 with .*to_float"):
        color_jitter(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"size": 0}, "size must be a positive int"),
        ({"crop_scale": (0.9, 0.2)}, "crop_scale"),
        ({"crop_scale": (0.0, 0.0)}, "crop_scale"),
        ({"crop_scale": (0.5, 2.0)}, "crop_scale"),
        ({"crop_ratio": (4 / 3, 3 / 4)}, "crop_ratio"),
        ({"crop_ratio": (0.0, 1.0)}, "crop_ratio"),
        ({"flip_p": 2}, "flip_p must be a probability"),
        ({"jitter_p": -0.1}, "jitter_p must be a probability"),
        ({"grayscale_p": float("nan")}, "grayscale_p must be a probability"),
        ({"blur_p": 1.5}, "blur_p must be a probability"),
        ({"jitter": (-0.4, 0.4, 0.4, 0.1)}, "brightness must be in"),
        ({"jitter": (0.4, 1.5, 0.4, 0.1)}, "contrast must be in"),
        ({"jitter": (0.4, 0.4, 0.4, 0.7)}, "hue must be in"),
        ({"jitter": (0.4, 0.4)}, "jitter must be 4 strengths"),
        ({"blur_kernel": 4}, "blur_kernel must be an odd number >= 3"),
        ({"size": 8, "blur_kernel": 17}, "blur_kernel"),
        ({"blur_kernel": 3, "blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        ({"blur_kernel": 3, "blur_sigma": (2.0, 1.0)}, "blur_sigma"),
    ],
)
def test_view_augment_rejects_bad_settings_when_built(settings, message):
    with pytest.raises(ValueError, match=message):
        ViewAugment(**{"size": 16, **settings})


def test_view_augment_wants_pairs_for_ranges():
    with pytest.raises(TypeError, match=r"crop_scale must be a pair \(min, max\) of numbers, got 0.5"):
        ViewAugment(16, crop_scale=0.5)


def test_view_augment_accepts_the_edge_settings(batch):
    # the ablations switch augmentations off with zeros and pin the crop with (1, 1)
    augment = ViewAugment(16, crop_scale=(1, 1), crop_ratio=(1, 1), flip_p=0, jitter=(0, 0, 0, 0), grayscale_p=0)
    assert torch.allclose(augment(batch), batch, atol=1e-5)
    ViewAugment(16, flip_p=1, jitter=(1, 1, 1, 0.5), jitter_p=1, grayscale_p=1, blur_kernel=31, blur_p=1)


def test_batch_functions_reject_bad_settings(batch):
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(batch, 16, scale=(0.9, 0.2))
    with pytest.raises(ValueError, match="size must be a positive int"):
        random_resized_crop(batch, 0)
    with pytest.raises(ValueError, match="brightness"):
        color_jitter(batch, brightness=-0.5)
    with pytest.raises(ValueError, match="p must be a probability"):
        random_grayscale(batch, p=1.5)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(batch, 3, sigma=(0.0, 0.0))
    with pytest.raises(ValueError, match=r"kernel_size 9 needs images of at least 5x5, got 4x4"):
        gaussian_blur(batch[:, :, :4, :4], 9)


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
