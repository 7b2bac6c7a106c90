"""Random image augmentations that work on a whole batch at once.

torchvision's transforms draw one set of random parameters per call, so giving
every image its own crop means a Python loop over the images. Here each operation
takes a float batch ``(N, C, H, W)`` with values in ``[0, 1]``, draws the random
parameters for all N images together and applies them with a few tensor ops.
On a laptop CPU this is what keeps two augmented views per image affordable.
:class:`ViewAugment` chains them; it checks its settings once, when it is built,
and its images (uint8, as the datasets store them) when it is called.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_utils import checks
from course_utils.images import to_float

Range = tuple[float, float]

# ITU-R 601 luma weights, the ones torchvision's rgb_to_grayscale uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])
# The settings' inclusive (low, high) for checks.fields; size and blur_kernel are ints, the rest floats.
LIMITS = {"flip_p": (0, 1), "jitter_p": (0, 1), "grayscale_p": (0, 1), "blur_p": (0, 1), "blur_kernel": (0, None)}
# The (min, max) ranges, 0 < min <= max <= this.
RANGES = {"crop_scale": 1.0, "crop_ratio": math.inf, "blur_sigma": math.inf}
# Jitter factors are drawn from [1 - s, 1 + s]: past 1 they could turn negative and invert the image.
JITTER = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.5}


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator=None) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=like.device) * (high - low) + low


def _random_resized_crop(x: torch.Tensor, size: int, scale: Range, ratio: Range, flip_p: float, generator=None):
    """Crop a random box from every image, resize it to ``size`` x ``size``, maybe mirror it.

    The box covers a fraction ``scale`` of the image area with aspect ratio in
    ``ratio`` (as torchvision's ``RandomResizedCrop``), and each image is flipped
    left-right with probability ``flip_p``. One ``affine_grid`` + ``grid_sample``
    does crop, resize and flip for the whole batch.
    """
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


def _color_jitter(
    x: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float, p: float, generator=None
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue, each image with its own factors.

    Factors are drawn from ``[1 - s, 1 + s]`` for strength ``s`` (hue: a shift in
    ``[-hue, hue]`` turns), as in torchvision's ``ColorJitter``; the ops run in a fixed
    order. Each image is jittered with probability ``p``. Saturation and hue leave
    one-channel images unchanged.
    """
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


def _random_grayscale(x: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """Turn each RGB image grey (all three channels equal) with probability ``p``."""
    if x.shape[1] == 1:
        return x
    pick = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(pick.view(-1, 1, 1, 1), _grayscale(x).expand_as(x), x)


def _gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: Range, p: float, generator=None) -> torch.Tensor:
    """Blur each image with its own Gaussian (sigma drawn from ``sigma``) with probability ``p``.

    The separable kernel is applied as two grouped convolutions, one kernel per image.
    """
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
        checks.fields(self, LIMITS)
        for name, high in RANGES.items():
            pair = getattr(self, name)
            if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(v, numbers.Real) for v in pair)
                    and 0 < pair[0] <= pair[1] <= high and math.isfinite(pair[1])):  # fmt: skip
                raise ValueError(f"{name} must be a pair (min, max) with 0 < min <= max <= {high}, got {pair!r}")
        if not (isinstance(self.jitter, tuple | list) and len(self.jitter) == 4):
            raise ValueError(f"jitter must be 4 strengths (brightness, contrast, saturation, hue), got {self.jitter!r}")
        for (name, high), strength in zip(JITTER.items(), self.jitter):
            checks.number(f"jitter {name}", strength, 0, high)
        k, side = self.blur_kernel, self.size
        if k and not (k % 2 == 1 and 3 <= k < 2 * side):  # reflect padding needs half the kernel inside the view
            raise ValueError(f"blur_kernel must be 0 (off) or odd, 3 to {2 * side - 1} for size {side}, got {k}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 batch (N, C, H, W), C = 1 or 3 -> augmented float batch (N, C, size, size) in [0, 1]."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
            shape = f"{images.dtype} {tuple(images.shape)}"
            raise ValueError(f"ViewAugment expects a non-empty uint8 batch (N, 1 or 3, H, W) as stored, got {shape}")
        x = _random_resized_crop(to_float(images), self.size, self.crop_scale, self.crop_ratio, self.flip_p, generator)
        if self.jitter_p > 0 and any(self.jitter):
            x = _color_jitter(x, *self.jitter, p=self.jitter_p, generator=generator)
        if self.grayscale_p > 0:
            x = _random_grayscale(x, self.grayscale_p, generator=generator)
        if self.blur_kernel:
            x = _gaussian_blur(x, self.blur_kernel, self.blur_sigma, self.blur_p, generator=generator)
        return x
