"""Notebook 01's recipe: the FashionMNIST source's network trained on the first labels.

Notebook 01 trains it with all 60,000 labels and with the first 1,000; notebook 02
compares SimSiam with the 1,000-label run, and trains its frozen-feature head the same
way (:meth:`FashionSupervised.train_on`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_utils.checkpoints import History
from course_utils.data import ImageDataset, first_k, load_dataset
from course_utils.models import Classifier, ConvBackbone, mlp_head
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.train import fit_classifier


def fashion_head() -> nn.Sequential:
    """The source's classifier head: Linear(2048 -> 32) -> ReLU -> Linear(32 -> 10)."""
    return mlp_head(2048, 32, 10)


def fashion_classifier() -> Classifier:
    """The source's model: :class:`ConvBackbone` (2048 features) and :func:`fashion_head`."""
    return Classifier(ConvBackbone(), fashion_head())


@dataclass(frozen=True, kw_only=True)
class FashionSupervised(Recipe):
    """The source's model trained end to end with cross-entropy on the first ``labels``
    training images (file order, as in the source): Adam with a cosine decay to 0."""

    name = "fashion_supervised"
    notebook = "01_supervised_baseline"
    labels: int
    epochs: int
    batch_size: int
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.labels < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"labels, epochs and batch_size must be >= 1, got {self}")
        super().__post_init__()

    @classmethod
    def all_labels(cls) -> FashionSupervised:
        """Every training label (a 5,000-image slice in ``smoke``)."""
        return cls(labels=pick(smoke=5_000, cpu=60_000, gpu=60_000), epochs=pick(smoke=1, cpu=5, gpu=10),
                   batch_size=128)  # fmt: skip

    @classmethod
    def few_labels(cls) -> FashionSupervised:
        """The first 1,000 labels, the setting of the SimSiam article."""
        return cls(labels=1_000, epochs=pick(smoke=10, cpu=100, gpu=100), batch_size=64)

    def build(self) -> Classifier:
        return fashion_classifier()

    def load_data(self) -> ImageDataset:
        return first_k(load_dataset("fashion_mnist", "train"), self.labels)

    def fit(self, model: nn.Module, data: ImageDataset, validate=None) -> History:
        return self.train_on(model, data.images, data.targets, validate)

    def train_on(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, validate=None) -> History:
        """This recipe's training applied to any model and inputs (uint8 images or float
        features): notebook 02 trains its head on frozen features with it."""
        return fit_classifier(model, inputs, targets, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              seed=self.seed, validate=validate, desc=f"{len(inputs):,} labels")  # fmt: skip

    def cost(self) -> str:
        return f"{self.epochs} epochs over {self.labels:,} labelled images, under a minute on a 2-core CPU"
