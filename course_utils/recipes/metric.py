"""Notebook 04's recipes: a ResNet-18 embedding of MNIST digits trained with one of six
objectives on the source's 3,000-image subset (90 % train, 10 % validation).

>>> model, history = MetricRecipe.default(objective="triplets_hard", dim=32).pretrained()
>>> z = extract_features(model, test_images)  # (N, 32) embeddings
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import hold_out, load_dataset
from course_utils.evaluate import extract_features, knn_accuracy
from course_utils.images import to_float
from course_utils.mining import (
    all_pairs_loss,
    all_triplets_loss,
    batch_hard_triplet_loss,
    supervised_nt_xent,
    two_view_nt_xent,
)
from course_utils.models import ResNet18Backbone
from course_utils.recipes import Recipe
from course_utils.runtime import mixed_precision, pick
from course_utils.samplers import ClassBalancedBatches
from course_utils.train import BestEpoch, Step, StepOutput, fit

__all__ = ["OBJECTIVES", "MetricData", "MetricNet", "MetricRecipe", "mnist_subset"]

# name -> what the loss compares; "self_supervised" uses no labels at all
OBJECTIVES = {
    "pairs": "contrastive pairs with a margin, all pairs of the batch",
    "triplets": "triplet loss, all triplets of the batch",
    "triplets_hard": "triplet loss, batch-hard mining",
    "nt_xent": "supervised NT-Xent, the other member of each pair as the positive",
    "cross_entropy": "cross-entropy of a linear classifier on the embedding",
    "self_supervised": "NT-Xent on two augmented views of each image, no labels",
}
LABEL_LOSSES = {
    "pairs": all_pairs_loss,
    "triplets": all_triplets_loss,
    "triplets_hard": batch_hard_triplet_loss,
}


@dataclass(frozen=True)
class MetricData:
    """The labelled training and validation images of the subset (uint8 and int64)."""

    train_images: torch.Tensor
    train_targets: torch.Tensor
    val_images: torch.Tensor
    val_targets: torch.Tensor
    classes: list[str]
    source: str


def mnist_subset(size: int = 3000, val_fraction: float = 0.1, seed: int = 0) -> MetricData:
    """``size`` MNIST training images, ``size / 10`` of every digit drawn with ``seed``,
    split per digit into training and validation (``val_fraction`` of each digit).

    The source draws 3,000 images at random (``SubsetRandomSampler``); drawing the
    same number of every digit keeps the class-balanced batches from repeating images.
    """
    checks.count("size", size), checks.number("val_fraction", val_fraction, 0, 1), checks.count("seed", seed, 0)
    train_set = load_dataset("mnist", "train")
    classes = len(train_set.classes)
    if size % classes or not 0 < size <= len(train_set):
        raise ValueError(f"size must be a multiple of {classes} up to {len(train_set)}, got {size}")
    per_class = size // classes
    val_per_class = round(per_class * val_fraction)
    if not 0 < val_per_class < per_class:
        raise ValueError(f"val_fraction={val_fraction} leaves no training or no validation images of {per_class}")
    # One seeded draw per digit: its first images train, the next ones validate.
    validation, train = hold_out(train_set, per_class - val_per_class, seed, keep=val_per_class)
    return MetricData(
        train.images, train.targets, validation.images, validation.targets, train_set.classes,
        f"{train_set.source}, {per_class} per digit (seed {seed})",
    )  # fmt: skip


class MetricNet(nn.Module):
    """ResNet-18 (one-channel stem) -> Linear(out_dim, dim): the embedding.

    ``normalize`` puts the embedding on the unit sphere (the metric losses work there, so
    distances lie in [0, 2] and the margin has a fixed scale); ``num_classes`` adds the
    cross-entropy baseline's linear classifier on top (``logits``). ``forward`` returns
    the embedding in every case.
    """

    def __init__(self, dim: int, width: int, stem_stride: int, normalize: bool, num_classes: int = 0):
        super().__init__()
        self.backbone = ResNet18Backbone(in_channels=1, width=width, small_images=True, stem_stride=stem_stride)
        self.embed = nn.Linear(self.backbone.out_dim, dim)
        self.normalize = normalize
        self.classifier = nn.Linear(dim, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(self.backbone(x))
        return F.normalize(z.float(), dim=1) if self.normalize else z

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise RuntimeError("this MetricNet has no classifier (num_classes=0)")
        return self.classifier(self(x))


def metric_step(
    images: torch.Tensor,
    targets: torch.Tensor,
    objective: str,
    augment: ViewAugment | None,
    margin: float,
    temperature: float,
) -> Step:
    """One training step of ``objective`` on the images at a batch's indices (uint8, one
    augmented view each; two views for ``self_supervised``). Losses run in float32."""

    def view(batch: torch.Tensor) -> torch.Tensor:
        return augment(batch) if augment is not None else to_float(batch)

    def step(model: MetricNet, index: torch.Tensor) -> StepOutput:
        device = next(model.parameters()).device
        batch, labels = images[index].to(device), targets[index].to(device)
        if objective == "self_supervised":
            with mixed_precision(device):
                z = model(torch.cat([view(batch), view(batch)])).float()
            return two_view_nt_xent(z, temperature)
        with mixed_precision(device):
            z = model(view(batch))
            logits = model.classifier(z) if objective == "cross_entropy" else None
        if logits is not None:
            return F.cross_entropy(logits.float(), labels)
        if objective == "nt_xent":
            return supervised_nt_xent(z.float(), labels, temperature)
        return LABEL_LOSSES[objective](z.float(), labels, margin)

    return step


@dataclass(frozen=True, kw_only=True)
class MetricRecipe(Recipe):
    """Notebook 04's encoder: ``objective`` (a key of :data:`OBJECTIVES`) on ``dim``-D
    embeddings, batches of ``classes_per_batch`` digits x ``per_class`` images (for
    ``self_supervised``, the same number of unlabelled images, two views each), AdamW with
    a cosine schedule, the epoch with the best validation kNN accuracy kept."""

    name: ClassVar[str] = "04_metric"
    notebook: ClassVar[str] = "04_metric_learning_mnist"

    objective: str
    dim: int
    margin: float = 0.5
    temperature: float = 0.1
    classes_per_batch: int = 10
    per_class: int = 2
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 5e-4
    width: int = 16
    stem_stride: int = 1
    augment: ViewAugment | None = None
    subset: int = 3000
    val_fraction: float = 0.1
    subset_seed: int = 0
    knn_k: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.per_class < 2 and self.objective in ("pairs", "triplets", "triplets_hard", "nt_xent"):
            raise ValueError(
                f"{self.objective} needs per_class >= 2 (a positive for every image), got {self.per_class}"
            )

    @classmethod
    def default(cls, *, objective: str, dim: int = 32, **changes: Any) -> MetricRecipe:
        """The notebook's recipe for ``objective`` and ``dim`` in the current profile;
        ``changes`` override any field."""
        settings = dict(
            objective=objective,
            dim=dim,
            epochs=pick(smoke=1, laptop=12, full=30),
            width=pick(smoke=4, laptop=16, full=64),
            stem_stride=pick(smoke=2, laptop=2, full=1),
            subset=pick(smoke=600, laptop=3000, full=3000),
            augment=ViewAugment(
                size=28, crop_scale=(0.6, 1.0), crop_ratio=(0.8, 1.25), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0
            ),
        )
        if objective == "self_supervised":  # no labels: the views alone must say what stays the same
            settings["augment"] = ViewAugment(
                size=28, crop_scale=(0.3, 1.0), flip_p=0.0, jitter=(0.6, 0.6, 0.0, 0.0), jitter_p=0.8, grayscale_p=0.0
            )
        return cls(**{**settings, **changes})

    def build(self) -> MetricNet:
        num_classes = 10 if self.objective == "cross_entropy" else 0
        return MetricNet(self.dim, self.width, self.stem_stride, self.objective != "cross_entropy", num_classes)

    def load_data(self) -> MetricData:
        return mnist_subset(self.subset, self.val_fraction, self.subset_seed)

    def batches(self, data: MetricData) -> ClassBalancedBatches:
        """The batch order: class-balanced, also for ``self_supervised`` (which ignores
        the labels, so it gets the same images per step as the others)."""
        return ClassBalancedBatches(data.train_targets, self.classes_per_batch, self.per_class, self.seed)

    def cost(self) -> str:
        return (
            f"{self.epochs} epochs, batches of {self.classes_per_batch} x {self.per_class} images from "
            f"{self.subset} MNIST digits, ResNet-18 width {self.width}"
        )

    def fit(self, model: MetricNet, data: MetricData, validate=None) -> History:
        """Train; after every epoch measure the kNN accuracy of the validation images
        against the training images and keep the weights of the best epoch."""

        def monitor(net: MetricNet) -> dict[str, float]:
            bank = extract_features(net, data.train_images)
            accuracy = knn_accuracy(bank, data.train_targets, extract_features(net, data.val_images),
                                    data.val_targets, k=self.knn_k)  # fmt: skip
            return {"val_knn_accuracy": accuracy, **(validate(net) if validate else {})}

        step = metric_step(
            data.train_images, data.train_targets, self.objective, self.augment, self.margin, self.temperature
        )
        best = BestEpoch(monitor, "val_knn_accuracy")
        history = fit(
            model, step, self.batches(data), epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
            validate=best, desc=f"{self.objective}, {self.dim}-D",
        )  # fmt: skip
        return best.restore(model, history)
