"""The full profile rehearsed without a GPU: every recipe it trains, at its real size and
with its real settings, takes one epoch of a few stand-in images on the CPU, in bfloat16
autocast as on a GPU from Ampere on. A shape, dtype or setting error in a recipe that only
the full profile uses shows up here, not after hours on a GPU. (Float16, a T4's precision,
cannot be rehearsed here: the CPU has no float16 LSTM.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pytest
import torch

from course_utils import runtime
from course_utils.data import ImageDataset
from course_utils.methods.metric import metric_step
from course_utils.methods.rows import RowClassifier
from course_utils.methods.supervised import supervised_step
from course_utils.recipes.fashion import FashionSupervised
from course_utils.recipes.metric import OBJECTIVES, MetricRecipe
from course_utils.recipes.rows import CNNRecipe, RowData, RowRecipe
from course_utils.recipes.simclr import Encoder, ScratchRecipe, SimCLRRecipe
from course_utils.recipes.simsiam import SimSiamRecipe

NOTEBOOK_05 = Path(__file__).resolve().parent.parent / "notebooks" / "05_recurrent_cifar10_rows.ipynb"


@pytest.fixture
def full(monkeypatch):
    """The full profile on the CPU, in bfloat16 (emulated where the CPU lacks it)."""
    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setenv("COURSE_PRECISION", "bf16")
    torch.manual_seed(0)


def _images(n: int, channels: int, size: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8)


def _labelled(n: int, channels: int, size: int) -> ImageDataset:
    return ImageDataset(_images(n, channels, size), torch.arange(n) % 10, [str(c) for c in range(10)], "stand-in")


def _one_epoch(recipe, data, validate=None, **counts: int) -> dict[str, list[float]]:
    """One epoch of ``recipe`` on ``data``; ``counts`` set its image or label counts to the
    stand-in's size (a recipe refuses data of another size), every other setting stays."""
    recipe = dataclasses.replace(recipe, epochs=1, **counts)
    model = recipe.build()
    history = recipe.fit(model, data, validate=validate)
    assert all(torch.isfinite(torch.tensor(history["step_loss"]))), history["step_loss"]
    return history


def test_the_full_profile_is_the_source_scale(full):
    # what the rehearsal below runs is what the full profile trains
    assert SimCLRRecipe.default("stl10").encoder == Encoder(
        dataset="stl10", image_size=96, width=64, imagenet_stem=True, stem_stride=1
    )
    assert (SimCLRRecipe.default("stl10").epochs, SimSiamRecipe.default().epochs) == (500, 100)
    assert (MetricRecipe.default(objective="pairs").width, RowRecipe.default().epochs) == (64, 100)


def test_simclr_pretrains_a_full_resnet18_on_stl10_shaped_images(full):
    recipe = SimCLRRecipe.default("stl10")
    assert recipe.split == "unlabeled"
    data = recipe.pretraining_images(_labelled(4, 3, 96))  # the whole (stand-in) split: images=None
    assert data.shape == (4, 3, 96, 96)
    _one_epoch(recipe, data)


def test_the_from_scratch_baseline_trains_at_96_pixels(full):
    recipe = ScratchRecipe.default("stl10", 400)
    _one_epoch(recipe, (_labelled(10, 3, 96), _labelled(2, 3, 96)), labels_per_class=1)


def test_fashion_mnist_baselines_and_simsiam_at_the_source_settings(full):
    for recipe in (FashionSupervised.all_labels(), FashionSupervised.sweep()[10][0]):
        _one_epoch(recipe, (_labelled(10, 1, 28), _labelled(4, 1, 28)), labels=10)
    # a stand-in for the default monitor, which would read FashionMNIST's validation images
    _one_epoch(SimSiamRecipe.default(), _images(8, 1, 28), validate=lambda model: {}, images=8)


def test_each_kind_of_metric_step_at_full_width(full):
    # metric_step has three paths: two views (self_supervised), a classifier (cross_entropy)
    # and the label losses on the embedding (triplets_hard, in 2-D as the notebook also draws
    # them). One step each with backward (a whole epoch adds only the kNN monitor, which the
    # laptop profile's tests run).
    images, targets = _images(20, 1, 28), torch.arange(20) % 10
    for objective, dim in (("self_supervised", 32), ("cross_entropy", 32), ("triplets_hard", 2)):
        assert objective in OBJECTIVES
        recipe = MetricRecipe.default(objective=objective, dim=dim)
        loss = metric_step(recipe.build(), (images, targets), recipe)
        loss.backward()
        assert loss.dtype == torch.float32 and torch.isfinite(loss)


def _row_data() -> RowData:
    return RowData(_images(8, 3, 32), torch.arange(8) % 10, _images(4, 3, 32), torch.arange(4) % 10, "stand-in")


def test_the_recurrent_recipes_and_the_cnn_at_the_source_settings(full):
    for recipe in (*(RowRecipe.default(cell) for cell in ("rnn", "lstm", "gru")), CNNRecipe.default()):
        _one_epoch(recipe, _row_data())


def _notebook_cell(cell_id: str) -> str:
    cells = json.loads(NOTEBOOK_05.read_text())["cells"]
    return "".join(next(cell["source"] for cell in cells if cell.get("id") == cell_id))


def test_notebook_05s_search_runs_one_trial_of_its_largest_network(full, capsys):
    # The notebook's own cells: its search space in the full profile and its objective.
    space = {"pick": runtime.pick, "data": _row_data(), "RowRecipe": RowRecipe, "optuna": optuna, "DEVICE": "cpu"}
    space |= {"RowClassifier": RowClassifier, "supervised_step": supervised_step}  # the notebook's exported cells
    space["seed_everything"] = runtime.seed_everything
    exec(_notebook_cell("ccccf8d5"), space)  # SEARCH
    exec(_notebook_cell("e2bf3a83"), space)  # objective(trial)
    search = space["SEARCH"]
    assert (max(search["hidden_size"]), max(search["num_layers"]), search["epochs"]) == (512, 5, 10)
    search["epochs"] = 1
    study = optuna.create_study(direction="minimize")
    largest = {"hidden_size": 512, "num_layers": 5, "l2": 64, "l3": 64, "batch_size": 32}
    study.enqueue_trial({**largest, "learning_rate": 1e-3, "weight_decay": 5e-4})
    study.optimize(space["objective"], n_trials=1)
    assert study.trials[0].state.name == "COMPLETE" and study.trials[0].params["hidden_size"] == 512
