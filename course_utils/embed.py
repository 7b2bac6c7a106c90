"""Two-dimensional maps of high-dimensional features: PCA, t-SNE and UMAP."""

from __future__ import annotations

import os

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from course_utils import checks

METHODS = ("pca", "tsne", "umap")


def embed_2d(
    features: np.ndarray, method: str = "umap", seed: int = 0, pca_dims: int = 50, perplexity: float = 30.0
) -> np.ndarray:
    """Map (N, D) features to (N, 2) points with ``method`` (pca, tsne or umap).

    t-SNE and UMAP first reduce to ``pca_dims`` dimensions with PCA, which keeps
    almost all the structure and makes their neighbour search much faster.
    ``perplexity`` is t-SNE's (roughly how many neighbours each point keeps close).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    features = checks.varying(features, "features").astype(np.float32)
    if method == "umap" and len(features) <= 15:  # it would map fewer neighbours than it says
        raise ValueError(f"UMAP looks at 15 neighbours per point: it needs more than 15 points, got {len(features)}")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if features.shape[1] > pca_dims:
        features = PCA(n_components=pca_dims, random_state=seed).fit_transform(features)
    if method == "tsne":
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    # numba's default OpenMP threads keep spinning after UMAP returns and slowed every
    # later single-threaded torch op about 70-fold here; the workqueue layer does not.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    import umap

    return umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1).fit_transform(features)
