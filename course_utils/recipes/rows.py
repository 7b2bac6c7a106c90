"""Notebook 05: recurrent networks reading CIFAR-10 images one row at a time.

An image (3, 32, 32) becomes a sequence of 32 steps, one per row, of 96 numbers each
(:func:`image_to_rows`). :class:`RowClassifier` runs an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``
over the rows and sends its last output through the source's MLP head; :class:`SmallCNN`
is the convolutional network it is compared with. :class:`RowRecipe` and :class:`CNNRecipe`
hold every setting that changes their weights and train them with Adam and a
``ReduceLROnPlateau`` schedule on the validation loss, keeping the epoch with the best
validation accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.checkpoints import History
from course_utils.data import hold_out, load_dataset
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.train import fit_classifier

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
LAYOUTS = ("interleaved", "planar")
# Per-channel mean and standard deviation of the CIFAR-10 training images (in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def image_to_rows(images: torch.Tensor, layout: str = "interleaved") -> torch.Tensor:
    """Images (N, C, H, W) -> sequences (N, H, C * W): step t is row t of the image.

    ``interleaved`` orders a step's values pixel by pixel, R G B of pixel 0, then of pixel 1...
    (what the source's ``permute(0, 2, 3, 1)`` and ``reshape`` compute); ``planar`` puts the
    whole red row first, then the green row, then the blue row.
    """
    checks.image_batch(images, "image_to_rows", floats=False)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    n, _, h, _ = images.shape
    order = (0, 2, 3, 1) if layout == "interleaved" else (0, 2, 1, 3)
    return images.permute(*order).reshape(n, h, -1)


def mlp_head(in_dim: int, hidden: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    """The source's head: for each hidden width Linear -> BatchNorm -> ReLU -> Dropout, then
    a Linear layer to the class scores."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, num_classes))


class RowClassifier(nn.Module):
    """A recurrent layer reads the image row by row; its output after the last row goes
    through :func:`mlp_head` to ``num_classes`` scores. ``forget_bias`` (LSTM only) starts
    every forget gate's bias there instead of near 0, so the gates begin mostly open.

    ``forward`` takes float images (N, 3, H, W) in [0, 1]: it standardises each channel,
    turns the image into rows (:meth:`rows`) and calls :meth:`forward_rows`.
    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        head: tuple[int, ...] = (64, 64),
        dropout: float = 0.5,
        num_classes: int = 10,
        layout: str = "interleaved",
        forget_bias: float = 0.0,
        image_shape: tuple[int, int, int] = (3, 32, 32),
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        channels, _, width = image_shape
        checks.count("image channels", channels, 1, len(CIFAR10_MEAN))
        self.layout = layout
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN[:channels]).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD[:channels]).view(1, channels, 1, 1))
        self.recurrent = CELLS[cell](channels * width, hidden_size, num_layers=num_layers, batch_first=True)
        if forget_bias:
            if cell != "lstm":
                raise ValueError(f"forget_bias is an LSTM setting; the {cell} cell has no forget gate")
            with torch.no_grad():  # PyTorch orders an LSTM's gates input, forget, cell, output
                for name, bias in self.recurrent.named_parameters():
                    if name.startswith("bias_ih"):
                        bias[hidden_size : 2 * hidden_size] = forget_bias
                    elif name.startswith("bias_hh"):
                        bias[hidden_size : 2 * hidden_size] = 0.0
        self.head = mlp_head(hidden_size, head, num_classes, dropout)

    def rows(self, images: torch.Tensor) -> torch.Tensor:
        """Float images (N, C, H, W) in [0, 1] -> standardised rows (N, H, C * W)."""
        return image_to_rows((images - self.mean) / self.std, self.layout)

    def forward_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows (N, T, C * W) -> class scores (N, num_classes), from the output after the last row."""
        if rows.ndim != 3 or rows.shape[-1] != self.recurrent.input_size:
            raise ValueError(f"rows must be (N, T, {self.recurrent.input_size}), got {tuple(rows.shape)}")
        outputs, _ = self.recurrent(rows)
        return self.head(outputs[:, -1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        checks.image_batch(images, "RowClassifier", channels=self.mean.shape[1])
        return self.forward_rows(self.rows(images))


class SmallCNN(nn.Module):
    """Three 3x3 convolution blocks (Conv -> BatchNorm -> ReLU -> 2x2 max-pool, ``width``,
    2 ``width`` and 4 ``width`` channels), global average pooling and a linear classifier."""

    def __init__(self, width: int = 32, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        checks.count("in_channels", in_channels, 1, len(CIFAR10_MEAN)), checks.count("width", width)
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN[:in_channels]).view(1, in_channels, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD[:in_channels]).view(1, in_channels, 1, 1))
        layers: list[nn.Module] = []
        for c_in, c_out in [(in_channels, width), (width, 2 * width), (2 * width, 4 * width)]:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        checks.image_batch(images, "SmallCNN", channels=self.mean.shape[1])
        x = (images - self.mean) / self.std
        if x.device.type != "mps":  # channels-last is faster on CPUs and CUDA, slower on MPS (see ResNet18Backbone)
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))


