"""The plumbing the notebooks' models are built from: backbones and the classifier.

A *backbone* maps images to a flat feature vector and has an ``out_dim``; a
:class:`Classifier` puts a head on it. Notebook 01 writes its own backbone
(``course_utils.methods.supervised.ConvBackbone``) and notebook 03 its SimCLR model on
:class:`ResNet18Backbone`.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from course_utils import checks


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not (isinstance(value, numbers.Integral) and value > 0):
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_images(model: str, x: torch.Tensor, channels: int, size: int | None = None) -> None:
    """Float images in [0, 1] (0-255 floats train on nonsense) of the model's shape."""
    if isinstance(x, torch.Tensor) and size is not None and (x.ndim != 4 or x.shape[1:] != (channels, size, size)):
        raise ValueError(f"{model} expects (N, {channels}, {size}, {size}) images, got {tuple(x.shape)}")
    checks.image_batch(x, model, channels)


class Backbone(nn.Sequential):
    """A stack of layers ending in flat features of size ``out_dim``.

    Slicing (``backbone[:4]``) gives a plain ``nn.Sequential`` of those layers:
    ``nn.Sequential`` would otherwise rebuild the slice with the subclass's own
    constructor, whose arguments are not layers.
    """

    out_dim: int

    def __getitem__(self, index):
        if isinstance(index, slice):
            return nn.Sequential(*list(self)[index])
        return super().__getitem__(index)


def _resnet_stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
    return nn.Sequential(BasicBlock(c_in, c_out, stride, shortcut), BasicBlock(c_out, c_out))


class ResNet18Backbone(Backbone):
    """ResNet-18 built from torchvision's ``BasicBlock``, without its classifier.

    ``width=64`` is torchvision's ``resnet18`` exactly (minus ``fc``);
    a smaller width scales every stage (w, 2w, 4w, 8w) for CPU runs.
    ``small_images=True`` swaps the ImageNet stem (7x7 stride-2 conv and max-pool,
    which shrink a 32x32 image to 8x8 at once) for a single 3x3 conv with stride
    ``stem_stride``: 1 is the usual choice for CIFAR-sized images, 2 costs a quarter
    of the compute. ``in_channels=1`` takes grayscale images.

    ``forward`` runs the network on channels-last (NHWC) activations, the layout oneDNN
    on x86 CPUs and cuDNN's tensor cores compute fastest; results match the default
    layout up to rounding.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, small_images: bool = True, stem_stride: int = 1):
        _check_positive(in_channels=in_channels, width=width, stem_stride=stem_stride)
        if small_images:
            stem = [nn.Conv2d(in_channels, width, 3, stride=stem_stride, padding=1, bias=False)]
        else:
            stem = [nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)]
        stem += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if not small_images:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        widths = [width, 2 * width, 4 * width, 8 * width]
        stages = [
            _resnet_stage(c_in, c_out, 1 if i == 0 else 2)
            for i, (c_in, c_out) in enumerate(zip([width, *widths], widths))
        ]
        super().__init__(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 8 * width
        self.in_channels = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # torchvision's ResNet initialisation
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images("ResNet18Backbone", x, self.in_channels)
        # Apple's MPS keeps NCHW: its convolution backward was many times slower on
        # channels-last tensors until PyTorch fixed it in 2026 (pytorch/pytorch#193349).
        if x.device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


class Classifier(nn.Module):
    """A backbone with a head on top; ``freeze_backbone()`` trains only the head."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def freeze_backbone(self) -> Classifier:
        """Stop the backbone's weights and BatchNorm statistics from changing."""
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        return self

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics
        return self
