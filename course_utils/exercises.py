"""Visible checks of the notebooks' exercises: one ``check_<name>(fn)`` per exercise.

Each check calls the student's function on small cases worked out by hand or with the
formula written out here, independently of the course's own implementation, and raises an
``AssertionError`` that says what was expected and what came (shape, value, which entry),
also when the function is not written yet. The notebooks' hidden tests add further cases,
with the same helpers (:func:`call`, :func:`expect_close`, :func:`expect_equal`, ...).

Exercises, by notebook: 01 :func:`check_balanced_subset`, :func:`check_macro_f1`;
02 :func:`check_simsiam_loss`, :func:`check_collapse_monitor`; 03 :func:`check_nt_xent_logits`,
:func:`check_positive_rank`; 04 :func:`check_label_pair_masks`, :func:`check_hardest_distances`;
05 :func:`check_to_row_sequence`, :func:`check_rnn_step`; 06 :func:`check_rankme`,
:func:`check_alignment_uniformity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "call",
    "check_alignment_uniformity",
    "check_balanced_subset",
    "check_collapse_monitor",
    "check_hardest_distances",
    "check_label_pair_masks",
    "check_macro_f1",
    "check_nt_xent_logits",
    "check_positive_rank",
    "check_rankme",
    "check_rnn_step",
    "check_simsiam_loss",
    "check_to_row_sequence",
    "expect_close",
    "expect_equal",
    "expect_number",
    "expect_shape",
]


# ---------------------------------------------------------------- helpers


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a stub or a crash becomes an AssertionError that says so."""
    name = getattr(fn, "__name__", "the function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{name} is not written yet: replace `raise NotImplementedError()` with your code"
        ) from None
    except Exception as error:
        shapes = ", ".join(_describe(arg) for arg in [*args, *kwargs.values()])
        raise AssertionError(f"{name}({shapes}) raised {type(error).__name__}: {error}") from error


def _describe(arg: Any) -> str:
    """A tensor argument by its shape and dtype, anything else by its value."""
    if isinstance(arg, torch.Tensor):
        return f"tensor of shape {tuple(arg.shape)}, {str(arg.dtype).removeprefix('torch.')}"
    return repr(arg)


