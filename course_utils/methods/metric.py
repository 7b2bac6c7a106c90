"""Generated from the cells marked ``#| export`` in notebooks/04_metric_learning_mnist.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.images import to_float
from course_utils.losses import contrastive_pair_loss, triplet_loss
from course_utils.methods.simclr import nt_xent  # notebook 03's
from course_utils.models import ResNet18Backbone
from course_utils.runtime import mixed_precision


def label_pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of the positive and negative pairs (i, j), set only for i < j."""
    same = labels[:, None] == labels[None, :]
    upper = torch.ones_like(same).triu(diagonal=1)
    return same & upper, ~same & upper


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean (B, B, B) mask, entry (a, p, n) set for every valid triplet: (a, p) a positive pair and
    (a, n) a negative pair, each pair (i, j) serving as (anchor i, j) and as (anchor j, i)."""
    positive, negative = label_pair_masks(labels)
    positive, negative = positive | positive.T, negative | negative.T
    return positive[:, :, None] & negative[:, None, :]


def pairwise_distances(z: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of z (B, D): a (B, B) matrix, 0 on the diagonal. The
    squared distances are clamped above 0 before the square root, whose gradient at 0 is infinite
    (on the diagonal, and wherever two embeddings coincide)."""
    d2 = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)
    diagonal = torch.eye(len(z), dtype=torch.bool, device=z.device)
    return d2.clamp(min=1e-12).sqrt().masked_fill(diagonal, 0.0)


def all_pairs_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """The contrastive pair loss averaged over every unordered pair of the batch (as the source does)."""
    positive, negative = label_pair_masks(labels)
    i, j = torch.nonzero(positive | negative, as_tuple=True)
    return contrastive_pair_loss(z[i], z[j], positive[i, j], margin)


def all_triplets_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """The triplet loss averaged over every valid triplet of the batch ("batch all")."""
    a, p, n = torch.nonzero(triplet_mask(labels), as_tuple=True)
    if len(a) == 0:  # the mean over no triplet would be NaN
        raise ValueError("all_triplets_loss found no triplet: the batch needs 2 images of one class and 1 of "
                         f"another, got labels {labels.tolist()[:12]}")  # fmt: skip
    return triplet_loss(z[a], z[p], z[n], margin)


def hardest_distances(distances: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor: the distance to its farthest positive and to its closest negative."""
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(same, float("inf")).amin(dim=1)
    return hardest_positive, hardest_negative


def batch_hard_triplet_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """The triplet loss of each anchor's hardest triplet, averaged over the anchors (Hermans et al. 2017)."""
    hardest_positive, hardest_negative = hardest_distances(pairwise_distances(z), labels)
    if hardest_positive.isneginf().any() or hardest_negative.isposinf().any():  # the loss would ignore them
        raise ValueError("batch_hard_triplet_loss needs a positive and a negative for every anchor: at least 2 "
                         "images per class and 2 classes in the batch")  # fmt: skip
    return F.relu(hardest_positive - hardest_negative + margin).mean()


def supervised_nt_xent(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent with the labels choosing the positives (Khosla et al. 2020, their L_out): with one
    positive per item, SimCLR's NT-Xent."""
    positive, _ = label_pair_masks(labels)
    positive = positive | positive.T  # (i, p): p another item of i's class
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    if not positive.any(1).all():  # an item alone in its class: 0 / 0
        raise ValueError("supervised_nt_xent needs at least 2 images of every class in the batch")
    zn = F.normalize(z, dim=1)
    logits = (zn @ zn.T / temperature).masked_fill(~not_self, float("-inf"))
    log_prob = logits.log_softmax(1).masked_fill(~positive, 0.0)
    return (-log_prob.sum(1) / positive.sum(1)).mean()


class MetricNet(nn.Module):
    """ResNet-18 (one-channel stem) -> Linear: the embedding, put on the unit sphere when normalize
    (where the metric losses work). num_classes > 0 adds the cross-entropy baseline's classifier on
    top. forward returns the embedding."""

    def __init__(self, dim: int, width: int, stem_stride: int, normalize: bool, num_classes: int = 0):
        super().__init__()
        self.backbone = ResNet18Backbone(in_channels=1, width=width, small_images=True, stem_stride=stem_stride)
        self.embed = nn.Linear(self.backbone.out_dim, dim)
        self.normalize = normalize
        self.classifier = nn.Linear(dim, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(self.backbone(x))
        return F.normalize(z.float(), dim=1) if self.normalize else z


def metric_step(model: MetricNet, batch: tuple[torch.Tensor, torch.Tensor], recipe) -> torch.Tensor:
    """The loss of recipe.objective on one batch of uint8 images and their labels."""
    images, labels = batch
    view = to_float if recipe.augment is None else recipe.augment  # a random view of every image
    two_views = recipe.objective == "self_supervised"
    with mixed_precision(images.device):
        z = model(torch.cat([view(images), view(images)]) if two_views else view(images))
        logits = model.classifier(z) if recipe.objective == "cross_entropy" else None
    z = z.float()
    if two_views:  # the first half of z is one view of every image, the second half the other
        return nt_xent(*z.chunk(2), recipe.temperature)
    if logits is not None:
        return F.cross_entropy(logits.float(), labels)
    if recipe.objective == "nt_xent":
        return supervised_nt_xent(z, labels, recipe.temperature)
    if recipe.objective == "pairs":
        return all_pairs_loss(z, labels, recipe.margin)
    if recipe.objective == "triplets":
        return all_triplets_loss(z, labels, recipe.margin)
    return batch_hard_triplet_loss(z, labels, recipe.margin)
