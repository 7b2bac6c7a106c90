"""Generated from the cells marked ``#| export`` in notebooks/05_recurrent_cifar10_rows.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks


def to_row_sequence(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images to (N, H, W * C) sequences of rows, each pixel's channels together."""
    n, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(n, h, w * c)


LAYOUTS = ("interleaved", "planar")


def image_to_rows(images: torch.Tensor, layout: str = "interleaved") -> torch.Tensor:
    """Images (N, C, H, W) -> sequences (N, H, C * W): step t is row t of the image, its values
    pixel by pixel (interleaved, to_row_sequence) or red row, green row, blue row (planar)."""
    checks.image_batch(images, "image_to_rows", floats=False)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "interleaved":
        return to_row_sequence(images)
    n, _, h, _ = images.shape
    return images.permute(0, 2, 1, 3).reshape(n, h, -1)


CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# Per-channel mean and standard deviation of the CIFAR-10 training images (in [0, 1]).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def mlp_head(in_dim: int, hidden: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    """The source's head: for each hidden width Linear -> BatchNorm -> ReLU -> Dropout, then
    a Linear layer to the class scores."""
    layers = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, num_classes))


class RowClassifier(nn.Module):
    """A recurrent layer (a key of CELLS) reads the standardised image row by row; its output after
    the last row goes through mlp_head. forget_bias (LSTM only) starts the forget gates there."""

    def __init__(
        self, cell: str = "lstm", hidden_size: int = 256, num_layers: int = 1, head: tuple[int, ...] = (64, 64),
        dropout: float = 0.5, num_classes: int = 10, layout: str = "interleaved", forget_bias: float = 0.0,
        image_shape: tuple[int, int, int] = (3, 32, 32),
    ):  # fmt: skip
        super().__init__()
        channels, _, width = image_shape
        self.layout = layout
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN[:channels]).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD[:channels]).view(1, channels, 1, 1))
        self.recurrent = CELLS[cell](channels * width, hidden_size, num_layers=num_layers, batch_first=True)
        with torch.no_grad():  # PyTorch orders an LSTM's gates input, forget, cell, output
            for name, bias in self.recurrent.named_parameters():
                if forget_bias and name.startswith("bias_"):
                    bias[hidden_size : 2 * hidden_size] = forget_bias if name.startswith("bias_ih") else 0.0
        self.head = mlp_head(hidden_size, head, num_classes, dropout)

    def rows(self, images: torch.Tensor) -> torch.Tensor:
        """Float images (N, C, H, W) in [0, 1] -> standardised rows (N, H, C * W)."""
        return image_to_rows((images - self.mean) / self.std, self.layout)

    def forward_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows (N, T, C * W) -> class scores (N, num_classes), from the output after the last row."""
        if rows.ndim != 3 or rows.shape[-1] != self.recurrent.input_size:  # nn.RNN takes (T, C * W) as one image
            raise ValueError(f"rows must be (N, T, {self.recurrent.input_size}), got {tuple(rows.shape)}")
        outputs, _ = self.recurrent(rows)
        return self.head(outputs[:, -1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        checks.image_batch(images, "RowClassifier", channels=self.mean.shape[1])  # floats in [0, 1], not uint8
        return self.forward_rows(self.rows(images))


def step_gradient_norms(model: RowClassifier, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How strongly each time step's input moves the loss: for every image the norm of its own
    cross-entropy's gradient with respect to its row t, averaged over the batch; a (T,) tensor.
    In eval mode (no dropout, BatchNorm with its running statistics) and in float32."""
    was_training = model.training
    model.eval()
    rows = rows.detach().clone().requires_grad_(True)
    # Summed, not averaged: image i's loss depends on image i's rows only, so the
    # gradient of the sum with respect to them is image i's own gradient.
    loss = F.cross_entropy(model.forward_rows(rows).float(), targets.to(rows.device), reduction="sum")
    (gradient,) = torch.autograd.grad(loss, rows)
    model.train(was_training)
    return gradient.norm(dim=2).mean(dim=0)


class SmallCNN(nn.Module):
    """Three 3x3 convolution blocks (Conv -> BatchNorm -> ReLU -> 2x2 max-pool; width, 2 width and
    4 width channels), global average pooling and a linear classifier."""

    def __init__(self, width: int = 32, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN[:in_channels]).view(1, in_channels, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD[:in_channels]).view(1, in_channels, 1, 1))
        layers = []
        for c_in, c_out in [(in_channels, width), (width, 2 * width), (2 * width, 4 * width)]:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        checks.image_batch(images, "SmallCNN", channels=self.mean.shape[1])  # floats in [0, 1], not uint8
        x = (images - self.mean) / self.std
        if x.device.type != "mps":  # channels-last is faster on CPUs and CUDA, slower on MPS
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))