def _tensor(got: Any, what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch tensor, got {type(got).__name__}")
    return got


def _number(got: Any, what: str) -> float:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return float(got.detach())
    if isinstance(got, int | float) and not isinstance(got, bool):
        return float(got)
    raise AssertionError(f"{what}: expected a number (float or one-element tensor), got {type(got).__name__}")


def expect_shape(got: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """``got`` as a tensor of ``shape``, or an AssertionError naming both shapes."""
    got = _tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"{what}: expected shape {tuple(shape)}, got {tuple(got.shape)}")
    return got


def expect_close(got: Any, expected: torch.Tensor, what: str, atol: float = 1e-5) -> None:
    """Entry by entry within ``atol`` (infinities must match exactly); names the first wrong entry."""
    got = expect_shape(got, tuple(expected.shape), what).detach().double().cpu()
    expected = expected.detach().double().cpu()
    wrong = ~torch.isclose(got, expected, rtol=0, atol=atol, equal_nan=False)
    if wrong.any():
        first = tuple(int(i) for i in torch.nonzero(wrong)[0])
        entry = f"entry {first}" if first else "the value"
        raise AssertionError(
            f"{what}: {entry} expected {expected[first].item():.6g}, got {got[first].item():.6g}"
            f" ({int(wrong.sum())} of {wrong.numel()} entries differ)"
        )


def expect_number(got: Any, expected: float, what: str, atol: float = 1e-5) -> None:
    """A single number within ``atol`` of ``expected``."""
    value = _number(got, what)
    if not math.isclose(value, expected, rel_tol=0, abs_tol=atol):
        raise AssertionError(f"{what}: expected {expected:.6g}, got {value:.6g}")


def expect_equal(got: Any, expected: torch.Tensor, what: str) -> None:
    """Exactly equal integer or boolean tensors (dtype kind included); names the first wrong entry."""
    got = expect_shape(got, tuple(expected.shape), what)
    if got.dtype != expected.dtype:
        raise AssertionError(f"{what}: expected dtype {expected.dtype}, got {got.dtype}")
    wrong = got.cpu() != expected
    if wrong.any():
        first = tuple(int(i) for i in torch.nonzero(wrong)[0])
        raise AssertionError(
            f"{what}: entry {first} expected {expected[first].item()}, got {got[first].item()}"
            f" ({int(wrong.sum())} of {wrong.numel()} entries differ)"
        )


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- 01: supervised baseline


def check_balanced_subset(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """``fn(labels, k, seed)``: ascending indices of ``k`` items of every class, the same for the same seed."""
    labels = torch.tensor([0, 1, 0, 1, 2, 2, 0])
    got = _tensor(call(fn, labels, 2, 0), "balanced_subset(labels=[0, 1, 0, 1, 2, 2, 0], k=2)")
    what = "balanced_subset(labels=[0, 1, 0, 1, 2, 2, 0], k=2, seed=0)"
    expect_shape(got, (6,), what)
    if got.dtype != torch.int64:
        raise AssertionError(f"{what}: expected int64 indices, got dtype {got.dtype}")
    if not (got[1:] > got[:-1]).all():
        raise AssertionError(f"{what}: expected distinct indices in ascending order, got {got.tolist()}")
    if not {1, 3, 4, 5} <= set(got.tolist()) or not set(got.tolist()) <= set(range(7)):
        raise AssertionError(
            f"{what}: classes 1 and 2 have exactly two items each, so 1, 3, 4 and 5 must be chosen; got {got.tolist()}"
        )
    labels = torch.arange(10).repeat(50)  # 10 classes of 50
    first = call(fn, labels, 5, 0)
    with torch.random.fork_rng():  # the global random state must not matter, and is left as it was
        torch.manual_seed(123)
        again = call(fn, labels, 5, 0)
    expect_equal(again, first, "balanced_subset(10 classes x 50, k=5, seed=0) called twice")
    counts = torch.bincount(labels[first], minlength=10)
    expect_equal(counts, torch.full((10,), 5), "items per class in balanced_subset(10 classes x 50, k=5)")
    other = call(fn, labels, 5, 1)
    if torch.equal(other, first):
        raise AssertionError(
            "balanced_subset with seed=0 and seed=1: expected different random subsets, got the same indices"
        )


def check_macro_f1(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> None:
    """``fn(y_true, y_pred, num_classes)``: the unweighted mean of the per-class F1 = 2TP / (2TP + FP + FN)."""
    y_true = torch.tensor([0, 0, 0, 1, 1, 2])
    y_pred = torch.tensor([0, 0, 1, 1, 2, 2])
    # class 0: TP 2, FP 0, FN 1 -> 4/5; class 1: TP 1, FP 1, FN 1 -> 1/2; class 2: TP 1, FP 1, FN 0 -> 2/3
    expected = (4 / 5 + 1 / 2 + 2 / 3) / 3
    expect_number(call(fn, y_true, y_pred, 3), expected, "macro_f1([0,0,0,1,1,2], [0,0,1,1,2,2], 3)")
    expect_number(call(fn, y_true, y_true, 3), 1.0, "macro_f1 of perfect predictions")
    # class 3 never occurs and is never predicted: its F1 counts as 0
    expect_number(call(fn, y_true, y_pred, 4), 3 * expected / 4, "macro_f1(..., num_classes=4) with class 3 absent")


# ---------------------------------------------------------------- 02: SimSiam


def _negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    dots = (p * z).sum(1)
    return -(dots / (p.pow(2).sum(1).sqrt() * z.pow(2).sum(1).sqrt())).mean()


def check_simsiam_loss(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(p1, p2, z1, z2, stop_gradient=True)``: 1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1)), D the mean
    negative cosine; with ``stop_gradient=False`` the gradient also reaches z."""
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    expect_number(call(fn, e1, e1, 2 * e1, 3 * e1), -1.0, "simsiam_loss with every vector along (1, 0)")
    expect_number(call(fn, e1, e2, e1, e2), 0.0, "simsiam_loss(p1=(1,0), p2=(0,1), z1=(1,0), z2=(0,1))")
    expect_number(call(fn, e1, e1, e2, e1), -0.5, "simsiam_loss(p1=(1,0), p2=(1,0), z1=(0,1), z2=(1,0))")
    p1, p2, z1, z2 = (_random(4, 3, seed=s).requires_grad_() for s in range(4))
    loss = call(fn, p1, p2, z1, z2)
    expected = 0.5 * _negative_cosine(p1, z2.detach()) + 0.5 * _negative_cosine(p2, z1.detach())
    expect_number(loss, expected.item(), "simsiam_loss on random (4, 3) inputs")
    _tensor(loss, "simsiam_loss").backward()
    for name, z in (("z1", z1), ("z2", z2)):
        if z.grad is not None and z.grad.abs().max() > 0:
            raise AssertionError(
                f"simsiam_loss: expected no gradient in {name} (the stop-gradient: {name}.detach()), "
                f"got one of size {z.grad.norm():.3g}"
            )
    if p1.grad is None or p1.grad.abs().max() == 0:
        raise AssertionError("simsiam_loss: expected a gradient in p1 (the predictions learn), got none")
    z1.grad = None
    _tensor(call(fn, p1, p2, z1, z2, stop_gradient=False), "simsiam_loss").backward()
    if z1.grad is None or z1.grad.abs().max() == 0:
        raise AssertionError("simsiam_loss(..., stop_gradient=False): expected a gradient in z1, got none")


def check_collapse_monitor(fn: Callable[[torch.Tensor], float]) -> None:
    """``fn(z)``: mean over the dimensions of the std (N - 1 denominator) of the L2-normalised rows."""
    same = torch.tensor([[3.0, 4.0]]).repeat(5, 1)
    expect_number(call(fn, same), 0.0, "collapse_monitor of five identical rows (a collapse)")
    # rows (1, 0) and (0, 2) normalise to e1 and e2: each column holds 1 and 0, std sqrt(1/2)
    expect_number(call(fn, torch.tensor([[1.0, 0.0], [0.0, 2.0]])), math.sqrt(0.5), "collapse_monitor([[1,0],[0,2]])")
    z = _random(6, 4, seed=0)
    unit = z / z.pow(2).sum(1, keepdim=True).sqrt()
    column_std = ((unit - unit.mean(0)).pow(2).sum(0) / (len(z) - 1)).sqrt()
    expect_number(call(fn, z), column_std.mean().item(), "collapse_monitor on random (6, 4) features")


# ---------------------------------------------------------------- 03: SimCLR


def _cosine_matrix(z: torch.Tensor) -> torch.Tensor:
    n = len(z)
    return torch.tensor(
        [[float(z[i] @ z[j] / (z[i].norm() * z[j].norm())) for j in range(n)] for i in range(n)], dtype=torch.float64
    )


def check_nt_xent_logits(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``fn(z1, z2, temperature)``: (2N, 2N) logits sim/temperature over [z1; z2] with a -inf diagonal,
    and the (2N,) index of every view's positive (its other view)."""
    z1, z2 = _random(3, 4, seed=0), _random(3, 4, seed=1)
    out = call(fn, z1, z2, 0.5)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AssertionError(f"nt_xent_logits: expected a pair (logits, positives), got {type(out).__name__}")
    logits, positives = out
    expected = _cosine_matrix(torch.cat([z1, z2])) / 0.5
    expected.fill_diagonal_(float("-inf"))
    expect_close(logits, expected, "nt_xent_logits(z1, z2, 0.5) logits, N = 3 (diagonal: -inf, a view is no candidate)")
    expect_equal(positives, torch.tensor([3, 4, 5, 0, 1, 2]), "nt_xent_logits positives for N = 3")


def check_positive_rank(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(z1, z2)``: rank (1 = best) of every view's positive among its 2N - 1 candidates by cosine similarity."""
    # views 0, 1 (first image) and 2, 3 (second image) in the plane; 2N = 4 views
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    # cosines: view0=(1,0): view1=(0,1) 0, view2=(0,1) 0, view3 0.6 -> positive (view2) rank 2
    # view1=(0,1): view0 0, view2 1, view3 0.8 -> positive (view3) rank 2
    # view2=(0,1): view0 0 (its positive), view1 1, view3 0.8 -> rank 3
    # view3=(0.6,0.8): view0 0.6, view1 0.8 (its positive), view2 0.8 -> a tie counts in its favour: rank 1
    got = call(fn, z1, z2)
    expect_equal(got, torch.tensor([2, 2, 3, 1]), "positive_rank on the hand-worked 2-image batch")
    z = _random(4, 3, seed=0)
    expect_equal(call(fn, z, 2 * z), torch.ones(8, dtype=torch.int64), "positive_rank when each view equals its pair")


# ---------------------------------------------------------------- 04: metric learning


def check_label_pair_masks(fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``fn(labels)``: boolean (B, B) masks of the positive and negative pairs, entry (i, j) only for i < j."""
    out = call(fn, torch.tensor([0, 0, 1, 1]))
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AssertionError(f"label_pair_masks: expected a pair (positive, negative), got {type(out).__name__}")
    positive, negative = out
    # pairs i < j: (0,1) and (2,3) share a label; (0,2), (0,3), (1,2), (1,3) do not
    t, f = True, False
    expect_equal(
        positive,
        torch.tensor([[f, t, f, f], [f, f, f, f], [f, f, f, t], [f, f, f, f]]),
        "label_pair_masks([0, 0, 1, 1]) positive",
    )
    expect_equal(
        negative,
        torch.tensor([[f, f, t, t], [f, f, t, t], [f, f, f, f], [f, f, f, f]]),
        "label_pair_masks([0, 0, 1, 1]) negative",
    )


def check_hardest_distances(fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``fn(distances, labels)``: per anchor, the largest distance to another item of its class
    and the smallest distance to an item of another class."""
    points = torch.tensor([0.0, 1.0, 3.0, 7.0, 4.0, 9.0])  # on a line
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    distances = (points[:, None] - points[None, :]).abs()
    out = call(fn, distances, labels)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AssertionError(f"hardest_distances: expected a pair (positive, negative), got {type(out).__name__}")
    # anchor 0 at 0: positives 1, 3 -> 3; negatives 7, 4, 9 -> 4. anchor 3 at 7: positives 4, 9 -> 3; negatives -> 4
    expect_close(out[0], torch.tensor([3.0, 2.0, 3.0, 3.0, 5.0, 5.0]), "hardest_distances: hardest positive")
    expect_close(out[1], torch.tensor([4.0, 3.0, 1.0, 4.0, 1.0, 6.0]), "hardest_distances: hardest negative")


# ---------------------------------------------------------------- 05: rows


def check_to_row_sequence(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(images)``: (N, C, H, W) to (N, H, W * C), step t = row t, pixel by pixel with its C values together."""
    tiny = torch.tensor([[[[0, 1], [10, 11]], [[100, 101], [110, 111]], [[200, 201], [210, 211]]]])
    expected = torch.tensor([[[0, 100, 200, 1, 101, 201], [10, 110, 210, 11, 111, 211]]])
    expect_equal(call(fn, tiny), expected, "to_row_sequence of the 3x2x2 image 100*channel + 10*row + column")
    images = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    got = expect_shape(call(fn, images), (2, 4, 15), "to_row_sequence of (2, 3, 4, 5) images")
    expected = torch.tensor(
        [[[int(images[n, c, h, w]) for w in range(5) for c in range(3)] for h in range(4)] for n in range(2)]
    )
    expect_equal(got, expected, "to_row_sequence of (2, 3, 4, 5) images")


def check_rnn_step(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh)``: tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    x, h = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]])
    w_ih, w_hh = torch.tensor([[0.1, -0.2]]), torch.tensor([[2.0]])
    b_ih, b_hh = torch.tensor([0.3]), torch.tensor([0.0])
    # 0.1 * 1 - 0.2 * 2 + 0.3 + 2 * 0.5 + 0 = 1.0
    expect_close(call(fn, x, h, w_ih, w_hh, b_ih, b_hh), torch.tensor([[math.tanh(1.0)]]), "rnn_step, hand-worked")
    x, h = _random(4, 3, seed=0), _random(4, 5, seed=1)
    w_ih, w_hh, b_ih, b_hh = _random(5, 3, seed=2), _random(5, 5, seed=3), _random(5, seed=4), _random(5, seed=5)
    expected = torch.tensor(
        [
            [
                math.tanh(
                    sum(float(w_ih[j, k] * x[n, k]) for k in range(3))
                    + float(b_ih[j])
                    + sum(float(w_hh[j, k] * h[n, k]) for k in range(5))
                    + float(b_hh[j])
                )
                for j in range(5)
            ]
            for n in range(4)
        ]
    )
    expect_close(call(fn, x, h, w_ih, w_hh, b_ih, b_hh), expected, "rnn_step on a batch of 4 (3 inputs, 5 hidden)")


# ---------------------------------------------------------------- 06: evaluating representations


def check_rankme(fn: Callable[[torch.Tensor], float]) -> None:
    """``fn(z)``: exp(-sum p_k log p_k), p_k = sigma_k / sum sigma + 1e-7, sigma the singular values of z."""
    # singular values 3 and 1 (orthogonal columns of lengths 3 and 1)
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    p = [0.75 + 1e-7, 0.25 + 1e-7]
    expect_number(call(fn, z), math.exp(-sum(q * math.log(q) for q in p)), "rankme([[3,0],[0,1],[0,0]])", atol=1e-4)
    line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]])  # rank 1
    expect_number(call(fn, line), 1.0, "rankme of rows along one direction", atol=1e-4)
    expect_number(call(fn, 5 * torch.eye(4)), 4.0, "rankme of 5 * identity(4)", atol=1e-4)


def check_alignment_uniformity(alignment: Callable[..., float], uniformity: Callable[..., float]) -> None:
    """``alignment(z1, z2)``: the mean ||f(x) - f(y)||^2 over the pairs of rows; ``uniformity(z)``: the
    log of the mean of exp(-2 ||f(x_i) - f(x_j)||^2) over the pairs i < j of rows; f = L2-normalised rows."""
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-3.0, 0.0]])
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    # pairs: e1-e1 -> 0, e2-e1 -> 2, (-e1)-e2 -> 2: mean 4/3
    expect_number(call(alignment, z1, z2), 4 / 3, "alignment, hand-worked")
    # z1 rows e1, e2, -e1: squared distances 2, 4, 2 over the pairs (0,1), (0,2), (1,2)
    uniform = math.log((2 * math.exp(-4) + math.exp(-8)) / 3)
    expect_number(call(uniformity, z1), uniform, "uniformity, hand-worked")
