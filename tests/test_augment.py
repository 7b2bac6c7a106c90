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
