"""Scores of a representation (a matrix of features, one row per image), with and without labels.

With labels: :func:`knn_predict` (cosine kNN, plain or temperature-weighted vote),
:func:`kmeans_scores` (k-means clusters against the classes) and :func:`silhouette`.
Without labels: :func:`variance_spectrum` and :func:`components_for_variance` (PCA) and
:func:`map_trustworthiness` (how faithful a 2-D map is). :func:`positive_pair_features`
computes the features of two augmented views of each image, which alignment needs (alignment,
uniformity and the effective rank are notebook 06's exercises, ``course_utils.methods.evaluation``).

Every function takes NumPy arrays or torch tensors and returns plain Python numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize
from torch import nn

from course_utils import checks

ArrayLike = np.ndarray | torch.Tensor

__all__ = [
    "components_for_variance",
    "kmeans_scores",
    "knn_predict",
    "map_trustworthiness",
    "positive_pair_features",
    "silhouette",
    "variance_spectrum",
]


def knn_predict(
    train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, k: int = 200, temperature: float | None = None
) -> np.ndarray:
    """The class of each test row voted by its ``k`` most cosine-similar training rows.

    ``temperature=None``: every neighbour has one vote (majority vote). A number ``tau``:
    a neighbour with cosine similarity ``s`` votes with weight ``exp(s / tau)``, the
    weighted kNN of Wu et al. (2018, "Unsupervised feature learning via non-parametric
    instance discrimination"; ``k=200``, ``tau=0.07`` there), so close neighbours
    dominate and a large ``k`` costs little. Ties go to the lowest class index.
    """
    train_y = checks.labels(train_y, "train_y", len(train_x))  # -1 (unlabelled) would get votes
    tau = None if temperature is None else checks.temperature(temperature)
    # scikit-learn passes cosine *distances* d = 1 - s to the weight function; exp((s - s_max) / tau),
    # the row's largest similarity taken out, is the same vote without overflow at small tau.
    weights = "uniform" if tau is None else (lambda d: np.exp((d.min(axis=1, keepdims=True) - d) / tau))
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights)
    return knn.fit(train_x, train_y).predict(test_x)


def kmeans_scores(
    fit_x: ArrayLike, test_x: ArrayLike, test_y: ArrayLike, n_clusters: int | None = None, seed: int = 0
) -> dict[str, float]:
    """k-means on the L2-normalised rows of ``fit_x`` (labels unused), scored three ways.

    ``ari``: adjusted Rand index (Hubert and Arabie, 1985) and ``nmi``: normalised mutual
    information (Strehl and Ghosh, 2002; arithmetic-mean normalisation) between the
    clusters assigned to ``test_x`` and the classes ``test_y``: 1 for the same partition,
    about 0 for an unrelated one. ``silhouette``: the silhouette (:func:`silhouette`) of
    the clusters of ``fit_x`` themselves, which needs no labels at all.
    ``n_clusters`` defaults to the number of classes in ``test_y``.
    """
    test_y = checks.labels(test_y, "test_y", len(test_x))  # -1 (unlabelled) would count as a class
    n_clusters = len(np.unique(test_y)) if n_clusters is None else n_clusters
    kmeans = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit(normalize(fit_x))
    if len(np.unique(kmeans.labels_)) < n_clusters:
        raise ValueError(f"fit_x has fewer than {n_clusters} distinct directions: the features collapsed")
    clusters = kmeans.predict(normalize(test_x))
    return {
        "ari": float(adjusted_rand_score(test_y, clusters)),
        "nmi": float(normalized_mutual_info_score(test_y, clusters)),
        "silhouette": silhouette(fit_x, kmeans.labels_, seed=seed),
    }


def silhouette(x: ArrayLike, groups: ArrayLike, sample_size: int | None = 5_000, seed: int = 0) -> float:
    """Mean silhouette coefficient (Rousseeuw, 1987) of a partition of the rows, under cosine distance.

    For each row, ``a`` is its mean distance to the rest of its group and ``b`` the mean
    distance to the nearest other group; its coefficient is ``(b - a) / max(a, b)``, in
    [-1, 1]. ``groups`` may be the classes (a labelled score) or clusters (label-free).
    At most ``sample_size`` random rows are scored (all of them for None): it is quadratic.
    """
    size = None if sample_size is None or sample_size >= len(x) else sample_size
    return float(silhouette_score(x, groups, metric="cosine", sample_size=size, random_state=seed))


def variance_spectrum(z: ArrayLike) -> np.ndarray:
    """The share of the variance along each principal component of the rows, largest first
    (scikit-learn's PCA); its running sum says how many directions the features use."""
    return PCA(svd_solver="full").fit(checks.varying(z, "z")).explained_variance_ratio_


def components_for_variance(spectrum: ArrayLike, fraction: float = 0.9) -> int:
    """How many leading principal components hold ``fraction`` of the variance, given the
    :func:`variance_spectrum`: few when the features lie near a low-dimensional subspace."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    spectrum = np.asarray(spectrum.detach().cpu() if isinstance(spectrum, torch.Tensor) else spectrum, dtype=float)
    if spectrum.ndim != 1 or len(spectrum) == 0 or (spectrum < 0).any() or not spectrum.sum() > 0:
        raise ValueError(f"spectrum must be a non-empty 1-D array of variance shares >= 0, got shape {spectrum.shape}")
    shares = np.sort(spectrum)[::-1] / spectrum.sum()
    # the first running sum that reaches the fraction (a hair of slack for rounding)
    return int(np.searchsorted(np.cumsum(shares), fraction - 1e-12) + 1)


def map_trustworthiness(features: ArrayLike, points: ArrayLike, n_neighbors: int = 10) -> float:
    """Trustworthiness (Venna and Kaski, 2001) of a 2-D map of the features, by scikit-learn:
    1 when each point's ``n_neighbors`` nearest neighbours on the map are also among its
    nearest in the feature space (Euclidean distance in both), lower when the map invents
    neighbours. It says nothing about neighbours the map tore apart."""
    if np.shape(points) != (len(features), 2):  # scikit-learn's own error would not name the points
        raise ValueError(f"points must be ({len(features)}, 2), one 2-D point per row of features, got {points.shape}")
    return float(trustworthiness(features, points, n_neighbors=n_neighbors))


@torch.no_grad()
def positive_pair_features(
    encoder: nn.Module,
    images: torch.Tensor,
    augment: Callable[..., torch.Tensor],
    seed: int = 0,
    batch_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (on the CPU) of two random views of each uint8 image, the positive pairs
    of alignment; ``encoder`` runs in eval mode, without gradients."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    generator = torch.Generator().manual_seed(seed)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    pairs = [
        [encoder(augment(chunk, generator=generator).to(device)).float().cpu() for _ in range(2)]
        for chunk in images.split(batch_size)
    ]
    encoder.train(was_training)
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
