"""Each loss against its equation, written out here independently, and a hand-worked case."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.losses import contrastive_pair_loss, negative_cosine, nt_xent, simsiam_loss, triplet_loss


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))


def nt_xent_by_hand(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """The NT-Xent equation, one anchor at a time, in plain Python."""
    views = list(z1) + list(z2)
    n = len(z1)
    total = 0.0
    for i, anchor in enumerate(views):
        positive = (i + n) % (2 * n)
        numerator = math.exp(_cos(anchor, views[positive]) / tau)
        denominator = sum(math.exp(_cos(anchor, views[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


def test_nt_xent_hand_worked_case():
    # Views (1,0), (0,1), (1,0), (0,1): each anchor sees its positive at cosine 1
    # and two negatives at cosine 0, so every term is -log(e / (e + 2)).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log(1 + 2 / math.e), abs=1e-6)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_equation(tau):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(nt_xent_by_hand(z1, z2, tau), rel=1e-5)


def test_nt_xent_ignores_vector_length_and_is_symmetric_in_the_views():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    assert nt_xent(3 * z1, 0.5 * z2).item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-6)
    assert nt_xent(z2, z1).item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-6)


@pytest.mark.parametrize("tau", [0.05, 0.01])
def test_nt_xent_is_finite_at_low_temperature(tau):
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(256, 128, generator=g, requires_grad=True)
    z2 = (z1.detach() + 1e-3 * torch.randn(256, 128, generator=g)).requires_grad_()
    loss = nt_xent(z1, z2, tau)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    # Perfectly aligned, mutually orthogonal views: the loss tends to 0 as tau -> 0.
    eye = torch.eye(16)
    assert nt_xent(eye, eye.clone(), 0.05).item() == pytest.approx(30 * math.exp(-20), abs=1e-6)


@pytest.mark.parametrize("tau", [0.0, -0.5])
def test_nt_xent_rejects_non_positive_temperature(tau):
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0.0001"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), tau)


def test_nt_xent_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nt_xent(torch.randn(4, 3, 2), torch.randn(4, 3, 2))


def test_negative_cosine_hand_worked_case():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    # cosines: 1/sqrt(2) and -1
    assert negative_cosine(p, z).item() == pytest.approx(-(1 / math.sqrt(2) - 1) / 2, abs=1e-6)


def test_stop_gradient_really_stops_it():
    p = torch.randn(5, 4, requires_grad=True)
    z = torch.randn(5, 4, requires_grad=True)
    negative_cosine(p, z).backward()
    assert z.grad is None, "no gradient may reach the target branch"
    assert p.grad is not None and p.grad.abs().sum() > 0


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
        lambda: nt_xent(_EMPTY, _EMPTY),
        lambda: simsiam_loss(_EMPTY, _EMPTY, _EMPTY, _EMPTY),
        lambda: contrastive_pair_loss(_EMPTY, _EMPTY, torch.zeros(0)),
        lambda: triplet_loss(_EMPTY, _EMPTY, _EMPTY),
    ],
    ids=["nt_xent", "simsiam_loss", "contrastive_pair_loss", "triplet_loss"],
)
def test_losses_reject_an_empty_batch(loss):
    # the mean over no rows is NaN, which would otherwise only surface as a NaN loss
    with pytest.raises(ValueError, match="empty batch"):
        loss()


def test_nt_xent_needs_two_images_for_a_negative():
    # one image has no negatives: the loss is log(1) = 0 whatever the embeddings
    with pytest.raises(ValueError, match="at least 2 images"):
        nt_xent(torch.randn(1, 4), torch.randn(1, 4))


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
