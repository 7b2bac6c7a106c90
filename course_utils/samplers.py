"""Batch orders for :func:`course_utils.train.train` that look at the labels.

:class:`ClassBalancedBatches` makes every batch hold P classes with K images each, so
that every image in a batch has K - 1 same-class partners (positives) and
(P - 1) * K other-class images (negatives): what pair, triplet and supervised
NT-Xent losses need (Hermans et al. 2017, "In Defense of the Triplet Loss for
Person Re-Identification", call it PK sampling).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class ClassBalancedBatches:
    """Batches of ``classes_per_batch`` (P) classes x ``per_class`` (K) images.

    In every epoch each class has its own stream of indices: a random permutation of the
    class's items, followed by a fresh permutation whenever one runs out. A batch takes the next
    K indices from the streams of P distinct classes, the P classes drawn at random among
    those used least so far in the epoch, so every class is in the same number of batches
    (up to one).

    An epoch has as many batches as it takes for the largest class to be drawn
    completely: ``ceil(C * ceil(n_max / K) / P)`` batches for C classes. So in every
    epoch **every item appears at least once**, and an item appears again only after every
    other item of its class has (a smaller class's stream has started a new permutation).
    When all classes have the same size n, K divides n and P divides C, an epoch is a
    permutation of the data: every item exactly once. The source's case is P = C = 10 classes, K = 2.

    Like :class:`~course_utils.train.ShuffledBatches`, each iteration is a new epoch, and
    the same ``seed`` gives the same sequence of epochs.
    """

    def __init__(self, labels: torch.Tensor, classes_per_batch: int, per_class: int, seed: int = 0):
        if labels.ndim != 1 or (labels < 0).any():  # (N, 1) labels would pick wrong items, -1 would be a class
            raise ValueError(f"labels must be 1-D class indices >= 0 (not -1, unlabeled), got {tuple(labels.shape)}")
        self.classes = torch.unique(labels)
        self.members = [torch.nonzero(labels == c).flatten() for c in self.classes]
        if classes_per_batch > len(self.classes):  # the batches would hold fewer classes than asked
            raise ValueError(
                f"classes_per_batch={classes_per_batch} but the labels hold only {len(self.classes)} classes"
            )
        sizes = torch.tensor([len(m) for m in self.members])
        if per_class > sizes.min():  # a batch would hold an image twice
            smallest = int(sizes.argmin())
            raise ValueError(
                f"per_class={per_class} but class {int(self.classes[smallest])} has only {int(sizes[smallest])} items"
            )
        self.classes_per_batch = classes_per_batch
        self.per_class = per_class
        self.generator = torch.Generator().manual_seed(seed)
        draws_per_class = math.ceil(int(sizes.max()) / per_class)
        self.num_batches = math.ceil(len(self.classes) * draws_per_class / classes_per_batch)

    def __len__(self) -> int:
        return self.num_batches

    def _stream(self, c: int, length: int) -> torch.Tensor:
        """Class ``c``'s indices for one epoch: ``length`` of them from back-to-back permutations."""
        members = self.members[c]
        rounds = math.ceil(length / len(members))
        return torch.cat([members[torch.randperm(len(members), generator=self.generator)] for _ in range(rounds)])

    def __iter__(self) -> Iterator[torch.Tensor]:
        used = torch.zeros(len(self.classes), dtype=torch.long)
        chosen_per_batch = []
        for _ in range(self.num_batches):
            # least-used classes first; the random fraction breaks ties between equally used ones
            priority = used + torch.rand(len(self.classes), generator=self.generator)
            chosen = priority.argsort()[: self.classes_per_batch]
            used[chosen] += 1
            chosen_per_batch.append(chosen)
        streams = [self._stream(c, int(n) * self.per_class).split(self.per_class) for c, n in enumerate(used)]
        position = [0] * len(self.classes)
        for chosen in chosen_per_batch:
            batch = []
            for c in chosen.tolist():
                batch.append(streams[c][position[c]])
                position[c] += 1
            yield torch.cat(batch)
