"""Representation scores against hand-worked cases and the formulas written out here."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.methods.evaluation import alignment, rankme, uniformity
from course_utils.representations import (
    components_for_variance,
    kmeans_scores,
    knn_predict,
    map_trustworthiness,
    positive_pair_features,
    silhouette,
    variance_spectrum,
)


def test_knn_weighted_vote_can_overrule_the_majority():
    # Query (1, 0). Neighbours: two of class 0 at 60 degrees (cosine 0.5), one of class 1
    # at cosine 0.9. Plain vote with k=3: class 0 wins 2 to 1. Weighted with tau=0.07:
    # class 0 gets 2 exp(0.5/0.07) = 2 * 1.3e3, class 1 gets exp(0.9/0.07) = 3.8e5: class 1.
    # With tau=10 the weights are nearly equal again (2 * 1.051 > 1.094): class 0.
    c60, s60 = 0.5, math.sqrt(3) / 2
    train_x = np.array([[c60, s60], [c60, -s60], [0.9, math.sqrt(1 - 0.81)], [-1.0, 0.0]])
    train_y = np.array([0, 0, 1, 1])
    query = np.array([[2.0, 0.0]])  # length does not matter under cosine similarity
    assert knn_predict(train_x, train_y, query, k=3).tolist() == [0]
    assert knn_predict(train_x, train_y, query, k=3, temperature=0.07).tolist() == [1]
    assert knn_predict(train_x, train_y, query, k=3, temperature=10.0).tolist() == [0]
    # k=1 is the nearest neighbour alone, whatever the weighting
    assert knn_predict(torch.tensor(train_x), torch.tensor(train_y), torch.tensor(query), k=1).tolist() == [1]


def test_knn_rejects_bad_input():
    x, y = np.eye(3), np.arange(3)
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit, but n_neighbors = 4"):
        knn_predict(x, y, x, k=4)  # scikit-learn's checks, the ones below too
    with pytest.raises(ValueError, match="X has 5 features, but KNeighborsClassifier is expecting 3"):
        knn_predict(x, y, np.ones((2, 5)), k=1)
    with pytest.raises(ValueError, match="train_y"):
        knn_predict(x, np.arange(2), x, k=1)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(x, y, x, k=1, temperature=0.0)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        knn_predict(np.ones(3), y, x, k=1)
    with pytest.raises(ValueError, match="train_y holds -1: .*-1 marks an unlabeled image"):
        knn_predict(x, y - 1, x, k=1)  # scikit-learn would take -1 for a class


def test_kmeans_scores_hand_worked_contingency_table():
    # Two tight groups of three points on perpendicular axes: k-means finds exactly them.
    # Classes 0, 0, 1 | 1, 1, 1 make the contingency table (clusters x classes) [[2, 1], [0, 3]].
    x = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1], [0.01, 1], [-0.01, 1]])
    y = np.array([0, 0, 1, 1, 1, 1])
    scores = kmeans_scores(x, x, y)
    # ARI = (sum C(n_ij, 2) - E) / (mean of row and column sums - E), E = rows * columns / C(n, 2)
    pairs_ij = math.comb(2, 2) + math.comb(1, 2) + math.comb(3, 2)  # 4
    pairs_rows = math.comb(3, 2) + math.comb(3, 2)  # 6
    pairs_cols = math.comb(2, 2) + math.comb(4, 2)  # 7
    expected = pairs_rows * pairs_cols / math.comb(6, 2)  # 2.8
    assert scores["ari"] == pytest.approx((pairs_ij - expected) / ((pairs_rows + pairs_cols) / 2 - expected))
    # NMI = I(U; V) / ((H(U) + H(V)) / 2), natural logs
    joint = np.array([[2, 1], [0, 3]]) / 6
    pu, pv = joint.sum(1), joint.sum(0)
    mi = sum(joint[i, j] * math.log(joint[i, j] / (pu[i] * pv[j])) for i in range(2) for j in range(2) if joint[i, j])
    entropy = lambda p: -sum(q * math.log(q) for q in p)  # noqa: E731
    assert scores["nmi"] == pytest.approx(mi / ((entropy(pu) + entropy(pv)) / 2))
    # within a cluster cosine distances are about 1e-4, across clusters about 1: silhouette near 1
    assert scores["silhouette"] == pytest.approx(1.0, abs=1e-3)


def test_kmeans_scores_fits_on_one_set_and_scores_another():
    g = np.random.default_rng(0)
    centres = 10 * np.eye(3)
    fit_x = np.repeat(centres, 20, axis=0) + g.normal(size=(60, 3))
    test_y = np.repeat(np.arange(3), 10)
    test_x = centres[test_y] + g.normal(size=(30, 3))
    assert kmeans_scores(fit_x, test_x, test_y) == pytest.approx({"ari": 1.0, "nmi": 1.0, "silhouette": 1.0}, abs=0.1)
    with pytest.raises(ValueError, match="Number of labels is 1. Valid values are 2 to n_samples - 1"):
        kmeans_scores(fit_x, test_x, test_y, n_clusters=1)  # scikit-learn's silhouette check
    with pytest.raises(ValueError, match="test_y"):
        kmeans_scores(fit_x, test_x, test_y[:5])


def test_silhouette_hand_worked_case_under_cosine_distance():
    # class 0: (1,0), (1,0); class 1: (0,1), (1,1). Cosine distances: (1,0)-(0,1): 1,
    # (1,0)-(1,1) and (0,1)-(1,1): 1 - 1/sqrt(2) = d.
    d = 1 - 1 / math.sqrt(2)
    s_10 = (((1 + d) / 2) - 0) / ((1 + d) / 2)  # a = 0 (its twin), b = mean distance to class 1
    s_01 = (1 - d) / 1  # a = d, b = 1
    s_11 = (d - d) / d  # a = d, b = d
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert silhouette(x, torch.tensor([0, 0, 1, 1])) == pytest.approx((2 * s_10 + s_01 + s_11) / 4)
    with pytest.raises(ValueError, match="Number of labels is 1. Valid values are 2 to n_samples - 1"):
        silhouette(x, torch.tensor([0, 0, 0, 0]))


def test_alignment_formula():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z2 = torch.tensor([[0.0, 3.0], [0.0, 5.0]])
    # normalised: (1,0) vs (0,1): squared distance 2; (0,1) vs (0,1): 0
    assert alignment(z1, z2) == pytest.approx((2 + 0) / 2)
    assert alignment(z1, -z1) == pytest.approx(4.0)  # opposite views: |2u|^2


def test_uniformity_formula():
    # Three unit vectors 120 degrees apart: every pair has squared distance 2 - 2 cos 120 = 3.
    angles = np.deg2rad([90, 210, 330])
    z = 7 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # lengths are normalised away
    assert uniformity(torch.tensor(z)) == pytest.approx(-2 * 3)
    # +-e1, +-e2: two pairs at squared distance 4, four pairs at 2
    z = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    assert uniformity(z, t=2) == pytest.approx(math.log((2 * math.exp(-8) + 4 * math.exp(-4)) / 6))
    assert uniformity(torch.ones(5, 3)) == pytest.approx(0.0)  # collapse
    g = np.random.default_rng(1)
    z = g.normal(size=(30, 4))
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    by_pairs = [math.exp(-2 * np.sum((u[i] - u[j]) ** 2)) for i, j in combinations(range(30), 2)]
    assert uniformity(torch.tensor(z)) == pytest.approx(math.log(np.mean(by_pairs)))


def test_effective_rank_formula():
    # singular values (3, 1): p = (3/4, 1/4) (+ eps), rank = exp(entropy of p)
    p = np.array([0.75, 0.25]) + 1e-7
    assert rankme(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(math.exp(-np.sum(p * np.log(p))))
    assert rankme(torch.eye(5)) == pytest.approx(5.0, rel=1e-5)  # five equal directions
    assert rankme(torch.outer(torch.arange(1.0, 7), torch.tensor([1.0, 2, 3]))) == pytest.approx(1.0, rel=1e-5)


def test_variance_spectrum_and_components_hand_worked_case():
    # Centred points along three axes: variances proportional to 18, 8 and 2 (sum 28).
    # Cumulative shares 0.643, 0.929, 1: 90% needs two components, 60% one, 95% three.
    z = np.array([[3.0, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]])
    spectrum = variance_spectrum(torch.tensor(z))
    assert spectrum == pytest.approx([18 / 28, 8 / 28, 2 / 28])
    assert components_for_variance(spectrum, 0.9) == 2
    assert components_for_variance(spectrum, 0.6) == 1
    assert components_for_variance(spectrum, 0.95) == 3
    assert components_for_variance(np.array([0.5, 0.4, 0.1]), 0.9) == 2  # exactly 90% counts as reached
    assert components_for_variance(torch.tensor([1.0, 4.0, 5.0]), 0.5) == 1  # unsorted, unnormalised
    with pytest.raises(ValueError, match="fraction"):
        components_for_variance(spectrum, 90)
    with pytest.raises(ValueError, match="spectrum"):
        components_for_variance(np.array([0.5, -0.1]))


def test_map_trustworthiness_hand_worked_case():
    # Line 0, 1, 3, 7; the map swaps the places of points 1 and 2: 0, 3, 1, 7.
    # With k = 1 every point's map neighbour is its 2nd-nearest in the original: each adds
    # rank - k = 1. T = 1 - 2 / (n k (2n - 3k - 1)) * 4 = 1 - 2 / 16 * 4 = 0.5
    features = np.array([[0.0], [1], [3], [7]])
    points = np.array([[0.0, 0], [3, 0], [1, 0], [7, 0]])
    assert map_trustworthiness(features, points, n_neighbors=1) == pytest.approx(0.5)
    assert map_trustworthiness(features, np.hstack([features, features]), n_neighbors=1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="points"):
        map_trustworthiness(features, points[:3])
    with pytest.raises(ValueError, match=r"n_neighbors \(2\) should be less than n_samples / 2"):
        map_trustworthiness(features, points, n_neighbors=2)


def trustworthiness_by_formula(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Venna and Kaski's T(k) = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in U_i} (r(i, j) - k),
    U_i: the k map neighbours of i that are not among its k nearest in the original space,
    r(i, j): the rank of j by distance from i in the original space (1 = nearest)."""
    n = len(x)
    dx = np.linalg.norm(x[:, None] - x[None], axis=2)
    dy = np.linalg.norm(y[:, None] - y[None], axis=2)
    penalty = 0
    for i in range(n):
        order_x = [j for j in np.argsort(dx[i]) if j != i]
        rank = {j: r + 1 for r, j in enumerate(order_x)}
        near_y = [j for j in np.argsort(dy[i]) if j != i][:k]
        penalty += sum(rank[j] - k for j in near_y if rank[j] > k)
    return 1 - 2 / (n * k * (2 * n - 3 * k - 1)) * penalty


