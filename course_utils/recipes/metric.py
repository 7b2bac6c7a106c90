"""Notebook 04's recipes: a ResNet-18 embedding of MNIST digits trained with one of six
objectives on the source's 3,000-image subset (90 % train, 10 % validation).

>>> model, history = MetricRecipe.default(objective="triplets_hard", dim=32).pretrained()
>>> z = extract_features(model, test_images)  # (N, 32) embeddings
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import hold_out, load_dataset
from course_utils.evaluate import extract_features, knn_accuracy
from course_utils.methods.metric import MetricNet, metric_step
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.samplers import ClassBalancedBatches
from course_utils.train import BestEpoch, fit, recipe_step

__all__ = ["OBJECTIVES", "MetricData", "MetricRecipe", "mnist_subset"]

# name -> what the loss compares; "self_supervised" uses no labels at all
OBJECTIVES = {
    "pairs": "contrastive pairs with a margin, all pairs of the batch",
    "triplets": "triplet loss, all triplets of the batch",
    "triplets_hard": "triplet loss, batch-hard mining",
    "nt_xent": "supervised NT-Xent, the other member of each pair as the positive",
    "cross_entropy": "cross-entropy of a linear classifier on the embedding",
    "self_supervised": "NT-Xent on two augmented views of each image, no labels",
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

    def __post_init__(self) -> None:  # a label too few or too many would pair the wrong images, silently
        checks.labels(self.train_targets, "train_targets", len(self.train_images))
        checks.labels(self.val_targets, "val_targets", len(self.val_images))


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


@dataclass(frozen=True, kw_only=True)
class MetricRecipe(Recipe):
    """Notebook 04's encoder: its ``MetricNet`` trained by its ``metric_step`` with ``objective``
    (a key of :data:`OBJECTIVES`) on ``dim``-D embeddings, batches of ``classes_per_batch``
    digits x ``per_class`` images (for ``self_supervised``, the same number of unlabelled images,
    two views each), AdamW with a cosine schedule, the epoch with the best validation kNN
    accuracy kept."""

    name: ClassVar[str] = "04_metric"
    notebook: ClassVar[str] = "04_metric_learning_mnist"
    default_model = MetricNet
    default_step = metric_step

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
        return self.model_class(self.dim, self.width, self.stem_stride, self.objective != "cross_entropy", num_classes)

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

        step = recipe_step(self.training_step, (data.train_images, data.train_targets), self)
        best = BestEpoch(monitor, "val_knn_accuracy")
        history = fit(
            model, step, self.batches(data), epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
            validate=best, desc=f"{self.objective}, {self.dim}-D",
        )  # fmt: skip
        return best.restore(model, history)
