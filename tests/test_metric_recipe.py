"""Notebook 04's recipe: the subset, the checkpoint key, the device, a round trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import write_mnist_layout

from course_utils.augment import ViewAugment
from course_utils.evaluate import extract_features
from course_utils.methods.metric import metric_step
from course_utils.recipes.metric import OBJECTIVES, MetricData, MetricRecipe, mnist_subset
from course_utils.runtime import device


def _tiny(objective: str = "triplets_hard", **changes) -> MetricRecipe:
    settings = dict(objective=objective, dim=4, epochs=2, width=2, stem_stride=2, classes_per_batch=3, per_class=2)
    return MetricRecipe(**{**settings, **changes})


def _tiny_data(per_class: int = 4) -> MetricData:
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(3).repeat_interleave(per_class)
    images = torch.randint(0, 256, (len(targets), 1, 28, 28), generator=g, dtype=torch.uint8)
    return MetricData(images, targets, images[:6], targets[:6], ["a", "b", "c"], "random pixels")


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, float) and value < 1:
        return value / 2  # fractions stay fractions
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return "pairs" if value != "pairs" else "triplets"
    if value is None:
        return ViewAugment(size=28)
    return dataclasses.replace(value, crop_scale=(0.5, 1.0))


def test_every_field_changes_the_checkpoint_name():
    recipe = MetricRecipe.default(objective="triplets", dim=32)
    settings = [field.name for field in dataclasses.fields(recipe) if field.name not in ("model", "step")]
    names = {recipe.checkpoint_name()}
    for name in settings:  # the code (model, step) is tests/test_methods.py's
        names.add(dataclasses.replace(recipe, **{name: _changed(getattr(recipe, name))}).checkpoint_name())
    assert len(names) == len(settings) + 1


def test_default_knows_every_objective_and_refuses_others():
    for objective in OBJECTIVES:
        assert MetricRecipe.default(objective=objective, dim=2).objective == objective
    with pytest.raises(ValueError, match="unknown objective 'arcface'"):
        MetricRecipe.default(objective="arcface")
    with pytest.raises(ValueError, match="per_class >= 2"):
        _tiny("nt_xent", per_class=1)
    with pytest.raises(ValueError, match="margin must be a finite number > 0"):
        _tiny(margin=0.0)


def test_subset_is_balanced_disjoint_and_repeatable(isolated):
    write_mnist_layout(isolated / "data" / "MNIST" / "raw", n_train=60)  # 6 images of every digit
    data = mnist_subset(size=50, val_fraction=0.2, seed=0)
    assert torch.bincount(data.train_targets).tolist() == [4] * 10
    assert torch.bincount(data.val_targets).tolist() == [1] * 10
    train_rows = {tuple(image.flatten().tolist()) for image in data.train_images}
    assert not any(tuple(image.flatten().tolist()) in train_rows for image in data.val_images)
    again = mnist_subset(size=50, val_fraction=0.2, seed=0)
    assert torch.equal(again.train_images, data.train_images)
    assert not torch.equal(mnist_subset(size=50, val_fraction=0.2, seed=1).train_images, data.train_images)
    with pytest.raises(ValueError, match="multiple of 10"):
        mnist_subset(size=55)


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_every_objective_gives_a_finite_loss_and_gradient(objective):
    recipe = _tiny(objective, augment=ViewAugment(size=28))
    data = _tiny_data()
    model = recipe.build()
    index = next(iter(recipe.batches(data)))
    loss = metric_step(model, (data.train_images[index], data.train_targets[index]), recipe)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_embedding_is_normalised_except_for_cross_entropy():
    images = _tiny_data().train_images
    z = extract_features(_tiny("pairs").build(), images)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(len(images)))
    assert not torch.allclose(
        extract_features(_tiny("cross_entropy").build(), images).norm(dim=1), torch.ones(len(images))
    )


def test_tiny_recipe_round_trips_through_its_checkpoint(capsys):
    recipe = _tiny()
    data = _tiny_data()
    model, history = recipe.pretrained(data)
    assert next(model.parameters()).device.type == device().type
    assert recipe.is_cached()
    # the weights kept are those of the epoch with the best validation kNN accuracy
    assert history["best_epoch"][0] == 1 + history["val_knn_accuracy"].index(max(history["val_knn_accuracy"]))
    loaded, loaded_history = recipe.pretrained(data)
    assert "Loaded" in capsys.readouterr().out
    assert next(loaded.parameters()).device.type == device().type
    assert loaded_history == history
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.cpu(), b.cpu()), name


def test_the_weights_of_the_best_validation_epoch_are_kept(monkeypatch):
    scripted = iter([0.9, 0.5, 0.7])  # validation kNN accuracy of epochs 1, 2, 3: the first is best
    monkeypatch.setattr("course_utils.recipes.metric.knn_accuracy", lambda *args, **kwargs: next(scripted))
    snapshots = []

    def snapshot(net):
        snapshots.append({key: value.clone() for key, value in net.state_dict().items()})
        return {}

    model, history = _tiny(epochs=3).pretrained(_tiny_data(), validate=snapshot)
    assert history["best_epoch"] == [1.0] and history["val_knn_accuracy"] == [0.9, 0.5, 0.7]
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[0][key]), key
    assert not all(torch.equal(value, snapshots[2][key]) for key, value in model.state_dict().items())
