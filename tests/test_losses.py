"""Each loss against its equation, written out here independently, and a hand-worked case."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.losses import contrastive_pair_loss, triplet_loss
from course_utils.methods.simsiam import simsiam_loss


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))


def test_simsiam_loss_is_the_symmetric_mean_and_only_trains_predictions():
    g = torch.Generator().manual_seed(3)
    p1, p2, z1, z2 = (torch.randn(6, 4, generator=g, requires_grad=True) for _ in range(4))
    by_hand = -0.5 * sum(_cos(a, b) for a, b in zip(p1.detach(), z2.detach())) / 6
    by_hand += -0.5 * sum(_cos(a, b) for a, b in zip(p2.detach(), z1.detach())) / 6
    loss = simsiam_loss(p1, p2, z1, z2)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    loss.backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0
    same = torch.randn(3, 4)
    assert simsiam_loss(same, same, same, same).item() == pytest.approx(-1.0, abs=1e-6)


def test_contrastive_pair_loss_hand_worked_case():
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    x2 = torch.tensor([[3.0, 4.0], [3.0, 4.0], [0.3, 0.4]])  # distances 5, 5, 0.5
    same = torch.tensor([1, 0, 0])
    # same pair: 5^2 = 25; far different pair: 0; near different pair: (1 - 0.5)^2 = 0.25
    assert contrastive_pair_loss(x1, x2, same, margin=1.0).item() == pytest.approx((25 + 0 + 0.25) / 3, rel=1e-4)


def test_triplet_loss_hand_worked_case():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # d(a, p) = 1
    n = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # d(a, n) = 2 and 3
    # margin 1.5: max(0, 1 - 2 + 1.5) = 0.5 and max(0, 1 - 3 + 1.5) = 0
    assert triplet_loss(a, p, n, margin=1.5).item() == pytest.approx(0.25, rel=1e-4)


def test_margin_losses_reject_bad_input():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"same must be one 0/1 flag per pair, got \(3,\)"):
        contrastive_pair_loss(x, x, torch.ones(3))
    with pytest.raises(ValueError, match="same shape"):
        triplet_loss(x, x, torch.randn(4, 2))


_EMPTY = torch.zeros(0, 4)


@pytest.mark.parametrize(
    "loss",
    [
        lambda: contrastive_pair_loss(_EMPTY, _EMPTY, torch.zeros(0)),
        lambda: triplet_loss(_EMPTY, _EMPTY, _EMPTY),
    ],
    ids=["contrastive_pair_loss", "triplet_loss"],
)
def test_losses_reject_an_empty_batch(loss):
    # the mean over no rows is NaN, which would otherwise only surface as a NaN loss
    with pytest.raises(ValueError, match="empty batch"):
        loss()


@pytest.mark.parametrize("same", [[0, 1, 2, 1], [-1, 1, 0, 0], [0.5, 0.5, 1.0, 0.0], [3, 7, 7, 0]])
def test_contrastive_pair_loss_rejects_labels_other_than_0_and_1(same):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same must be one 0/1 flag per pair"):
        contrastive_pair_loss(x, x, torch.tensor(same))


def test_contrastive_pair_loss_takes_bool_and_float_labels():
    x1 = torch.zeros(3, 2)
    x2 = torch.tensor([[3.0, 4.0], [3.0, 4.0], [0.3, 0.4]])  # the hand-worked case above
    for same in [torch.tensor([True, False, False]), torch.tensor([1.0, 0.0, 0.0])]:
        assert contrastive_pair_loss(x1, x2, same).item() == pytest.approx((25 + 0 + 0.25) / 3, rel=1e-4)


def test_simsiam_without_stop_gradient_has_the_same_value_and_trains_the_targets():
    generator = torch.Generator().manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(8, 5, generator=generator, requires_grad=True) for _ in range(4))
    kept = simsiam_loss(p1, p2, z1, z2)
    dropped = simsiam_loss(p1, p2, z1, z2, stop_gradient=False)
    assert dropped.item() == pytest.approx(kept.item())
    kept.backward()
    assert z1.grad is None and z2.grad is None, "with the stop-gradient the targets get no gradient"
    dropped.backward()
    # d/dz2 of -cos(p1, z2) / 2 / N for row 0, written out: -(p/|p| - cos * z/|z|) / |z| / (2N)
    p, z = p1[0].detach(), z2[0].detach()
    cos = (p @ z) / (p.norm() * z.norm())
    expected = -(p / p.norm() - cos * z / z.norm()) / z.norm() / (2 * 8)
    assert torch.allclose(z2.grad[0], expected, atol=1e-6)
