"""Many views per image for SimCLR: a candidate of the time-to-accuracy search.

EMP-SSL (Tong et al., 2023, arXiv:2304.03977) and SwAV's multi-crop (Caron et al., 2020,
arXiv:2006.09882) get more out of each image by taking more than two views of it. With V
views, every view's positives are the other V - 1 views of its image and its negatives the
views of every other image in the batch: the supervised contrastive loss (Khosla et al.,
2020, arXiv:2004.11362) with the image as the label. For V = 2 it is NT-Xent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_utils.methods.simclr import SimCLR, pretext_metrics
from course_utils.runtime import mixed_precision


def multi_view_nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Contrastive loss of (V, N, D) embeddings of V views of N images, averaged over the V*N views:
    minus the mean log-softmax probability of each view's V - 1 positives."""
    views, n, dim = z.shape
    if views < 2 or n < 2:
        raise ValueError(f"multi_view_nt_xent needs (V, N, D) with V >= 2 views of N >= 2 images, got {tuple(z.shape)}")
    z = F.normalize(z.reshape(views * n, dim), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own candidate
    image = torch.arange(n, device=z.device).repeat(views)
    positive = image[:, None] == image[None, :]
    positive.fill_diagonal_(False)
    log_probability = logits.log_softmax(dim=1)
    return -(log_probability.masked_fill(~positive, 0).sum(dim=1) / (views - 1)).mean()


def multi_view_step(views: int) -> Callable:
    """A SimCLR training step that takes ``views`` random views of every image (recipe.augment)."""

    def step(model: SimCLR, images: torch.Tensor, recipe) -> tuple[torch.Tensor, dict[str, float]]:
        x = torch.cat([recipe.augment(images) for _ in range(views)])
        with mixed_precision(images.device):
            z = model.projector(model.backbone(x))
        z = z.float().reshape(views, len(images), -1)
        return multi_view_nt_xent(z, recipe.temperature), pretext_metrics(z[0], z[1])

    step.__name__ = f"multi_view_step_{views}"
    return step
