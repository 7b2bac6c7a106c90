"""The FashionMNIST source's supervised model and its 1,000-label recipe.

Notebook 01 trains it; notebook 02 compares SimSiam with it, and trains it the
same way (into the same checkpoint) when notebook 01 has not been run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course_utils.data import ImageDataset
from course_utils.models import Classifier, ConvBackbone, mlp_head
from course_utils.runtime import pick
from course_utils.train import History, fit_classifier, train_or_load


def fashion_head() -> nn.Sequential:
    """The source's classifier head: Linear(2048 -> 32) -> ReLU -> Linear(32 -> 10)."""
    return mlp_head(2048, 32, 10)


def fashion_classifier() -> Classifier:
    """The source's model: :class:`ConvBackbone` (2048 features) and :func:`fashion_head`."""
    return Classifier(ConvBackbone(), fashion_head())


def few_label_recipe() -> dict[str, Any]:
    """How the 1,000-label baseline trains in the current profile (Adam, cosine decay).
    Notebook 02 trains its head on frozen features with the same recipe."""
    return {"labels": 1_000, "epochs": pick(smoke=10, cpu=100, gpu=100), "batch": 64, "lr": 1e-3}


def fit_few_label(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, desc: str) -> History:
    """:func:`~course_utils.train.fit_classifier` with :func:`few_label_recipe`'s
    epochs, batch and learning rate: images for the baseline, frozen features for
    notebook 02's head."""
    recipe = few_label_recipe()
    return fit_classifier(model, inputs, targets, epochs=recipe["epochs"], batch_size=recipe["batch"],
                          lr=recipe["lr"], desc=desc)  # fmt: skip


def few_label_baseline(model: Classifier, few_set: ImageDataset) -> History:
    """Train ``model`` on ``few_set`` with :func:`few_label_recipe`, or load the weights
    a previous run cached under the name ``01_supervised_1000``."""
    recipe = few_label_recipe()
    if len(few_set) != recipe["labels"]:
        raise ValueError(f"the baseline recipe is for {recipe['labels']} labelled images, got {len(few_set)}")
    return train_or_load(
        "01_supervised_1000",
        model,
        recipe,
        lambda: fit_few_label(model, few_set.images, few_set.targets, "1,000 labels"),
    )
