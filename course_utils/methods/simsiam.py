"""Generated from the cells marked ``#| export`` in notebooks/02_simsiam_fashion_mnist.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import ImageDataset
from course_utils.evaluate import extract_features, knn_accuracy
from course_utils.methods.evaluation import rankme
from course_utils.runtime import mixed_precision


class SimSiam(nn.Module):
    """Backbone + projector make the encoder; the predictor maps one view's projection towards
    the other's. forward(x1, x2) returns (p1, p2, z1, z2)."""

    def __init__(self, backbone: nn.Module, proj_dim: int = 512, pred_dim: int = 128):
        super().__init__()
        self.backbone = backbone  # images -> features of size backbone.out_dim
        self.projector = nn.Sequential(
            nn.Linear(backbone.out_dim, proj_dim, bias=False),
            nn.BatchNorm1d(proj_dim),
            nn.ReLU(inplace=True),
            nn.Linear(proj_dim, proj_dim, bias=False),
            nn.BatchNorm1d(proj_dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(proj_dim, pred_dim),
            nn.BatchNorm1d(pred_dim),
            nn.ReLU(inplace=True),
            nn.Linear(pred_dim, proj_dim),
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z1, z2 = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        return self.predictor(z1), self.predictor(z2), z1, z2


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, stop_gradient: bool = True
) -> torch.Tensor:
    """Symmetric negative cosine similarity of each prediction with the other view's projection;
    the projections are detached (the stop-gradient) unless stop_gradient is False."""
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    d_12 = -F.cosine_similarity(p1, z2, dim=1).mean()
    d_21 = -F.cosine_similarity(p2, z1, dim=1).mean()
    return 0.5 * d_12 + 0.5 * d_21


def simsiam_step(model: SimSiam, images: torch.Tensor, recipe) -> torch.Tensor:
    """SimSiam's loss on one batch of uint8 images; recipe.augment makes the views."""
    x1, x2 = recipe.augment(images), recipe.augment(images)  # two random views of every image
    with mixed_precision(images.device):
        p1, p2, z1, z2 = model(x1, x2)
    return simsiam_loss(p1.float(), p2.float(), z1.float(), z2.float(), recipe.stop_gradient)


def collapse_monitor(z: torch.Tensor) -> float:
    """Mean per-dimension std of the L2-normalised rows of z."""
    unit = z / z.norm(dim=1, keepdim=True)
    return unit.std(dim=0).mean().item()


def simsiam_monitor(bank: ImageDataset, validation: ImageDataset) -> Callable[[SimSiam], dict[str, float]]:
    """What the training loop logs after every epoch (in eval mode, without gradients): the kNN
    accuracy of the backbone's features on `validation` (each image gets the majority class of its
    20 nearest `bank` images), and the effective rank and spread of z before the last BatchNorm."""

    def monitor(model: SimSiam) -> dict[str, float]:
        bank_features = extract_features(model.backbone, bank.images)
        features = extract_features(model.backbone, validation.images)
        z = model.projector[:-1](features.to(next(model.parameters()).device))  # before the last BatchNorm
        return {
            "knn_accuracy": knn_accuracy(bank_features, bank.targets, features, validation.targets, k=20),
            "z_rank": rankme(z.float().cpu()),  # notebook 06's effective rank
            "z_std": collapse_monitor(z),
            "z_std_after_bn": collapse_monitor(model.projector[-1](z)),
        }

    return monitor
