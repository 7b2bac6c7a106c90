"""The losses of the course, each a plain function of embeddings.

Shapes: embeddings are ``(N, D)`` float tensors, one row per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{names} must both be (N, D) with the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) == 0:
        raise ValueError(f"{names} are an empty batch; a loss needs at least one row")  # the mean would be NaN
    if not a.is_floating_point() or not b.is_floating_point():
        raise TypeError(f"{names} must be float embeddings, got {a.dtype} and {b.dtype}")


def at_least_float32(z: torch.Tensor) -> torch.Tensor:
    """``z`` in float32, or float64 if it is float64: a loss computed from bfloat16 outputs
    keeps float32's precision, and a float64 check keeps its own."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def contrastive_pair_loss(x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    r"""Margin loss on pairs (Hadsell et al. 2006). With :math:`d_i = \lVert x_{1i} - x_{2i}\rVert_2`
    and :math:`y_i = 1` for a same-class pair, 0 otherwise:

    .. math:: \mathcal{L} = \frac{1}{N}\sum_i y_i d_i^2 + (1 - y_i) \max(0, m - d_i)^2

    Same-class pairs are pulled together; other pairs are pushed at least ``margin`` apart.
    """
    _check_pair(x1, x2, "x1 and x2")
    if same.shape != (len(x1),) or ((same != 0) & (same != 1)).any():  # class labels would train silently
        raise ValueError(f"same must be one 0/1 flag per pair, got {tuple(same.shape)} {same.unique().tolist()[:6]}")
    d = F.pairwise_distance(x1, x2)
    y = same.float()
    return (y * d.pow(2) + (1 - y) * F.relu(margin - d).pow(2)).mean()


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    r"""Triplet loss (Schroff et al. 2015): the anchor must be closer to the positive
    than to the negative by at least ``margin``:

    .. math:: \mathcal{L} = \frac{1}{N}\sum_i \max(0, \lVert a_i - p_i\rVert_2 - \lVert a_i - n_i\rVert_2 + m)
    """
    _check_pair(anchor, positive, "anchor and positive")
    _check_pair(anchor, negative, "anchor and negative")
    d_pos = F.pairwise_distance(anchor, positive)
    d_neg = F.pairwise_distance(anchor, negative)
    return F.relu(d_pos - d_neg + margin).mean()
