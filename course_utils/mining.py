"""Pairs and triplets of a labelled batch, found with masks over its B x B distance
matrix (no Python loop over the B^2 pairs), and the batch losses built on them.

In a batch of B embeddings with labels, every unordered pair (i, j), i < j, is a
*positive* pair when the labels agree and a *negative* pair otherwise; every
(anchor a, positive p, negative n) with a != p, same label for a and p and another
label for n is a valid *triplet*. Labels [0, 0, 1, 1] give 2 positive pairs, 4
negative pairs and 8 triplets (each of the 4 anchors has 1 positive and 2 negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils.losses import at_least_float32, contrastive_pair_loss, nt_xent, triplet_loss


def _check_labels(z: torch.Tensor, labels: torch.Tensor) -> None:
    # fewer labels than embeddings would pair up only the first ones, silently
    if labels.shape != (len(z),):
        raise ValueError(f"labels must be one class per embedding, shape ({len(z)},), got {tuple(labels.shape)}")


def pairwise_distances(z: torch.Tensor) -> torch.Tensor:
    r"""Euclidean distances :math:`D_{ij} = \lVert z_i - z_j \rVert_2` of the rows of ``z`` (B, D).

    The squared distances come from the (B, B, D) differences (exact where two rows are
    equal, unlike the shortcut through :math:`z_i^\top z_j`) and are clamped at a tiny
    positive value before the square root, so that the gradient stays finite where two
    embeddings coincide (on the diagonal, and after a collapse).
    """
    d2 = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)
    return d2.clamp(min=1e-12).sqrt().masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), 0.0)


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of the positive and negative unordered pairs: entry (i, j) is set
    only for i < j, so each pair counts once and no item is paired with itself."""
    same = labels[:, None] == labels[None, :]
    upper = torch.ones_like(same).triu(diagonal=1)
    return same & upper, ~same & upper


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean (B, B, B) mask, entry (a, p, n) set for every valid triplet: a != p with the
    same label, n with another label. With P classes of K images there are
    P K (K - 1) (P - 1) K of them (360 for the source's P = 10, K = 2)."""
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & not_self  # (a, p)
    negative = ~same  # (a, n)
    return positive[:, :, None] & negative[:, None, :]


def batch_hard(distances: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every anchor, the distance to its *farthest* positive and its *closest*
    negative in the batch: the hardest triplet each anchor is part of (Hermans, Beyer &
    Leibe 2017, "In Defense of the Triplet Loss for Person Re-Identification").

    Every anchor needs at least one positive and one negative in the batch.
    """
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    if not positive.any(1).all() or same.all(1).any():
        raise ValueError("batch_hard needs a positive and a negative for every anchor: at least 2 images per class")
    hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(1)
    hardest_negative = distances.masked_fill(same, float("inf")).amin(1)
    return hardest_positive, hardest_negative


def all_pairs_loss(z: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """:func:`~course_utils.losses.contrastive_pair_loss` (Hadsell, Chopra & LeCun 2006,
    "Dimensionality Reduction by Learning an Invariant Mapping") averaged over every
    unordered pair of the batch, positives and negatives alike (as the source does)."""
    _check_labels(z, labels)
    positive, negative = pair_masks(labels)
    i, j = torch.nonzero(positive | negative, as_tuple=True)
    if len(i) == 0:
        raise ValueError(f"all_pairs_loss needs a batch of at least 2 embeddings, got {len(z)}")
    return contrastive_pair_loss(z[i], z[j], positive[i, j], margin)


def all_triplets_loss(z: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """:func:`~course_utils.losses.triplet_loss` (Schroff, Kalenichenko & Philbin 2015,
    "FaceNet") averaged over every valid triplet of the batch ("batch all")."""
    _check_labels(z, labels)
    a, p, n = torch.nonzero(triplet_mask(labels), as_tuple=True)
    if len(a) == 0:
        raise ValueError("all_triplets_loss found no triplet: the batch needs 2 images of one class and 1 of another, "
                         f"got labels {labels.tolist()[:12]}")  # fmt: skip
    return triplet_loss(z[a], z[p], z[n], margin)


def batch_hard_triplet_loss(z: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    r"""Batch-hard triplet loss (Hermans et al. 2017): one triplet per anchor, its
    farthest positive and closest negative (:func:`batch_hard`),

    .. math:: \mathcal{L} = \frac1B \sum_a \max\big(0,\ \max_p D_{ap} - \min_n D_{an} + m\big)

    If every embedding collapses onto one point the loss is stuck at ``margin``: watch it.
    """
    _check_labels(z, labels)
    hardest_positive, hardest_negative = batch_hard(pairwise_distances(z), labels)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


def supervised_nt_xent(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""NT-Xent with the labels choosing the positives (Khosla et al. 2020, "Supervised
    Contrastive Learning", their :math:`\mathcal{L}^{sup}_{out}`; with one positive per
    anchor it is SimCLR's NT-Xent and Sohn 2016's N-pair loss).

    With :math:`s_{ij} = \hat z_i^\top \hat z_j / \tau` on L2-normalised embeddings and
    :math:`P(i)` the other items of i's class,

    .. math:: \mathcal{L} = \frac1B \sum_i \frac{-1}{|P(i)|} \sum_{p \in P(i)}
              \log \frac{\exp(s_{ip})}{\sum_{k \ne i} \exp(s_{ik})}

    In the source's batches (K = 2) each item's one positive is the other member of its pair.
    """
    _check_labels(z, labels)
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & not_self
    if not positive.any(1).all():
        raise ValueError("supervised_nt_xent needs at least 2 images of every class in the batch")
    zn = F.normalize(at_least_float32(z), dim=1)
    logits = (zn @ zn.T / temperature).masked_fill(~not_self, float("-inf"))
    log_prob = logits.log_softmax(1).masked_fill(~positive, 0.0)
    return (-log_prob.sum(1) / positive.sum(1)).mean()


def two_view_nt_xent(z: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Self-supervised NT-Xent (Chen et al. 2020, SimCLR) on a batch whose first half holds
    one view of every image and the second half another view: no labels used."""
    half = len(z) // 2
    return nt_xent(z[:half], z[half:], temperature)
