"""The time-to-accuracy benchmark (benchmarks/time_to_accuracy.py): its clock, its kNN
monitor, its step timing and a tiny run end to end."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from benchmarks.multi_view import multi_view_nt_xent, multi_view_step
from benchmarks.time_to_accuracy import KnnMonitor, main, seconds_per_step
from course_utils.data import ImageDataset
from course_utils.methods.simclr import nt_xent


def _one_bright_pixel(classes: list[int]) -> ImageDataset:
    """Class c is a 4x4 image whose pixel c is bright: cosine kNN separates them perfectly."""
    images = torch.zeros(len(classes), 1, 4, 4, dtype=torch.uint8)
    for i, c in enumerate(classes):
        images[i, 0, c // 4, c % 4] = 255
    return ImageDataset(images, torch.tensor(classes), [str(c) for c in range(4)], "pixels")


class _Flatten(nn.Module):
    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # extract_features asks for a device
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return x.flatten(1) + 0 * self.weight


class _Model(nn.Module):
    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.backbone = _Flatten(delay)


def test_monitor_scores_a_perfect_and_a_wrong_labelling():
    bank = _one_bright_pixel([0, 1, 2, 3] * 6)
    right = _one_bright_pixel([0, 1, 2, 3])
    wrong = ImageDataset(right.images, torch.tensor([1, 2, 3, 0]), right.classes, "shifted labels")
    assert KnnMonitor(bank, right, k=3)(_Model())["val_knn_accuracy"] == 1.0
    assert KnnMonitor(bank, wrong, k=3)(_Model())["val_knn_accuracy"] == 0.0


def test_the_training_clock_leaves_out_the_monitors_own_time():
    bank, validation = _one_bright_pixel([0, 1, 2, 3] * 6), _one_bright_pixel([0, 1, 2, 3])
    monitor = KnnMonitor(bank, validation, k=3)
    slow = _Model(delay=0.15)  # each evaluation sleeps twice (bank, validation): 0.3 s
    monitor(slow)
    time.sleep(0.1)  # "training"
    monitor(slow)
    (first, _), (second, _) = monitor.points
    assert first < 0.05
    assert 0.09 < second - first < 0.2  # 0.1 s of training, not 0.4 s with the evaluation


@dataclass(frozen=True)
class _SleepyRecipe:
    """Fits in 0.2 s plus 0.03 s a batch."""

    epochs: int = 1
    batch_size: int = 4
    images: int | None = None

    def build(self) -> nn.Module:
        return nn.Linear(1, 1)

    def fit(self, model: nn.Module, data: torch.Tensor, validate=None) -> None:
        # without validate, a recipe runs its own monitor (SimSiam loads FashionMNIST for it)
        assert validate is not None and validate(model) == {}, "timing runs must switch the monitor off"
        time.sleep(0.2 + 0.03 * (len(data) // self.batch_size))


def test_step_time_cancels_the_fixed_cost_of_a_run():
    assert seconds_per_step(_SleepyRecipe(), torch.zeros(100, 1)) == pytest.approx(0.03, abs=0.01)


def test_a_tiny_run_writes_its_curve_table_and_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert main(["--minutes", "0.01", "--candidates", "simsiam", "--bank", "200", "--output", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    run = record["runs"]["simsiam"]
    assert run["epochs"] == 1 and len(run["minutes"]) == 2  # the untrained network, then one epoch
    assert run["minutes"][0] < run["minutes"][1]
    assert all(0.0 <= a <= 1.0 for a in run["val_knn_accuracy"])
    assert run["validation_images"] == 200  # smoke holds out 20 of each of 10 classes
    assert (tmp_path / "time_to_accuracy.png").stat().st_size > 0
    assert "| simsiam | 1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--candidates", "moco"], "unknown candidate 'moco'"),
        (["--minutes", "0"], "--minutes must be above 0, got 0.0"),
        (["--bank", "5"], "--bank must hold at least k = 20 images, got 5"),
    ],
)
def test_bad_settings_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def _contrastive_loss_by_hand(z: torch.Tensor, temperature: float) -> float:
    """The multi-view loss written out view by view: for view a of image i, minus the mean over
    its positives p of log(exp(s_ap / t) / sum over every other view b of exp(s_ab / t))."""
    views, n, _ = z.shape
    flat = [(i, z[v, i].double() / z[v, i].double().norm()) for v in range(views) for i in range(n)]
    total = 0.0
    for a, (ia, za) in enumerate(flat):
        others = [(i, float(za @ zb) / temperature) for b, (i, zb) in enumerate(flat) if b != a]
        log_denominator = math.log(sum(math.exp(s) for _, s in others))
        positives = [s for i, s in others if i == ia]
        total += -sum(s - log_denominator for s in positives) / len(positives)
    return total / len(flat)


@pytest.mark.parametrize("views", [2, 3])
def test_the_multi_view_loss_is_the_formula_written_out(views):
    z = torch.randn(views, 5, 4, generator=torch.Generator().manual_seed(views))
    assert multi_view_nt_xent(z, 0.3).item() == pytest.approx(_contrastive_loss_by_hand(z, 0.3), rel=1e-5)


def test_with_two_views_the_multi_view_loss_is_nt_xent():
    z = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    assert multi_view_nt_xent(z, 0.5).item() == pytest.approx(nt_xent(z[0], z[1], 0.5).item(), rel=1e-6)


def test_the_multi_view_loss_refuses_a_single_view():
    with pytest.raises(ValueError, match="V >= 2 views"):
        multi_view_nt_xent(torch.randn(1, 4, 3), 0.5)


def test_the_multi_view_step_embeds_every_view_of_every_image():
    seen = []

    class Backbone(nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x.flatten(1)

    model = SimpleNamespace(backbone=Backbone(), projector=nn.Identity())
    recipe = SimpleNamespace(augment=lambda images: images.float() / 255, temperature=0.5)
    images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    loss, metrics = multi_view_step(4)(model, images, recipe)
    assert seen == [(24, 1, 4, 4)] and torch.isfinite(loss) and metrics["top1"] == 1.0  # identical views


def test_the_monitor_scores_resized_images():
    bank, validation = _one_bright_pixel([0, 1, 2, 3] * 6), _one_bright_pixel([0, 1, 2, 3])
    monitor = KnnMonitor(bank, validation, k=3, size=2)
    assert monitor.bank.images.shape[-2:] == (2, 2) and monitor.validation.images.shape[-2:] == (2, 2)
    assert monitor(_Model())["val_knn_accuracy"] == 1.0  # each bright pixel lands in its own quarter
