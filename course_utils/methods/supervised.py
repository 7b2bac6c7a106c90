"""Generated from the cells marked ``#| export`` in notebooks/01_supervised_baseline.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.models import Backbone, Classifier, check_images
from course_utils.runtime import mixed_precision


class ConvBackbone(Backbone):
    """Three stride-2 3x3 convolutions (32, 64, 128 channels), each followed by ReLU and BatchNorm,
    then flattened: a 1x28x28 image becomes out_dim = 2,048 features."""

    def __init__(self):
        layers = []
        for c_in, c_out in [(1, 32), (32, 64), (64, 128)]:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(c_out)]
        super().__init__(*layers, nn.Flatten())
        self.out_dim = 128 * 4 * 4  # 28 -> 14 -> 7 -> 4 pixels a side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images("ConvBackbone", x, channels=1, size=28)  # floats in [0, 1], not uint8 or 0-255
        return super().forward(x)


def fashion_classifier() -> Classifier:
    """The source's network: ConvBackbone, then the head Linear(2048 -> 32) -> ReLU -> Linear(32 -> 10)."""
    return Classifier(ConvBackbone(), nn.Sequential(nn.Linear(2048, 32), nn.ReLU(inplace=True), nn.Linear(32, 10)))


def supervised_step(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], recipe
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on one batch of (images, targets); recipe.augment, when there is one, changes
    the uint8 images. Float inputs (features rather than images) go in as they are."""
    images, targets = batch
    augment = getattr(recipe, "augment", None)
    if augment is not None:
        x = augment(images)
    else:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
    with mixed_precision(images.device):
        logits = model(x).float()
    accuracy = (logits.argmax(1) == targets).float().mean().item()
    return F.cross_entropy(logits, targets), {"train_accuracy": accuracy}