class RowData(NamedTuple):
    """uint8 training and validation images with their labels, and where they came from."""

    train_images: torch.Tensor
    train_targets: torch.Tensor
    val_images: torch.Tensor
    val_targets: torch.Tensor
    source: str


def step_gradient_norms(model: RowClassifier, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How strongly each time step's input moves the loss: for every image its own
    cross-entropy's gradient with respect to the input at step t, its norm, averaged over
    the batch. Returns a (T,) tensor.

    The model is evaluated in eval mode (no dropout, BatchNorm with its running statistics)
    and in float32."""
    checks.same_length(rows=rows, targets=targets)
    was_training = model.training
    model.eval()
    rows = rows.detach().clone().requires_grad_(True)
    # Summed, not averaged: image i's loss depends on image i's rows only, so the
    # gradient of the sum with respect to them is image i's own gradient.
    loss = F.cross_entropy(model.forward_rows(rows).float(), targets.to(rows.device), reduction="sum")
    (gradient,) = torch.autograd.grad(loss, rows)
    model.train(was_training)
    return gradient.norm(dim=2).mean(dim=0)


@dataclass(frozen=True, kw_only=True)
class _PlateauTraining:
    """The settings and training that notebook 05's recurrent and convolutional recipes
    share; a mixin rather than a :class:`Recipe` of its own, so it is no checkpoint family."""

    notebook: ClassVar[str] = "05_recurrent_cifar10_rows"
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
            model, data.train_images, data.train_targets, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, optimizer="adam", patience=self.patience,
            validation=(data.val_images, data.val_targets), seed=self.seed, validate=validate, on_epoch=on_epoch,
            desc=self.checkpoint_name(),
        )  # fmt: skip

    def cost(self) -> str:
        images = "all" if self.train_size is None else f"{self.train_size:,}"
        return f"{self.epochs} epochs over {images} training images, batch {self.batch_size}"


@dataclass(frozen=True, kw_only=True)
class RowRecipe(_PlateauTraining, Recipe):
    """A :class:`RowClassifier` trained on CIFAR-10 rows; the defaults are the source's
    Optuna-tuned settings (hidden 256, one layer, head 64-64, Adam lr 2.2e-4, weight decay 5.2e-4)."""

    name: ClassVar[str] = "recurrent_rows"
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

    def build(self) -> RowClassifier:
        return RowClassifier(
            self.cell, self.hidden_size, self.num_layers, self.head, self.dropout, layout=self.layout,
            forget_bias=self.forget_bias,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CNNRecipe(_PlateauTraining, Recipe):
    """A :class:`SmallCNN` trained like the recurrent models."""

    name: ClassVar[str] = "rows_cnn"
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

    def build(self) -> SmallCNN:
        return SmallCNN(self.width)
