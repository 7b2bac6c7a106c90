"""Class-balanced batches: balance, coverage of an epoch, repeatability, bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.recipes.metric import MetricRecipe
from course_utils.samplers import ClassBalancedBatches


def _labels(sizes: list[int]) -> torch.Tensor:
    """Class c repeated sizes[c] times, shuffled so that classes are interleaved."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize(("sizes", "p", "k"), [([6] * 10, 10, 2), ([7, 5, 9, 4], 3, 2), ([12, 12, 12], 2, 4)])
def test_every_batch_has_p_classes_with_k_images_each(sizes, p, k):
    labels = _labels(sizes)
    for batch in ClassBalancedBatches(labels, p, k, seed=0):
        counts = torch.bincount(labels[batch], minlength=len(sizes))
        assert sorted(counts.tolist(), reverse=True) == [k] * p + [0] * (len(sizes) - p)
        assert len(batch.unique()) == len(batch)  # no image twice in one batch


def test_equal_classes_give_a_permutation_per_epoch():
    # 10 classes of 6, P = 10, K = 2: 3 batches of 20, every item exactly once
    labels = _labels([6] * 10)
    batches = ClassBalancedBatches(labels, 10, 2, seed=0)
    for _ in range(3):
        epoch = torch.cat(list(batches))
        assert len(batches) == 3
        assert sorted(epoch.tolist()) == list(range(60))


def test_unequal_classes_every_item_at_least_once_and_no_repeat_before_the_class_is_used_up():
    sizes = [7, 5, 9, 4]
    labels = _labels(sizes)
    batches = ClassBalancedBatches(labels, 3, 2, seed=0)
    # largest class: ceil(9 / 2) = 5 draws; 4 classes x 5 draws over 3 slots a batch
    assert len(batches) == math.ceil(4 * 5 / 3)
    for _ in range(4):
        epoch = torch.cat(list(batches))
        assert set(epoch.tolist()) == set(range(len(labels)))
        for c, n in enumerate(sizes):
            drawn = epoch[labels[epoch] == c].tolist()
            assert len(set(drawn[:n])) == n  # the first n draws of a class are all its items


def test_same_seed_same_epochs_other_seed_other_epochs():
    labels = _labels([8] * 5)

    def two_epochs(seed):
        batches = ClassBalancedBatches(labels, 5, 2, seed=seed)
        return [torch.cat(list(batches)).tolist() for _ in range(2)]

    first, second = two_epochs(3)
    assert two_epochs(3) == [first, second]
    assert first != second  # each iteration is a new epoch
    assert two_epochs(4)[0] != first


def test_impossible_settings_are_named():
    labels = _labels([5, 3, 4])
    with pytest.raises(ValueError, match="per_class=4 but class 1 has only 3"):
        ClassBalancedBatches(labels, 2, 4)
    with pytest.raises(ValueError, match="classes_per_batch=4 but the labels hold only 3 classes"):
        ClassBalancedBatches(labels, 4, 2)
    with pytest.raises(ValueError, match="classes_per_batch must be an int >= 1, got 0"):
        MetricRecipe.default(objective="pairs", classes_per_batch=0)  # where the batch sizes are set
    with pytest.raises(ValueError, match=r"class indices >= 0 \(not -1, unlabeled\)"):
        ClassBalancedBatches(torch.tensor([0, 0, -1, -1]), 1, 2)
    with pytest.raises(ValueError, match=r"1-D class indices .*, got \(12, 1\)"):
        ClassBalancedBatches(labels[:, None], 2, 2)  # would draw wrong indices, silently


def test_plugs_into_the_training_loop():
    from course_utils.train import train

    labels = _labels([4] * 3)
    seen = []
    model = torch.nn.Linear(1, 1)

    def step(model, index):
        seen.append(index)
        return model(torch.ones(len(index), 1)).pow(2).mean()

    batches = ClassBalancedBatches(labels, 3, 2, seed=0)
    train(model, step, batches, epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    assert len(seen) == 2 * len(batches) == 4
