"""The losses of the course, each a plain function of embeddings.

Shapes: embeddings are ``(N, D)`` float tensors, one row per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import checks


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


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""SimCLR's NT-Xent (InfoNCE) loss over the 2N views of a batch.

    ``z1[i]`` and ``z2[i]`` are two views of image i. With all 2N views
    L2-normalised and :math:`s_{ij} = z_i^\top z_j / \tau`, each view i has its
    other view :math:`p(i)` as the positive and the remaining 2N - 2 views as
    negatives:

    .. math::
        \ell_i = -\log \frac{\exp(s_{i\,p(i)})}{\sum_{k \ne i} \exp(s_{ik})},
        \qquad \mathcal{L} = \frac{1}{2N} \sum_{i=1}^{2N} \ell_i
    """
    _check_pair(z1, z2, "z1 and z2")
    checks.temperature(temperature)
    n = len(z1)
    if n < 2:
        raise ValueError(f"nt_xent needs at least 2 images per batch (the other images are the negatives), got {n}")
    z = F.normalize(at_least_float32(torch.cat([z1, z2])), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own candidate
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, positives)


def negative_cosine(p: torch.Tensor, z: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    r"""Mean negative cosine similarity, with no gradient flowing into ``z`` unless
    ``stop_gradient`` is False:
    :math:`-\frac{1}{N}\sum_i \frac{p_i}{\lVert p_i\rVert} \cdot \frac{\mathrm{sg}(z_i)}{\lVert z_i\rVert}`.
    """
    _check_pair(p, z, "p and z")
    return -F.cosine_similarity(p, z.detach() if stop_gradient else z, dim=1).mean()


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, stop_gradient: bool = True
) -> torch.Tensor:
    r"""SimSiam's symmetric loss: each view's prediction chases the other view's
    (stop-gradient) projection,
    :math:`\mathcal{L} = \tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))`
    with :math:`D` = :func:`negative_cosine`. It lies in [-1, 1]; -1 is perfect agreement.
    ``stop_gradient=False`` lets the gradient flow into both sides of each term: the
    ablation with which the SimSiam paper shows the encoder collapse.
    """
    return 0.5 * negative_cosine(p1, z2, stop_gradient) + 0.5 * negative_cosine(p2, z1, stop_gradient)


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
