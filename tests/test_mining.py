"""Pairs, triplets and batch-hard mining against hand-worked cases, and the batch losses
against the formulas written out here."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.losses import nt_xent
from course_utils.mining import (
    all_pairs_loss,
    all_triplets_loss,
    batch_hard,
    batch_hard_triplet_loss,
    pair_masks,
    pairwise_distances,
    supervised_nt_xent,
    triplet_mask,
    two_view_nt_xent,
)

# Four points on a line, labels [0, 0, 1, 1]; distances by hand:
# d01 = 1, d02 = 3, d03 = 7, d12 = 2, d13 = 6, d23 = 4
LINE = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
LINE_LABELS = torch.tensor([0, 0, 1, 1])


def _set(mask: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(index) for index in torch.nonzero(mask).tolist()}


def test_pairs_of_two_classes_of_two():
    positive, negative = pair_masks(LINE_LABELS)
    assert _set(positive) == {(0, 1), (2, 3)}
    assert _set(negative) == {(0, 2), (0, 3), (1, 2), (1, 3)}


def test_triplets_of_two_classes_of_two():
    expected = {(0, 1, 2), (0, 1, 3), (1, 0, 2), (1, 0, 3), (2, 3, 0), (2, 3, 1), (3, 2, 0), (3, 2, 1)}
    assert _set(triplet_mask(LINE_LABELS)) == expected


def test_a_lone_item_is_a_negative_but_never_an_anchor():
    # labels [0, 0, 0, 1]: 3 positive pairs, 3 negative; anchors 0-2 have 2 positives x 1 negative
    positive, negative = pair_masks(torch.tensor([0, 0, 0, 1]))
    assert (positive.sum().item(), negative.sum().item()) == (3, 3)
    triplets = _set(triplet_mask(torch.tensor([0, 0, 0, 1])))
    assert len(triplets) == 6 and all(a != 3 and n == 3 for a, _, n in triplets)


@pytest.mark.parametrize(("p", "k"), [(10, 2), (4, 3), (3, 5)])
def test_counts_for_p_classes_of_k(p, k):
    labels = torch.arange(p).repeat_interleave(k)[torch.randperm(p * k)]
    positive, negative = pair_masks(labels)
    b = p * k
    assert positive.sum().item() == p * math.comb(k, 2)
    assert negative.sum().item() == math.comb(b, 2) - p * math.comb(k, 2)
    # every anchor: k - 1 positives, (p - 1) k negatives
    assert triplet_mask(labels).sum().item() == b * (k - 1) * (p - 1) * k


def test_pairwise_distances_match_the_definition():
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    expected = torch.tensor([[math.dist(a.tolist(), b.tolist()) for b in z] for a in z])
    torch.testing.assert_close(pairwise_distances(z), expected, atol=1e-5, rtol=1e-5)
    by_hand = torch.tensor([[0, 1, 3, 7], [1, 0, 2, 6], [3, 2, 0, 4], [7, 6, 4, 0.0]])
    torch.testing.assert_close(pairwise_distances(LINE), by_hand, atol=1e-5, rtol=0)


def test_batch_hard_on_a_hand_made_distance_matrix():
    labels = torch.tensor([0, 0, 0, 1, 1])
    d = torch.tensor(
        [
            [0.0, 2.0, 5.0, 4.0, 9.0],
            [2.0, 0.0, 1.0, 3.0, 0.5],
            [5.0, 1.0, 0.0, 8.0, 6.0],
            [4.0, 3.0, 8.0, 0.0, 7.0],
            [9.0, 0.5, 6.0, 7.0, 0.0],
        ]
    )
    hardest_positive, hardest_negative = batch_hard(d, labels)
    # anchor 0: positives 1, 2 -> max(2, 5) = 5; negatives 3, 4 -> min(4, 9) = 4
    # anchor 1: max(2, 1) = 2; min(3, 0.5) = 0.5.  anchor 2: max(5, 1) = 5; min(8, 6) = 6
    # anchor 3: positive 4 -> 7; negatives 0, 1, 2 -> min(4, 3, 8) = 3.  anchor 4: 7; min(9, 0.5, 6) = 0.5
    assert hardest_positive.tolist() == [5.0, 2.0, 5.0, 7.0, 7.0]
    assert hardest_negative.tolist() == [4.0, 0.5, 6.0, 3.0, 0.5]


def test_losses_on_the_line_by_hand():
    # pairs, margin 2.5: positives 1^2 + 4^2; negatives only d12 = 2 is inside: (2.5 - 2)^2
    assert all_pairs_loss(LINE, LINE_LABELS, margin=2.5).item() == pytest.approx((1 + 16 + 0.25) / 6)
    # triplets, margin 0.5: only (2, 3, 0): 4 - 3 + 0.5 and (2, 3, 1): 4 - 2 + 0.5 are positive
    assert all_triplets_loss(LINE, LINE_LABELS, margin=0.5).item() == pytest.approx((1.5 + 2.5) / 8)
    # batch hard: anchor 2, farthest positive 4, closest negative 2: 4 - 2 + 0.5; the rest 0
    assert batch_hard_triplet_loss(LINE, LINE_LABELS, margin=0.5).item() == pytest.approx(2.5 / 4)


def test_batch_hard_collapse_sits_at_the_margin_with_finite_gradients():
    z = torch.ones(6, 3, requires_grad=True)
    loss = batch_hard_triplet_loss(z, torch.tensor([0, 0, 1, 1, 2, 2]), margin=0.3)
    loss.backward()
    assert loss.item() == pytest.approx(0.3, abs=1e-5)
    assert torch.isfinite(z.grad).all()


def test_supervised_nt_xent_with_one_positive_is_simclr_nt_xent():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    labels = torch.arange(5).repeat(2)  # row i and row i + 5 share a class
    z = torch.cat([z1, z2])
    torch.testing.assert_close(supervised_nt_xent(z, labels, 0.3), nt_xent(z1, z2, 0.3))
    torch.testing.assert_close(two_view_nt_xent(z, 0.3), nt_xent(z1, z2, 0.3))


def test_supervised_nt_xent_with_several_positives_matches_the_formula():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 4, generator=g)
    labels = torch.tensor([0, 1, 0, 0, 1, 2])
    labels[5] = 1  # every item needs a positive
    tau = 0.5
    zn = z / z.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(6):
        others = [k for k in range(6) if k != i]
        denominator = sum(math.exp(float(zn[i] @ zn[k]) / tau) for k in others)
        positives = [p for p in others if labels[p] == labels[i]]
        total += -sum(math.log(math.exp(float(zn[i] @ zn[p]) / tau) / denominator) for p in positives) / len(positives)
    assert supervised_nt_xent(z, labels, tau).item() == pytest.approx(total / 6, rel=1e-5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"labels must be one class per embedding, shape \(4,\), got \(3,\)"):
        all_pairs_loss(LINE, torch.tensor([0, 0, 1]))  # would silently pair up only the first three
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        all_triplets_loss(torch.zeros(4), LINE_LABELS)
    with pytest.raises(ValueError, match="positive and a negative for every anchor"):
        batch_hard(pairwise_distances(LINE), torch.tensor([0, 0, 1, 2]))
    with pytest.raises(ValueError, match="at least 2 images of every class"):
        supervised_nt_xent(LINE, torch.tensor([0, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"same shape, got \(1, 2\) and \(2, 2\)"):
        two_view_nt_xent(torch.zeros(3, 2))  # not two views of the same images
