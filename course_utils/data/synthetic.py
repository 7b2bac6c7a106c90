"""A small synthetic stand-in for a dataset, used only by the ``smoke`` profile.

Each class is a striped pattern (a sinusoidal grating) at its own angle; every
image gets a random phase, stripe width, contrast, colour and pixel noise. The
angle survives crops, colour changes and blur, so a small network really can
learn the classes, yet nothing about the real dataset can be read from it.
"""

from __future__ import annotations

import math
import zlib

import torch

from .catalogue import dataset_info

SIZES = {"train": 2000, "test": 500, "unlabeled": 2000}  # train: room for a validation split


def synthetic_standin(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, C, H, W) with the real dataset's shape and class count, and int64 labels.

    Classes are balanced; ``unlabeled`` gets labels -1. The same (name, split)
    always gives the same images.
    """
    info = dataset_info(name)
    if split not in SIZES:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SIZES)}")
    channels, height, width = info.shape
    num_classes = len(info.classes)
    n = SIZES[split]
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}/{split}".encode()))
    labels = torch.arange(n) % num_classes
    # Angles spread over half a turn, so that a left-right flip maps no class onto another.
    angle = (labels.float() + 0.5) * (math.pi / 2) / num_classes + torch.randn(n, generator=g) * 0.03
    period = height / 4 * (1 + 0.2 * torch.rand(n, generator=g))
    phase = 2 * math.pi * torch.rand(n, generator=g)
    y, x = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    along = x * torch.cos(angle).view(n, 1, 1) + y * torch.sin(angle).view(n, 1, 1)
    stripes = torch.sin(2 * math.pi * along / period.view(n, 1, 1) + phase.view(n, 1, 1))
    contrast = 0.3 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
    colour = 0.6 + 0.4 * torch.rand(n, channels, 1, 1, generator=g)
    images = (
        0.5 + contrast * colour * stripes.unsqueeze(1) + 0.05 * torch.randn(n, channels, height, width, generator=g)
    )
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    targets = torch.full((n,), -1) if split == "unlabeled" else labels
    return images, targets.long()
