"""Generated from the cells marked ``#| export`` in notebooks/06_evaluating_representations.ipynb:
edit the notebook, then run ``python -m course_tools.export``."""

import math

import torch
import torch.nn.functional as F


def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al., 2023): the exponential of the entropy of the normalised singular values of z."""
    sigma = torch.linalg.svdvals(z)
    p = sigma / sigma.sum() + eps
    return torch.exp(-(p * p.log()).sum()).item()


def alignment(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Mean squared distance between the L2-normalised rows z1[i] and z2[i], two views of image i."""
    distances = (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1)
    return distances.pow(2).mean().item()


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """Log of the mean of exp(-t * squared distance) over the pairs i < j of L2-normalised rows of z."""
    exponents = -t * torch.pdist(F.normalize(z, dim=1)).pow(2)  # the N(N-1)/2 pairs i < j
    return (torch.logsumexp(exponents, dim=0) - math.log(len(exponents))).item()