def test_map_trustworthiness_matches_the_formula_on_a_projection():
    g = np.random.default_rng(2)
    features = g.normal(size=(40, 5))
    points = features[:, :2] + 0.3 * g.normal(size=(40, 2))  # a noisy view of two of the five axes
    expected = trustworthiness_by_formula(features, points, k=4)
    assert expected < 0.95  # the map does invent neighbours
    assert map_trustworthiness(torch.tensor(features), points, n_neighbors=4) == pytest.approx(expected)


def test_positive_pair_features_are_two_different_views_in_eval_mode():
    images = torch.randint(0, 256, (10, 1, 6, 6), dtype=torch.uint8)
    encoder = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(36)).train()

    def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x.float() / 255 + torch.rand(len(x), 1, 1, 1, generator=generator)

    z1, z2 = positive_pair_features(encoder, images, shift, batch_size=4)
    assert z1.shape == z2.shape == (10, 36)
    assert not torch.allclose(z1, z2)
    assert encoder.training  # mode restored
    again = positive_pair_features(encoder, images, shift, batch_size=4)
    assert torch.equal(again[0], z1)  # same seed, same views
    # eval-mode BatchNorm with fresh statistics is the identity (up to its epsilon): the
    # difference of the two views is the per-image shift, the same for every pixel
    difference = z1 - z2
    assert torch.allclose(difference, difference[:, :1].expand_as(difference), atol=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        positive_pair_features(encoder, images.float(), shift)
