"""The FashionMNIST source's model and the 1,000-label baseline shared by notebooks 01 and 02."""

from __future__ import annotations

import pytest
import torch

from course_utils import seed_everything
from course_utils.baselines import fashion_classifier, few_label_baseline, few_label_recipe, fit_few_label
from course_utils.data import ImageDataset


def _labelled(n: int) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % 10
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for c in range(10):  # class c lights up column block c: learnable in a few epochs
        images[targets == c, :, :, 2 * c : 2 * c + 3] = 250
    return ImageDataset(images, targets, [str(c) for c in range(10)], "test pattern")


def test_the_source_model_has_its_2048_32_10_head():
    model = fashion_classifier()
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 32), (32, 10)]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_the_recipe_follows_the_profile(monkeypatch):
    assert few_label_recipe() == {"labels": 1000, "epochs": 100, "batch": 64, "lr": 1e-3}
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert few_label_recipe()["epochs"] == 10


def test_fit_few_label_trains_with_the_recipe(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # recipe: 10 epochs at batch 64
    features, targets = torch.randn(130, 2048), torch.arange(130) % 10
    history = fit_few_label(fashion_classifier().head, features, targets, desc="head")
    assert len(history["loss"]) == 10
    assert len(history["step_loss"]) == 10 * (130 // 64), "two full batches per epoch; the last 2 are dropped"


def test_the_baseline_refuses_another_label_count():
    with pytest.raises(ValueError, match="1000 labelled images, got 999"):
        few_label_baseline(fashion_classifier(), _labelled(999))


def test_the_baseline_trains_once_then_loads_the_same_weights(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    few = _labelled(1000)
    seed_everything(0)
    first = fashion_classifier()
    history = few_label_baseline(first, few)
    assert history["train_accuracy"][-1] > 0.9
    assert (isolated / "checkpoints" / "smoke" / "01_supervised_1000.pt").exists()
    second = fashion_classifier()
    few_label_baseline(second, few)  # a cache hit: no training, identical weights
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
