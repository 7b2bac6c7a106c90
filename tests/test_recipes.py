"""Recipes: the cache keys on every field, models land on the device, settings round-trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch

import course_utils.recipes as recipes
from course_utils.augment import ViewAugment
from course_utils.checkpoints import load_checkpoint, save_checkpoint
from course_utils.data import ImageDataset
from course_utils.recipes import Recipe
from course_utils.recipes.fashion import FashionSupervised
from course_utils.recipes.metric import MetricRecipe
from course_utils.recipes.rows import CNNRecipe, RowRecipe
from course_utils.recipes.simclr import Encoder, ScratchRecipe, SimCLRRecipe, labelled_split
from course_utils.recipes.simsiam import SimSiamRecipe
from course_utils.runtime import describe_precision


class Recorder(torch.nn.Linear):
    """A model that remembers where it was asked to go."""

    def to(self, *args, **kwargs):
        self.moved_to = args[0] if args else kwargs.get("device")
        return self


@dataclass(frozen=True, kw_only=True)
class ToyRecipe(Recipe):
    name = "toy"
    notebook = "tests"
    width: int = 3
    lr: float = 0.1
    views: ViewAugment = ViewAugment(size=4)

    def build(self) -> torch.nn.Module:
        return Recorder(self.width, 2)

    def load_data(self) -> torch.Tensor:
        return torch.ones(5, self.width)

    def fit(self, model, data, validate=None):
        ToyRecipe.trained += 1
        with torch.no_grad():
            model.weight.fill_(data.sum().item() * self.lr)
        return {"loss": [1.0]}

    def cost(self) -> str:
        return "a toy"


ToyRecipe.trained = 0


def _all_recipes() -> list[Recipe]:
    return [ToyRecipe(), FashionSupervised.few_labels(), FashionSupervised.all_labels(), SimSiamRecipe.default(),
            SimCLRRecipe.default("cifar10"), ScratchRecipe.default("cifar10", 10)]  # fmt: skip


def _changed(name, value):
    """Another valid value for the setting ``name``."""
    if name == "blur_kernel":
        return 3 if value == 0 else value + 2
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, tuple):
        return (value[0] / 2, *value[1:])
    if value is None:
        return 1
    if isinstance(value, str):
        return "stl10" if value == "cifar10" else "cifar10"
    raise AssertionError(f"no change defined for {value!r}")


def _variants(recipe):
    """The recipe with each field (nested fields included) changed in turn."""
    for field in dataclasses.fields(recipe):
        value = getattr(recipe, field.name)
        if field.name in ("model", "step"):
            continue  # code, not settings: tests/test_methods.py
        if dataclasses.is_dataclass(value):
            for inner in _variants(value):
                yield field.name, dataclasses.replace(recipe, **{field.name: inner[1]})
        else:
            yield field.name, dataclasses.replace(recipe, **{field.name: _changed(field.name, value)})


@pytest.mark.parametrize("recipe", _all_recipes(), ids=lambda r: type(r).__name__)
def test_every_field_changes_the_checkpoint_name(recipe):
    names = {recipe.checkpoint_name()}
    count = 0
    for field, variant in _variants(recipe):
        assert variant.checkpoint_name() not in names, f"changing {field} must change the checkpoint"
        names.add(variant.checkpoint_name())
        count += 1
    assert count == len(names) - 1 >= 5
    assert dataclasses.replace(recipe).checkpoint_name() == recipe.checkpoint_name(), "equal settings, same key"


def test_pretrained_trains_once_then_loads_and_round_trips_through_the_checkpoint(isolated):
    ToyRecipe.trained = 0
    recipe = ToyRecipe(lr=0.5)
    model, history = recipe.pretrained()
    assert ToyRecipe.trained == 1 and history == {"loss": [1.0]}
    assert torch.all(model.weight == 15 * 0.5)  # data.sum() = 5 x 3 ones, times lr
    again, _ = ToyRecipe(lr=0.5).pretrained()
    assert ToyRecipe.trained == 1, "an identical recipe must hit the cache"
    assert torch.equal(again.weight, model.weight)
    ToyRecipe(lr=0.25).pretrained()
    assert ToyRecipe.trained == 2, "another recipe must miss it"
    assert load_checkpoint(recipe.checkpoint_path())["settings"] == json.loads(json.dumps(recipe.settings()))
    assert recipe.is_cached() and not ToyRecipe(lr=0.75).is_cached()


def test_the_model_lands_on_the_device_whether_trained_or_loaded(isolated, monkeypatch):
    target = torch.device("meta")  # a device no model starts on
    monkeypatch.setattr(recipes, "device", lambda: target)
    trained, _ = ToyRecipe(width=4).pretrained()
    loaded, _ = ToyRecipe(width=4).pretrained()
    assert trained.moved_to == target and loaded.moved_to == target


def test_data_given_is_used_instead_of_loading(isolated):
    model, _ = ToyRecipe(width=2).pretrained(data=torch.full((2, 2), 3.0))
    assert torch.all(model.weight == 12 * 0.1)


def test_a_setting_that_cannot_be_stored_fails_when_the_recipe_is_made():
    with pytest.raises(TypeError, match="width"):
        ToyRecipe(width=torch.tensor(3))


def test_profiles_pick_the_recipes(monkeypatch):
    assert SimSiamRecipe.default().epochs == 25 and FashionSupervised.few_labels().epochs == 100
    assert SimCLRRecipe.default("cifar10").encoder == Encoder(dataset="cifar10", image_size=32, width=16,
                                                              imagenet_stem=False, stem_stride=2)  # fmt: skip
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert SimSiamRecipe.default().epochs == 1 and FashionSupervised.few_labels().epochs == 10


def test_fashion_label_counts_get_their_batches_and_the_sweep_three_seeds(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    sweep = FashionSupervised.sweep()
    assert list(sweep) == [10, 100, 1000]
    assert [[r.seed for r in runs] for runs in sweep.values()] == [[0, 1, 2]] * 3
    ten = sweep[10][1]
    assert (ten.labels, ten.balanced, ten.batch_size, ten.epochs) == (100, True, 32, 100)
    assert (sweep[1000][0].labels, sweep[1000][0].batch_size) == (10_000, 128)
    with pytest.raises(ValueError, match="multiple of 10"):
        FashionSupervised(labels=105, balanced=True, epochs=1, batch_size=8)


def _pattern(n: int, seed: int) -> ImageDataset:
    """Class c lights up column block c over dim noise: a pattern a small network learns fast."""
    targets = torch.arange(n) % 10
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    for c in range(10):
        images[targets == c, :, :, 2 * c : 2 * c + 3] = 250
    return ImageDataset(images, targets, [str(c) for c in range(10)], f"test pattern {seed}")


def test_the_fashion_recipe_learns_a_pattern_and_keeps_its_best_validation_epoch(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # 10 epochs
    recipe = FashionSupervised.few_labels()
    model, history = recipe.pretrained(data=(_pattern(1000, 0), _pattern(200, 1)))
    best = int(history["best_epoch"][0])
    assert len(history["val_accuracy"]) == recipe.epochs
    assert history["val_accuracy"][best - 1] == max(history["val_accuracy"]) > 0.9
    held = _pattern(200, 1)
    with torch.no_grad():
        hits = (model.eval()(held.images.float() / 255).argmax(1) == held.targets).float().mean().item()
    assert hits == pytest.approx(max(history["val_accuracy"]), abs=0.01), "the kept weights score the best epoch"


def test_fashion_labels_come_from_the_pool_first_or_balanced():
    pool = _pattern(300, 2)
    first = FashionSupervised(labels=50, epochs=1, batch_size=8).labelled(pool)
    assert torch.equal(first.images, pool.images[:50])
    balanced = FashionSupervised(labels=50, balanced=True, epochs=1, batch_size=8, seed=3).labelled(pool)
    assert torch.bincount(balanced.targets, minlength=10).tolist() == [5] * 10
    other_seed = FashionSupervised(labels=50, balanced=True, epochs=1, batch_size=8, seed=4).labelled(pool)
    assert not torch.equal(balanced.images, other_seed.images), "another seed draws other images"


def test_simsiam_without_stop_gradient_is_its_own_checkpoint():
    recipe = SimSiamRecipe.default()
    ablation = dataclasses.replace(recipe, stop_gradient=False)
    assert recipe.stop_gradient and ablation.checkpoint_name() != recipe.checkpoint_name()


def test_cifar_pretraining_leaves_the_validation_images_out(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # 20 per class held out
    n = 400
    targets = torch.arange(n) % 10
    # every image unique: its index written into its first two pixels
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = torch.arange(n) % 256, torch.arange(n) // 256
    train = ImageDataset(images, targets, [str(c) for c in range(10)], "indexed")
    recipe = dataclasses.replace(SimCLRRecipe.default("cifar10"), images=None)
    pretraining = recipe.pretraining_images(train)
    pool, validation = labelled_split(train)

    def ids(x: torch.Tensor) -> set[int]:
        return set((x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long()).tolist())

    assert len(validation) == 200 and len(pool) == 200
    assert ids(pretraining) == ids(pool.images) and not ids(pretraining) & ids(validation.images)


def test_the_laptop_profile_loads_checkpoints_that_earlier_runs_wrote_to_checkpoints_cpu(isolated):
    ToyRecipe.trained = 0
    earlier = isolated / "checkpoints" / "cpu" / f"{ToyRecipe(lr=0.5).checkpoint_name()}.pt"
    model = Recorder(3, 2)
    with torch.no_grad():
        model.weight.fill_(7.0)
    save_checkpoint(earlier, model, ToyRecipe(lr=0.5).settings(), {"loss": [2.0]})
    assert ToyRecipe(lr=0.5).checkpoint_path() == earlier and ToyRecipe(lr=0.5).is_cached()
    loaded, history = ToyRecipe(lr=0.5).pretrained()
    assert ToyRecipe.trained == 0 and history == {"loss": [2.0]} and torch.all(loaded.weight == 7.0)
    ToyRecipe(lr=0.5).pretrained(retrain=True)  # trained again: written under the new name
    assert ToyRecipe.trained == 1 and (isolated / "checkpoints" / "laptop" / earlier.name).exists()
    assert ToyRecipe(lr=0.5).checkpoint_path() == isolated / "checkpoints" / "laptop" / earlier.name


def test_the_laptop_profile_trains_exactly_the_recipes_of_the_cpu_profile():
    # Checkpoint names of the cpu profile's recipes, computed with the code before the
    # profiles were renamed: the measured laptop runs and their cached weights stay valid.
    recipes = [
        FashionSupervised.all_labels(), FashionSupervised.few_labels(), SimSiamRecipe.default(),
        SimCLRRecipe.default("cifar10"), ScratchRecipe.default("cifar10", 500),
        MetricRecipe.default(objective="triplets_hard", dim=32), RowRecipe.default("lstm"), CNNRecipe.default(),
    ]  # fmt: skip
    assert [recipe.checkpoint_name() for recipe in recipes] == [
        "fashion_supervised-1415cded368d", "fashion_supervised-f88a50783bf6", "simsiam_fashion-061f01a9e358",
        "simclr-12f4d2bfb949", "simclr_scratch-f3c57360b35c", "04_metric-11213f375f4f",
        "recurrent_rows-ff2593bce633", "rows_cnn-1dfc70757ce4",
    ]  # fmt: skip


def test_notebook_01_and_03_recipes_keep_their_laptop_checkpoint_names(monkeypatch):
    # Computed before notebooks 01 and 03 took over their model and step (issue 35): the stored
    # laptop runs and their cached weights stay valid.
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    assert [r.checkpoint_name() for runs in FashionSupervised.sweep().values() for r in runs] == [
        "fashion_supervised-c8e49c9f8d4b", "fashion_supervised-624a4cef2b13", "fashion_supervised-2b13f09757de",
        "fashion_supervised-9cc0f062ee27", "fashion_supervised-6aa913d36f76", "fashion_supervised-7f9281243ef2",
        "fashion_supervised-57c94da6a6de", "fashion_supervised-99bdba77b09c", "fashion_supervised-a255b75f98f9",
    ]  # fmt: skip
    assert [ScratchRecipe.default("cifar10", k).checkpoint_name() for k in (10, 20, 50, 100, 200)] == [
        "simclr_scratch-f00647027ccc", "simclr_scratch-d4a01b3c82e5", "simclr_scratch-db931b7f885b",
        "simclr_scratch-2794bb9cfe98", "simclr_scratch-7093c398680c",
    ]  # fmt: skip
    assert SimCLRRecipe.default("stl10").checkpoint_name() == "simclr-5d46a88e6d64"
    short = {name: recipe.checkpoint_name() for name, recipe in SimCLRRecipe.default("cifar10").short_runs().items()}
    assert short == {"crop only": "simclr-d577a4ceac4b", "colour only": "simclr-97d1f29475f0",
                     "crop + colour": "simclr-e290e696a646"}  # fmt: skip


def test_plan_says_profile_device_precision_what_trains_and_the_measured_time(isolated, capsys):
    ToyRecipe(lr=0.5).pretrained()
    capsys.readouterr()
    recipes.plan("01_demo", ToyRecipe(lr=0.5), {"more": [ToyRecipe(lr=0.25), ToyRecipe(lr=0.75)]})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"profile laptop, device cpu, precision {describe_precision(torch.device('cpu'))}"
    assert lines[1:] == [
        "to train: 2 of 3 recipes (1 found in the checkpoint cache)",
        "  2 x a toy",
        "expected time: not measured yet in the laptop profile",
    ]
    (isolated / "results").mkdir()
    record = {"profile": "cpu", "metrics": {}, "wall_seconds": 383.2, "hardware": "AMD EPYC, 2 cores"}
    (isolated / "results" / "01_demo.json").write_text(json.dumps(record))
    recipes.plan("01_demo", ToyRecipe(lr=0.5))
    assert capsys.readouterr().out.splitlines()[1:] == [
        "to train: 0 of 1 recipes (1 found in the checkpoint cache)",
        "expected time: about 6 min, as this profile's last recorded run took on AMD EPYC, 2 cores",
    ]


def test_simsiam_logs_its_monitor_when_it_trains_and_loads_nothing_when_cached(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    pool, validation = _pattern(1_000, 0), _pattern(100, 1)  # smoke bank: 1,000
    loads = []

    def fake_load(name, split):
        loads.append((name, split))
        return _pattern(300, 2)

    monkeypatch.setattr("course_utils.recipes.simsiam.load_dataset", fake_load)
    monkeypatch.setattr("course_utils.recipes.simsiam.fashion_split", lambda train: (pool, validation))
    recipe = dataclasses.replace(SimSiamRecipe.default(), images=256, batch_size=128)
    data = pool.images[:256]
    _, history = recipe.pretrained(data)
    assert loads == [("fashion_mnist", "train")]  # the monitor's bank and validation images
    assert len(history["knn_accuracy"]) == len(history["z_rank"]) == recipe.epochs
    recipe.pretrained(data)  # cached: nothing trains, so nothing is loaded
    assert loads == [("fashion_mnist", "train")]
