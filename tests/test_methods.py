"""The method code the notebooks teach: exported cells agree with course_utils.methods, and the
code a recipe trains with is the code handed to it (other code, another checkpoint)."""

from __future__ import annotations

import dataclasses
import importlib.util
import linecache
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from course_tools import export
from course_utils.methods import metric, simsiam
from course_utils.recipes import code_fingerprint
from course_utils.recipes.metric import MetricData, MetricRecipe
from course_utils.recipes.simsiam import SimSiamRecipe

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(simsiam.__file__).read_text()


def load_module(path: Path, text: str):
    """``text`` imported as a module from a file (inspect needs a file to read sources from)."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def test_every_exported_module_agrees_with_its_notebook():
    assert export.stale() == [], "run python -m course_tools.export"


def test_a_changed_cell_makes_its_module_stale(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(ROOT / "course_utils" / "methods", tmp_path / "course_utils" / "methods")
    assert export.stale(tmp_path) == []
    path = tmp_path / "notebooks" / "02_simsiam_fashion_mnist.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if c.source.startswith("#| export simsiam\ndef simsiam_step"))
    cell.source = cell.source.replace("recipe.stop_gradient)", "False)")
    nbformat.write(notebook, path)
    assert export.stale(tmp_path) == ["course_utils/methods/simsiam.py"]
    (tmp_path / "course_utils" / "methods" / "orphan.py").write_text("")
    assert "course_utils/methods/orphan.py" in export.stale(tmp_path)


def test_the_exported_module_drops_the_marks_and_keeps_the_solution():
    assert "\n#| export" not in SOURCE and "BEGIN SOLUTION" not in SOURCE
    assert "z1, z2 = z1.detach(), z2.detach()" in SOURCE


def test_the_same_code_elsewhere_has_the_same_fingerprint_and_comments_do_not_count(tmp_path):
    copy = load_module(tmp_path / "copy_same.py", SOURCE.replace("# two random views", "# reworded"))
    assert code_fingerprint(copy.SimSiam, copy.simsiam_step) == code_fingerprint(simsiam.SimSiam, simsiam.simsiam_step)
    recipe = dataclasses.replace(SimSiamRecipe(images=64, epochs=1), model=copy.SimSiam, step=copy.simsiam_step)
    assert recipe.checkpoint_name() == SimSiamRecipe(images=64, epochs=1).checkpoint_name()
    assert "code" not in recipe.settings()


@pytest.mark.parametrize(
    "old, new",
    [
        ("0.5 * d_12 + 0.5 * d_21", "0.5 * d_12 + 0.4 * d_21"),  # in the loss the step calls
        ("nn.ReLU(inplace=True),\n            nn.Linear(pred_dim", "nn.GELU(),\n            nn.Linear(pred_dim"),
        ("recipe.augment(images), recipe.augment(images)", "recipe.augment(images), images.float() / 255"),
    ],
    ids=["loss", "model", "step"],
)
def test_a_changed_line_gets_another_checkpoint_name(tmp_path, old, new):
    assert old in SOURCE
    changed = load_module(tmp_path / f"copy_{abs(hash(old))}.py", SOURCE.replace(old, new))
    base = SimSiamRecipe(images=64, epochs=1)
    recipe = dataclasses.replace(base, model=changed.SimSiam, step=changed.simsiam_step)
    assert recipe.checkpoint_name() != base.checkpoint_name()
    assert recipe.settings()["code"] == code_fingerprint(changed.SimSiam, changed.simsiam_step)


def test_the_recipe_trains_with_the_step_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    no_stop = load_module(tmp_path / "copy_no_stop.py", SOURCE.replace("recipe.stop_gradient)", "False)"))
    base = SimSiamRecipe(images=64, epochs=1, batch_size=32)
    weights = {}
    for name, recipe in [("package", base), ("edited", dataclasses.replace(base, step=no_stop.simsiam_step)),
                         ("ablation", dataclasses.replace(base, stop_gradient=False))]:  # fmt: skip
        model, _ = recipe.pretrained(data=images, validate=lambda model: {})
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.equal(weights["package"], weights["edited"])  # the edited step trained
    assert torch.equal(weights["edited"], weights["ablation"])  # and it is the ablation, written another way
    assert len(list((tmp_path / "checkpoints").rglob("*.pt"))) == 3


def test_code_without_a_source_is_refused_with_a_clear_error():
    namespace: dict = {}
    exec("def step(model, images, recipe):\n    return images.sum()", namespace)
    with pytest.raises(TypeError, match="cannot read the source of step"):
        SimSiamRecipe(images=64, epochs=1, step=namespace["step"])
    with pytest.raises(TypeError, match="must be a function or a class"):
        SimSiamRecipe(images=64, epochs=1, step=print)


def test_the_notebook_cells_run_as_cells_have_the_package_fingerprint():
    # As Jupyter runs them: each cell compiled under its own file name, kept in linecache, in one
    # namespace that also holds the notebook's other globals, some named like the step's arguments.
    namespace = {"__name__": "__main__", "stop_gradient": False, "images": 3, "recipe": "x", "z1": 0.5}
    for i, cell in enumerate(export.exported_cells(ROOT / "notebooks" / "02_simsiam_fashion_mnist.ipynb")["simsiam"]):
        filename = f"<cell-{i}>"
        linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
        exec(compile(cell, filename, "exec"), namespace)
    recipe = SimSiamRecipe(images=64, epochs=1, model=namespace["SimSiam"], step=namespace["simsiam_step"])
    assert recipe.checkpoint_name() == SimSiamRecipe(images=64, epochs=1).checkpoint_name()


def test_the_collapse_monitor_is_zero_on_collapse_and_about_one_over_sqrt_d_when_spread():
    assert simsiam.collapse_monitor(torch.ones(100, 32) * 3) == pytest.approx(0.0, abs=1e-6)
    spread = torch.randn(8192, 64, generator=torch.Generator().manual_seed(0))
    assert simsiam.collapse_monitor(spread) == pytest.approx(1 / 8, rel=0.05)


def test_simsiam_returns_two_predictions_and_two_projections():
    from course_utils.methods.supervised import ConvBackbone

    p1, p2, z1, z2 = simsiam.SimSiam(ConvBackbone(), proj_dim=64, pred_dim=16)(
        torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    )
    assert p1.shape == p2.shape == z1.shape == z2.shape == (4, 64)


@pytest.mark.parametrize(
    "constant, changed",
    [
        ("SCALE = 0.5", "SCALE = 0.25"),
        ("MEAN = (0.5, 0.5)", "MEAN = (0.5, 0.4)"),
        ("PARTS = {'a': torch.nn.ReLU}", "PARTS = {'a': torch.nn.GELU}"),
    ],  # fmt: skip
    ids=["number", "tuple", "dict of classes"],
)
def test_a_changed_constant_that_the_step_reads_gets_another_checkpoint_name(tmp_path, constant, changed):
    name = constant.split(" = ")[0]
    step = f"\n\ndef simsiam_step(model, images, recipe):\n    return images.float().mean() * len({name})\n"
    names = []
    for i, line in enumerate([constant, changed, constant]):
        module = load_module(tmp_path / f"copy_constant_{abs(hash(constant))}_{i}.py", SOURCE + f"\n{line}\n" + step)
        names.append(SimSiamRecipe(images=64, epochs=1, step=module.simsiam_step).checkpoint_name())
    assert names[0] != names[1] and names[0] == names[2]


# Notebook 04: the masks, losses, model and step the metric recipes train with.
METRIC_SOURCE = Path(metric.__file__).read_text()


def _tiny_metric(objective: str = "triplets_hard", **changes) -> MetricRecipe:
    return MetricRecipe(objective=objective, dim=4, epochs=1, width=2, stem_stride=2, classes_per_batch=3,
                        per_class=2, **changes)  # fmt: skip


def _tiny_metric_data() -> MetricData:
    targets = torch.arange(3).repeat_interleave(4)
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return MetricData(images, targets, images[:6], targets[:6], ["a", "b", "c"], "random pixels")


def test_the_notebook_04_cells_run_as_cells_have_the_package_fingerprint():
    namespace = {"__name__": "__main__", "labels": 3, "z": 0.5, "recipe": "x", "margin": 2.0}
    for i, cell in enumerate(export.exported_cells(ROOT / "notebooks" / "04_metric_learning_mnist.ipynb")["metric"]):
        filename = f"<cell-04-{i}>"
        linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
        exec(compile(cell, filename, "exec"), namespace)
    for objective in ("pairs", "triplets_hard", "self_supervised"):
        recipe = MetricRecipe.default(objective=objective, model=namespace["MetricNet"], step=namespace["metric_step"])
        assert recipe.checkpoint_name() == MetricRecipe.default(objective=objective).checkpoint_name()


@pytest.mark.parametrize(
    "old, new, objective",
    [
        ("return same & upper, ~same & upper", "return same & upper, ~same", "pairs"),  # an exercise the loss calls
        ("hardest_positive, hardest_negative\n", "hardest_positive, 0.5 * hardest_negative\n", "triplets_hard"),
        ("(zn @ zn.T / temperature)", "(zn @ zn.T * temperature)", "nt_xent"),
        ("nn.Linear(self.backbone.out_dim, dim)", "nn.Linear(self.backbone.out_dim, dim, bias=False)", "pairs"),
        ("return nt_xent(*z.chunk(2), recipe.temperature)", "return nt_xent(*z.chunk(2), 2 * recipe.temperature)",
         "self_supervised"),
    ],
    ids=["exercise-masks", "exercise-mining", "loss", "model", "step"],
)  # fmt: skip
def test_a_changed_metric_cell_trains_under_another_name_and_trains_otherwise(tmp_path, monkeypatch, old, new,
                                                                             objective):  # fmt: skip
    assert old in METRIC_SOURCE
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    changed = load_module(tmp_path / f"metric_copy_{abs(hash(old))}.py", METRIC_SOURCE.replace(old, new))
    base = _tiny_metric(objective)
    recipe = dataclasses.replace(base, model=changed.MetricNet, step=changed.metric_step)
    assert recipe.checkpoint_name() != base.checkpoint_name()
    assert recipe.settings()["code"] == code_fingerprint(changed.MetricNet, changed.metric_step)
    weights = {}
    for name, trained in [("package", base), ("changed", recipe)]:
        model, _ = trained.pretrained(_tiny_metric_data())
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.equal(weights["package"], weights["changed"])
    assert len(list((tmp_path / "checkpoints").rglob("*.pt"))) == 2


def test_metric_data_refuses_labels_that_do_not_pair_up_with_the_images():
    data = _tiny_metric_data()
    with pytest.raises(ValueError, match="train_targets must be 12 integer labels"):
        MetricData(data.train_images, data.train_targets[:11], data.val_images, data.val_targets, [], "")
