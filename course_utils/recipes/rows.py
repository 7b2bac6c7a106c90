"""Notebook 05: recurrent networks reading CIFAR-10 images one row at a time.

An image (3, 32, 32) becomes a sequence of 32 steps, one per row, of 96 numbers each
(:func:`image_to_rows`). :class:`RowClassifier` runs an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``
over the rows and sends its last output through the source's MLP head; :class:`SmallCNN`
is the convolutional network it is compared with. :class:`RowRecipe` and :class:`CNNRecipe`
hold every setting that changes their weights and train them with Adam and a
``ReduceLROnPlateau`` schedule on the validation loss (:func:`fit_on_plateau`), keeping the
epoch with the best validation accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.checkpoints import History
from course_utils.data import load_dataset
from course_utils.methods.supervised import supervised_step
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.train import BestEpoch, ShuffledBatches, evaluate_loss, recipe_step, train

__all__ = [
    "CELLS",
    "LAYOUTS",
    "CNNRecipe",
    "RowClassifier",
    "RowData",
    "RowRecipe",
    "SmallCNN",
    "evaluate_loss",
    "fit_on_plateau",
    "image_to_rows",
    "plot_histories",
    "plot_step",
    "plot_step_gradients",
    "split_train_val",
    "step_gradient_norms",
]

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


def split_train_val(
    images: torch.Tensor, targets: torch.Tensor, val_size: int, train_size: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random split: ``val_size`` items held out for validation, then the first
    ``train_size`` of the rest (all of them when None) for training.

    Returns ``(train_images, train_targets, val_images, val_targets)``; no item is in both."""
    n = checks.same_length(images=images, targets=targets)
    available = n - checks.count("val_size", val_size, 1, n - 1)
    train_size = available if train_size is None else checks.count("train_size", train_size, 1, available)
    checks.count("seed", seed, 0)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, rest = order[:val_size], order[val_size : val_size + train_size]
    return images[rest], targets[rest], images[val], targets[val]


