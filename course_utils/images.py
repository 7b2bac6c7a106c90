"""uint8 image batches: conversion to float and resizing.

Datasets live in memory as uint8 ``(N, C, H, W)`` tensors; models see float32 in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import checks


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 images in [0, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image batch, got dtype {images.dtype}")
    return images.float().div_(255)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> uint8 images (N, C, size, size), antialiased;
    returned unchanged when they already have that size."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    size = checks.count("size", size)
    if images.shape[-2:] == (size, size):
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
