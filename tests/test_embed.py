"""2-D embeddings keep well-separated clusters apart."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from course_utils.embed import embed_2d


def _clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64)) * 10
    labels = np.repeat(np.arange(3), 60)
    return centres[labels] + rng.normal(size=(180, 64)), labels


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_clusters_stay_apart(method):
    features, labels = _clusters()
    points = embed_2d(features, method)
    assert points.shape == (180, 2)
    centres = np.stack([points[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(points[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread, f"{method}: clusters overlap"


def test_bad_input():
    with pytest.raises(ValueError, match="unknown method 'mds'"):
        embed_2d(np.zeros((10, 3)), "mds")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        embed_2d(np.zeros(10), "pca")


def test_tsne_perplexity_is_used():
    features, _ = _clusters()
    reduced = PCA(n_components=50, random_state=0).fit_transform(features.astype(np.float32))
    expected = TSNE(n_components=2, perplexity=5, init="pca", random_state=0).fit_transform(reduced)
    np.testing.assert_allclose(embed_2d(features, "tsne", perplexity=5), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"perplexity \(180\) must be less than n_samples \(180\)"):  # scikit-learn's
        embed_2d(features, "tsne", perplexity=180)
