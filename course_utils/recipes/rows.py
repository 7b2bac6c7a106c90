"""Notebook 05's recipes: recurrent networks reading CIFAR-10 images one row at a time, and
the small convolutional network they are compared with.

The models and the training step are notebook 05's cells (:mod:`course_utils.methods.rows`).
:class:`RowRecipe` and :class:`CNNRecipe` hold every setting that changes their weights and
train them like the source: Adam, a ``ReduceLROnPlateau`` schedule on the validation loss,
the epoch with the best validation accuracy kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from course_utils.checkpoints import History
from course_utils.data import hold_out, load_dataset
from course_utils.methods.rows import CELLS, LAYOUTS, RowClassifier, SmallCNN
from course_utils.methods.supervised import supervised_step
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.train import fit_classifier

__all__ = ["CNNRecipe", "RowData", "RowRecipe"]


class RowData(NamedTuple):
    """uint8 training and validation images with their labels, and where they came from."""

    train_images: torch.Tensor
    train_targets: torch.Tensor
    val_images: torch.Tensor
    val_targets: torch.Tensor
    source: str


@dataclass(frozen=True, kw_only=True)
class _PlateauTraining:
    """The settings and training that notebook 05's recurrent and convolutional recipes
    share; a mixin rather than a :class:`Recipe` of its own, so it is no checkpoint family."""

    notebook: ClassVar[str] = "05_recurrent_cifar10_rows"
    default_step: ClassVar = supervised_step
    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    patience: int = 10
    val_size: int = 5_000
    train_size: int | None = None  # None: every training image not held out for validation

    def load_data(self) -> RowData:
        """``val_size`` CIFAR-10 training images drawn with the recipe's seed for validation,
        then the next ``train_size`` of the draw (all the others when None) for training."""
        full = load_dataset("cifar10", "train")
        train, val = hold_out(full, self.val_size, self.seed, by_class=False, keep=self.train_size)
        return RowData(train.images, train.targets, val.images, val.targets,
                       f"{full.source}, {len(train)} train / {self.val_size} validation")  # fmt: skip

    def fit(self, model: nn.Module, data: RowData, validate=None, on_epoch=None) -> History:
        """The source's training: Adam (weight decay as an L2 penalty), the learning rate
        divided by 10 when the validation loss has not improved for ``patience`` epochs, the
        epoch with the best validation accuracy kept (``on_epoch`` may stop it early)."""
        return fit_classifier(
            model, data.train_images, data.train_targets, recipe=self, step=self.training_step, epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr, weight_decay=self.weight_decay, optimizer="adam", patience=self.patience,
            validation=(data.val_images, data.val_targets), seed=self.seed, validate=validate, on_epoch=on_epoch,
            desc=self.checkpoint_name(),
        )  # fmt: skip

    def cost(self) -> str:
        images = "all" if self.train_size is None else f"{self.train_size:,}"
        return f"{self.epochs} epochs over {images} training images, batch {self.batch_size}"


@dataclass(frozen=True, kw_only=True)
class RowRecipe(_PlateauTraining, Recipe):
    """A ``RowClassifier`` trained on CIFAR-10 rows; the defaults are the source's Optuna-tuned
    settings (hidden 256, one layer, head 64-64, Adam lr 2.2e-4, weight decay 5.2e-4)."""

    name: ClassVar[str] = "recurrent_rows"
    default_model: ClassVar = RowClassifier
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    head: tuple[int, ...] = (64, 64)
    dropout: float = 0.5
    layout: str = "interleaved"
    forget_bias: float = 0.0
    lr: float = 0.00022
    weight_decay: float = 0.00052
    epochs: int = 100
    batch_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cell not in CELLS or self.layout not in LAYOUTS:
            raise ValueError(f"cell {self.cell!r} or layout {self.layout!r} unknown; choose a cell of "
                             f"{', '.join(CELLS)} and a layout of {', '.join(LAYOUTS)}")  # fmt: skip
        if self.forget_bias and self.cell != "lstm":
            raise ValueError(f"forget_bias is an LSTM setting; the {self.cell} cell has no forget gate")

    @classmethod
    def default(cls, cell: str = "lstm") -> RowRecipe:
        """The notebook's recipe for ``cell`` in the current profile: ``full`` is the source's
        (100 epochs at batch 64); ``laptop`` trains 12 epochs at batch 128 with a learning rate of
        1e-3 and starts the LSTM's forget gates open (bias 1)."""
        return cls(
            cell=cell,
            epochs=pick(smoke=1, laptop=12, full=100),
            batch_size=pick(smoke=256, laptop=128, full=64),
            lr=pick(smoke=1e-3, laptop=1e-3, full=0.00022),
            forget_bias=pick(smoke=1.0, laptop=1.0, full=0.0) if cell == "lstm" else 0.0,
            train_size=pick(smoke=2_000, laptop=None, full=None),
            val_size=pick(smoke=500, laptop=5_000, full=5_000),
            patience=pick(smoke=1, laptop=1, full=10),
        )

    def build(self) -> nn.Module:
        return self.model_class(
            self.cell, self.hidden_size, self.num_layers, self.head, self.dropout, layout=self.layout,
            forget_bias=self.forget_bias,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CNNRecipe(_PlateauTraining, Recipe):
    """A ``SmallCNN`` trained like the recurrent models."""

    name: ClassVar[str] = "rows_cnn"
    default_model: ClassVar = SmallCNN
    width: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.00052
    epochs: int = 100
    batch_size: int = 64

    @classmethod
    def default(cls) -> CNNRecipe:
        """The notebook's CNN recipe in the current profile, trained like the recurrent models
        (same data, epochs, batch size, learning rate, weight decay and schedule)."""
        rows = RowRecipe.default()
        return cls(
            lr=rows.lr, weight_decay=rows.weight_decay, epochs=rows.epochs, batch_size=rows.batch_size,
            train_size=rows.train_size, val_size=rows.val_size, patience=rows.patience,
        )  # fmt: skip

    def build(self) -> nn.Module:
        return self.model_class(self.width)
