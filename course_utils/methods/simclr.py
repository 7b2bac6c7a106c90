"""Generated from the cells marked ``#| export`` in notebooks/03_simclr_stl10.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.losses import at_least_float32
from course_utils.runtime import mixed_precision


class SimCLR(nn.Module):
    """The base encoder f (backbone) and the projection head g; the loss sees g's output, downstream
    tasks use the backbone's features. forward(x1, x2) returns (z1, z2)."""

    def __init__(self, backbone: nn.Module, out_dim: int = 128):
        super().__init__()
        self.backbone = backbone  # images -> features h of size backbone.out_dim
        self.projector = nn.Sequential(
            nn.Linear(backbone.out_dim, 4 * out_dim), nn.ReLU(inplace=True), nn.Linear(4 * out_dim, out_dim)
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x1.shape != x2.shape:  # views of different images would be split at the wrong row
            raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
        z = self.projector(self.backbone(torch.cat([x1, x2])))
        return z[: len(x1)], z[len(x1) :]


def nt_xent_logits(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(2N, 2N) cosine logits / temperature with a -inf diagonal, and every view's positive index."""
    n = len(z1)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return logits, positives


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent (InfoNCE) loss of two (N, D) views of N images, averaged over the 2N views."""
    if z1.ndim != 2 or z1.shape != z2.shape or len(z1) < 2:
        raise ValueError(f"nt_xent needs two (N, D) views of the same N >= 2 images (the other images are the "
                         f"negatives), got {tuple(z1.shape)} and {tuple(z2.shape)}")  # fmt: skip
    logits, positives = nt_xent_logits(at_least_float32(z1), at_least_float32(z2), temperature)
    return F.cross_entropy(logits, positives.to(logits.device))


def positive_rank(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of every view's positive among its 2N - 1 candidates by cosine similarity."""
    n = len(z1)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    similarity = z @ z.T
    similarity.fill_diagonal_(float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    positive_similarity = similarity[torch.arange(2 * n), positives]
    return 1 + (similarity > positive_similarity[:, None]).sum(dim=1)


@torch.no_grad()
def pretext_metrics(z1: torch.Tensor, z2: torch.Tensor) -> dict[str, float]:
    """How often each view's positive ranks first (top1) and among the first five (top5) of its
    2N - 1 candidates, and its mean position (mean_position, 1 being best)."""
    rank = positive_rank(z1, z2).float()
    return {"top1": (rank == 1).float().mean().item(), "top5": (rank <= 5).float().mean().item(),
            "mean_position": rank.mean().item()}  # fmt: skip


def simclr_step(model: SimCLR, images: torch.Tensor, recipe) -> tuple[torch.Tensor, dict[str, float]]:
    """NT-Xent (at recipe.temperature) on one batch of uint8 images, and where the positives rank;
    recipe.augment makes the views."""
    x1, x2 = recipe.augment(images), recipe.augment(images)  # two random views of every image
    with mixed_precision(images.device):
        z1, z2 = model(x1, x2)
    z1, z2 = z1.float(), z2.float()
    return nt_xent(z1, z2, recipe.temperature), pretext_metrics(z1, z2)