def fit_on_plateau(
    model: nn.Module,
    data: RowData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    seed: int = 0,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    desc: str = "training",
) -> History:
    """The source's training: Adam (``weight_decay`` as an L2 penalty), the learning rate
    divided by 10 when the validation loss has not improved for ``patience`` epochs
    (``ReduceLROnPlateau``), shuffled batches.

    After each epoch the validation split gives ``val_loss`` and ``val_accuracy`` (plus what
    ``validate(model)`` adds), ``seconds`` is the epoch's duration (training and validation)
    and ``lr`` the rate it trained with; ``on_epoch(epoch, metrics)`` may then stop training
    by raising (an Optuna pruner does). At the end the model gets back the weights of the
    epoch with the best validation accuracy, recorded as ``best_epoch`` (counted from 1).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=patience)
    best = BestEpoch()
    epoch_start = time.perf_counter()

    def after_epoch(model: nn.Module) -> dict[str, float]:
        nonlocal epoch_start
        metrics = {"seconds": time.perf_counter() - epoch_start, "lr": optimizer.param_groups[0]["lr"]}
        metrics.update(evaluate_loss(model, data.val_images, data.val_targets))
        if validate is not None:
            metrics.update(validate(model))
        plateau.step(metrics["val_loss"])
        best.update(model, metrics["val_accuracy"])
        if on_epoch is not None:
            on_epoch(best.epochs_seen, metrics)
        epoch_start = time.perf_counter()
        return metrics

    step = recipe_step(supervised_step, (data.train_images, data.train_targets), None)  # no augmentation
    batches = ShuffledBatches(len(data.train_images), batch_size, seed)
    history = train(model, step, batches, epochs=epochs, optimizer=optimizer, validate=after_epoch, desc=desc)
    return best.restore(model, history)


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


def _cifar10_split(recipe: _PlateauTraining) -> RowData:
    full = load_dataset("cifar10", "train")
    if recipe.train_size is not None and recipe.train_size + recipe.val_size > len(full):
        raise ValueError(f"train_size + val_size exceed the {len(full)} training images")
    parts = split_train_val(full.images, full.targets, recipe.val_size, recipe.train_size, recipe.seed)
    return RowData(*parts, source=f"{full.source}, {len(parts[0])} train / {recipe.val_size} validation")


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
        return _cifar10_split(self)

    def fit(self, model: nn.Module, data: RowData, validate=None, on_epoch=None) -> History:
        """:func:`fit_on_plateau` with this recipe's settings (``on_epoch`` may stop it early)."""
        return fit_on_plateau(
            model, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            patience=self.patience, seed=self.seed, validate=validate, on_epoch=on_epoch, desc=self.checkpoint_name(),
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


def plot_histories(histories: dict[str, History]) -> plt.Figure:
    """Loss and accuracy per epoch of several runs: training dashed, validation solid,
    the chosen (best validation accuracy) epoch circled."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (name, history) in enumerate(histories.items()):
        color = plt.cm.tab10(i)
        epochs = range(1, len(history["val_loss"]) + 1)
        best = int(history["best_epoch"][0])
        for ax, train_key, val_key in [(axes[0], "loss", "val_loss"), (axes[1], "train_accuracy", "val_accuracy")]:
            ax.plot(epochs, history[train_key], "--", marker=".", color=color, label=f"{name} training")
            ax.plot(epochs, history[val_key], "-", marker=".", color=color, label=f"{name} validation")
            ax.plot(best, history[val_key][best - 1], "o", color=color, markersize=9, fillstyle="none")
    for ax, title in zip(axes, ["cross-entropy loss", "accuracy"]):
        ax.set_title(f"{title} (circle: epoch kept)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def plot_step_gradients(norms: dict[str, dict[str, torch.Tensor]]) -> plt.Figure:
    """``norms[stage][cell]`` from :func:`step_gradient_norms`: one panel per stage (e.g.
    at initialisation, after training), one line per cell, on a log scale."""
    fig, axes = plt.subplots(1, len(norms), figsize=(5.5 * len(norms), 3.8), squeeze=False, sharey=True)
    for ax, (stage, per_cell) in zip(axes.flat, norms.items()):
        for name, values in per_cell.items():
            ax.semilogy(range(len(values)), values.cpu(), marker=".", label=name)
        ax.set_title(f"gradient of the loss per input row, {stage}")
        ax.set_xlabel("time step = image row (0: top, read first)")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    axes.flat[0].set_ylabel(r"mean $\|\partial \mathcal{L} / \partial x_t\|$")
    fig.tight_layout()
    return fig


def plot_step(image: torch.Tensor, step: int) -> plt.Figure:
    """What time step ``step`` sees of a uint8 image (3, H, W): the image with that row
    marked, and the row's 3 x W values in both layouts, coloured by channel."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"plot_step expects one uint8 image (3, H, W), got {image.dtype} {tuple(image.shape)}")
    checks.count("step (a row of the image)", step, 0, image.shape[1] - 1)
    rows = {layout: image_to_rows(image[None].float(), layout)[0, step] for layout in LAYOUTS}
    channel_of = {
        "interleaved": torch.arange(rows["interleaved"].numel()) % 3,
        "planar": torch.arange(rows["planar"].numel()) // image.shape[-1],
    }
    fig = plt.figure(figsize=(12, 3.6))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 3.2])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.axhspan(step - 0.5, step + 0.5, fill=False, edgecolor="yellow", linewidth=2)
    ax.set_title(f"row {step} is time step {step}")
    ax.axis("off")
    for i, layout in enumerate(LAYOUTS):
        ax = fig.add_subplot(grid[i, 1])
        ax.bar(range(len(rows[layout])), rows[layout], color=[("red", "green", "blue")[c] for c in channel_of[layout]])
        ax.set_title(f"the {len(rows[layout])} values of step {step}, {layout} layout", fontsize=10)
        ax.set_ylabel("pixel value")
        ax.set_xlim(-1, len(rows[layout]))
    ax.set_xlabel("position in the input vector")
    fig.tight_layout()
    return fig
