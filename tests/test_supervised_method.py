"""Notebook 01's exported method (course_utils.methods.supervised): the step's arithmetic, and the
recipe training with the code it is handed (other code, another checkpoint)."""

from __future__ import annotations

import dataclasses
import linecache
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_methods import load_module

from course_tools import export
from course_utils.data import ImageDataset
from course_utils.methods import supervised
from course_utils.recipes import code_fingerprint
from course_utils.recipes.fashion import FashionSupervised

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(supervised.__file__).read_text()
TINY = FashionSupervised(labels=64, epochs=1, batch_size=32)


def _random_fashion(n: int, seed: int) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
    return ImageDataset(images, torch.arange(n) % 10, [str(c) for c in range(10)], f"random {seed}")


def test_the_step_augments_the_images_when_the_recipe_says_so_and_returns_the_cross_entropy():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
        model[1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    images, targets = torch.full((2, 1, 2, 2), 255, dtype=torch.uint8), torch.tensor([2, 0])
    # without augment: pixels 1.0, logits (4, 5, 6) per image; with an augment that blanks them: (0, 1, 2)
    for recipe, logits in [
        (None, [4.0, 5.0, 6.0]),
        (SimpleNamespace(augment=lambda x: torch.zeros(x.shape)), [0, 1, 2]),
    ]:
        loss, logged = supervised.supervised_step(model, (images, targets), recipe)
        log_sum = math.log(sum(math.exp(v) for v in logits))
        assert loss.item() == pytest.approx(((log_sum - logits[2]) + (log_sum - logits[0])) / 2, rel=1e-6)
        assert logged == {"train_accuracy": 0.5}  # the largest logit is class 2: right for the first image only


def test_the_notebook_cells_run_as_cells_have_the_package_fingerprint():
    namespace = {"__name__": "__main__", "images": 3, "recipe": "x", "x": 0.5}
    for i, cell in enumerate(export.exported_cells(ROOT / "notebooks" / "01_supervised_baseline.ipynb")["supervised"]):
        filename = f"<cell-{i}>"
        linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
        exec(compile(cell, filename, "exec"), namespace)
    recipe = dataclasses.replace(TINY, model=namespace["fashion_classifier"], step=namespace["supervised_step"])
    assert recipe.checkpoint_name() == TINY.checkpoint_name() and "code" not in recipe.settings()


@pytest.mark.parametrize(
    "old, new",
    [
        ("F.cross_entropy(logits, targets)", "F.cross_entropy(logits, targets, label_smoothing=0.1)"),  # the step
        ("nn.ReLU(inplace=True), nn.Linear(32, 10)", "nn.Tanh(), nn.Linear(32, 10)"),  # the head
        ("nn.ReLU(), nn.BatchNorm2d(c_out)", "nn.GELU(), nn.BatchNorm2d(c_out)"),  # the backbone it builds
    ],
    ids=["step", "head", "backbone"],
)
def test_a_changed_line_trains_differently_under_another_checkpoint_name(tmp_path, monkeypatch, old, new):
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    assert SOURCE.count(old) == 1
    changed = load_module(tmp_path / f"supervised_{abs(hash(old))}.py", SOURCE.replace(old, new))
    edited = dataclasses.replace(TINY, model=changed.fashion_classifier, step=changed.supervised_step)
    assert edited.checkpoint_name() != TINY.checkpoint_name()
    assert edited.settings()["code"] == code_fingerprint(changed.fashion_classifier, changed.supervised_step)
    data = (_random_fashion(64, 0), _random_fashion(20, 1))
    weights = []
    for recipe in (TINY, edited):
        model, _ = recipe.pretrained(data=data)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.equal(*weights)
    assert len(list((tmp_path / "checkpoints").rglob("*.pt"))) == 2
