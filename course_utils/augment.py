"""Random image augmentations that work on a whole batch at once.

torchvision's transforms draw one set of random parameters per call, so giving
every image its own crop means a Python loop over the images. Here each function
takes a float batch ``(N, C, H, W)`` with values in ``[0, 1]``, draws the random
parameters for all N images together and applies them with a few tensor ops.
On a laptop CPU this is what keeps two augmented views per image affordable.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_utils.checks import image_batch
from course_utils.images import to_float

Range = tuple[float, float]

# ITU-R 601 luma weights, the ones torchvision's rgb_to_grayscale uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator=None) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=like.device) * (high - low) + low


def _check_size(name: str, size: int) -> None:
    if isinstance(size, bool) or not (isinstance(size, numbers.Integral) and size > 0):
        raise ValueError(f"{name} must be a positive int, got {size!r}")


def _check_probability(name: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def _check_interval(name: str, pair: Range, low: float, high: float = math.inf) -> None:
    """``pair`` is (min, max) with low < min <= max <= high."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(v, numbers.Real) for v in pair)):
        raise TypeError(f"{name} must be a pair (min, max) of numbers, got {pair!r}")
    if not low < pair[0] <= pair[1] <= high or not math.isfinite(pair[1]):
        upper = "" if high == math.inf else f" <= {high}"
        raise ValueError(f"{name} must be (min, max) with {low} < min <= max{upper}, got {tuple(pair)}")


def _check_jitter(brightness: float, contrast: float, saturation: float, hue: float) -> None:
    # Factors are drawn from [1 - s, 1 + s]: past 1 they could turn negative and invert the image.
    limits = {"brightness": 1, "contrast": 1, "saturation": 1, "hue": 0.5}
    for (name, high), strength in zip(limits.items(), [brightness, contrast, saturation, hue]):
        if not 0 <= strength <= high:
            raise ValueError(f"color jitter {name} must be in [0, {high}], got {strength}")


def _check_kernel(name: str, kernel_size: int, height: int, width: int) -> None:
    if not (isinstance(kernel_size, numbers.Integral) and kernel_size >= 3 and kernel_size % 2 == 1):
        raise ValueError(f"{name} must be an odd number >= 3, got {kernel_size!r}")
    side = kernel_size // 2 + 1  # reflect padding needs a border narrower than the image
    if min(height, width) < side:
        raise ValueError(f"{name} {kernel_size} needs images of at least {side}x{side}, got {height}x{width}")


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    scale: Range = (0.08, 1.0),
    ratio: Range = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random box from every image, resize it to ``size`` x ``size``, maybe mirror it.

    The box covers a fraction ``scale`` of the image area with aspect ratio in
    ``ratio`` (as torchvision's ``RandomResizedCrop``), and each image is flipped
    left-right with probability ``flip_p``. One ``affine_grid`` + ``grid_sample``
    does crop, resize and flip for the whole batch.
    """
    image_batch(x, "random_resized_crop")
    _check_size("size", size)
    _check_interval("scale", scale, 0, 1)
    _check_interval("ratio", ratio, 0)
    _check_probability("flip_p", flip_p)
    return _random_resized_crop(x, size, scale, ratio, flip_p, generator)


def _random_resized_crop(x, size, scale, ratio, flip_p, generator):
    n = x.shape[0]
    area = _uniform(n, *scale, x, generator)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), x, generator)
    aspect = torch.exp(log_r)
    # Box width and height as fractions of the image side, clipped to the image.
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    # Box centre in grid_sample's [-1, 1] coordinates, kept inside the image.
    cx = (torch.rand(n, generator=generator, device=x.device) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=generator, device=x.device) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=generator, device=x.device) < flip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    if x.shape[1] != 3:
        raise ValueError(f"colour augmentations expect 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    return torch.einsum("nchw,c->nhw", x, _LUMA.to(x)).unsqueeze(1)


def _rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each RGB image by ``turns`` of a full circle (in YIQ colour space)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device)
    angle = 2 * math.pi * turns
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(turns), 3, 3, device=x.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return torch.einsum("nij,njhw->nihw", matrix, x)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue, each image with its own factors.

    Factors are drawn from ``[1 - s, 1 + s]`` for strength ``s`` in [0, 1] (hue: a shift in
    ``[-hue, hue]`` turns, hue in [0, 0.5]), as in torchvision's ``ColorJitter``; the ops run
    in a fixed order. Each image is jittered with probability ``p``. Saturation and hue
    leave one-channel images unchanged.
    """
    image_batch(x, "color_jitter")
    _check_jitter(brightness, contrast, saturation, hue)
    _check_probability("p", p)
    return _color_jitter(x, brightness, contrast, saturation, hue, p, generator)


def _color_jitter(x, brightness, contrast, saturation, hue, p, generator):
    n = x.shape[0]
    factor = lambda s: _uniform(n, 1 - s, 1 + s, x, generator).view(n, 1, 1, 1)  # noqa: E731
    out = (x * factor(brightness)).clamp(0, 1)
    gray = out if out.shape[1] == 1 else _grayscale(out)
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    out = ((out - mean) * factor(contrast) + mean).clamp(0, 1)
    if out.shape[1] == 3:
        gray = _grayscale(out)
        out = ((out - gray) * factor(saturation) + gray).clamp(0, 1)
        if hue > 0:
            out = _rotate_hue(out, _uniform(n, -hue, hue, x, generator)).clamp(0, 1)
    keep = torch.rand(n, generator=generator, device=x.device) >= p
    return torch.where(keep.view(n, 1, 1, 1), x, out)


def random_grayscale(x: torch.Tensor, p: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn each RGB image grey (all three channels equal) with probability ``p``."""
    image_batch(x, "random_grayscale")
    _check_probability("p", p)
    return _random_grayscale(x, p, generator)


def _random_grayscale(x, p, generator):
    if x.shape[1] == 1:
        return x
    pick = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(pick.view(-1, 1, 1, 1), _grayscale(x).expand_as(x), x)


def gaussian_blur(
    x: torch.Tensor,
    kernel_size: int,
    sigma: Range = (0.1, 2.0),
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Blur each image with its own Gaussian (sigma drawn from ``sigma``) with probability ``p``.

    The separable kernel is applied as two grouped convolutions, one kernel per image.
    """
    image_batch(x, "gaussian_blur")
    _check_kernel("kernel_size", kernel_size, *x.shape[-2:])
    _check_interval("sigma", sigma, 0)
    _check_probability("p", p)
    return _gaussian_blur(x, kernel_size, sigma, p, generator)


def _gaussian_blur(x, kernel_size, sigma, p, generator):
    n, c, h, w = x.shape
    s = _uniform(n, *sigma, x, generator).view(n, 1)
    offsets = torch.arange(kernel_size, device=x.device) - kernel_size // 2
    kernel = torch.exp(-(offsets**2) / (2 * s**2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*c, k)
    pad = kernel_size // 2
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode="reflect"), kernel.view(n * c, 1, -1, 1), groups=n * c)
    blurred = flat.view(n, c, h, w)
    pick = torch.rand(n, generator=generator, device=x.device) < p
    return torch.where(pick.view(n, 1, 1, 1), blurred, x)


@dataclass(frozen=True)
class ViewAugment:
    """The SimCLR family of augmentations, one random view per call.

    Set a strength to 0 (or a probability to 0) to switch that augmentation off,
    which is how the notebooks run their ablations; ``blur_kernel=0`` means no blur.
    Frozen, so that a recipe can hold it. The settings are checked when it is built.
    """

    size: int
    crop_scale: Range = (0.08, 1.0)
    crop_ratio: Range = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_kernel: int = 0
    blur_sigma: Range = (0.1, 2.0)
    blur_p: float = 0.5

    def __post_init__(self) -> None:
        _check_size("size", self.size)
        _check_interval("crop_scale", self.crop_scale, 0, 1)
        _check_interval("crop_ratio", self.crop_ratio, 0)
        for name in ["flip_p", "jitter_p", "grayscale_p", "blur_p"]:
            _check_probability(name, getattr(self, name))
        if not (isinstance(self.jitter, (tuple, list)) and len(self.jitter) == 4):
            raise ValueError(f"jitter must be 4 strengths (brightness, contrast, saturation, hue), got {self.jitter!r}")
        _check_jitter(*self.jitter)
        if self.blur_kernel != 0:
            _check_kernel("blur_kernel", self.blur_kernel, self.size, self.size)
            _check_interval("blur_sigma", self.blur_sigma, 0)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 or [0, 1] float batch (N, C, H, W) -> augmented float batch (N, C, size, size)."""
        uint8 = isinstance(images, torch.Tensor) and images.dtype == torch.uint8
        image_batch(images, "ViewAugment", floats=not uint8)
        x = to_float(images) if uint8 else images
        # Input and settings are checked once here, so the steps skip the public functions' checks.
        x = _random_resized_crop(x, self.size, self.crop_scale, self.crop_ratio, self.flip_p, generator)
        if self.jitter_p > 0 and any(self.jitter):
            x = _color_jitter(x, *self.jitter, p=self.jitter_p, generator=generator)
        if self.grayscale_p > 0:
            x = _random_grayscale(x, self.grayscale_p, generator=generator)
        if self.blur_kernel:
            x = _gaussian_blur(x, self.blur_kernel, self.blur_sigma, self.blur_p, generator=generator)
        return x
