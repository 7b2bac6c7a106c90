"""The methods notebooks 01 and 03 export (course_utils.methods.supervised and .simclr): the
step's arithmetic, NT-Xent against its equation and against the loss before it was built on the
exercise's logits, the ranks SimCLR logs, and each recipe training with the code it is handed
(the notebook's cells as they run: the package's checkpoint; a changed line: another one)."""

from __future__ import annotations

import dataclasses
import linecache
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_methods import load_module

from course_tools import export
from course_utils.data import ImageDataset
from course_utils.methods import simclr, supervised
from course_utils.methods.simclr import nt_xent
from course_utils.models import Classifier
from course_utils.recipes import code_fingerprint
from course_utils.recipes.fashion import FashionSupervised
from course_utils.recipes.simclr import ScratchRecipe, SimCLRRecipe

ROOT = Path(__file__).resolve().parent.parent


def _random_images(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _labelled(n: int, seed: int) -> ImageDataset:
    return ImageDataset(
        _random_images(n, (1, 28, 28), seed), torch.arange(n) % 10, [str(c) for c in range(10)], "random"
    )


with pytest.MonkeyPatch.context() as patch:  # the smoke profile's small ResNet-18
    patch.setenv("COURSE_PROFILE", "smoke")
    TINY_SIMCLR = dataclasses.replace(SimCLRRecipe.default("cifar10"), images=64, epochs=1, batch_size=32)
# notebook -> (its file, module, the names of its model and step, a one-epoch recipe, data to train it on)
METHODS = {
    "01": ("01_supervised_baseline.ipynb", supervised, ("fashion_classifier", "supervised_step"),
           FashionSupervised(labels=64, epochs=1, batch_size=32), (_labelled(64, 0), _labelled(20, 1))),
    "03": ("03_simclr_stl10.ipynb", simclr, ("SimCLR", "simclr_step"), TINY_SIMCLR,
           _random_images(64, (3, 32, 32), 0)),
}  # fmt: skip


def _with_code(notebook: str, names: dict):
    """The notebook's one-epoch recipe with the model and step that ``names`` holds."""
    _, _, (model, step), recipe, _ = METHODS[notebook]
    return dataclasses.replace(recipe, model=names[model], step=names[step])


@pytest.mark.parametrize("notebook", METHODS)
def test_the_notebook_cells_run_as_cells_have_the_package_fingerprint(notebook):
    # As Jupyter runs them: each cell compiled under its own file name, kept in linecache, in one
    # namespace that also holds the notebook's other globals, some named like the functions' arguments.
    file, module, _, recipe, _ = METHODS[notebook]
    namespace = {"__name__": "__main__", "temperature": 3.0, "images": 3, "recipe": "x", "z1": 0.5}
    for i, cell in enumerate(export.exported_cells(ROOT / "notebooks" / file)[module.__name__.split(".")[-1]]):
        filename = f"<cell-{i}>"
        linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
        exec(compile(cell, filename, "exec"), namespace)
    from_cells = _with_code(notebook, namespace)
    assert from_cells.checkpoint_name() == recipe.checkpoint_name() and "code" not in from_cells.settings()


@pytest.mark.parametrize(
    "notebook, old, new",
    [
        ("01", "F.cross_entropy(logits, targets)", "F.cross_entropy(logits, targets, label_smoothing=0.1)"),
        ("01", "nn.ReLU(inplace=True), nn.Linear(32, 10)", "nn.Tanh(), nn.Linear(32, 10)"),  # the head
        ("01", "nn.ReLU(), nn.BatchNorm2d(c_out)", "nn.GELU(), nn.BatchNorm2d(c_out)"),  # the backbone it builds
        ("03", "logits = z @ z.T / temperature", "logits = 2 * z @ z.T / temperature"),  # the exercise's logits
        ("03", "nt_xent(z1, z2, recipe.temperature)", "nt_xent(z1, z2, 2 * recipe.temperature)"),
        ("03", "nn.ReLU(inplace=True), nn.Linear(4 * out_dim", "nn.GELU(), nn.Linear(4 * out_dim"),  # the head
    ],
    ids=["01-step", "01-head", "01-backbone", "03-exercise", "03-step", "03-head"],
)
def test_a_changed_line_trains_differently_under_another_checkpoint_name(tmp_path, monkeypatch, notebook, old, new):
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    _, module, _, recipe, data = METHODS[notebook]
    source = Path(module.__file__).read_text()
    assert source.count(old) == 1
    changed = load_module(tmp_path / f"changed_{notebook}_{abs(hash(old))}.py", source.replace(old, new))
    edited = _with_code(notebook, vars(changed))
    assert edited.checkpoint_name() != recipe.checkpoint_name()
    assert edited.settings()["code"] == code_fingerprint(edited.model, edited.step)
    weights = []
    for run in (recipe, edited):
        model, _ = run.pretrained(data=data)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.equal(*weights)
    assert len(list((tmp_path / "checkpoints").rglob("*.pt"))) == 2


def test_the_step_augments_the_images_when_the_recipe_says_so_and_returns_the_cross_entropy():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0] * 4, [0.0] * 4, [0.0] * 4]))  # class 0 scores the pixels' sum
        model[1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    images, targets = torch.full((2, 1, 2, 2), 255, dtype=torch.uint8), torch.tensor([2, 0])
    # without augment: pixels 1.0, logits (4, 1, 2), class 0 wins; an augment that blanks them: (0, 1, 2), class 2 wins
    for recipe, logits in [
        (None, [4.0, 1.0, 2.0]),
        (SimpleNamespace(augment=lambda x: torch.zeros(x.shape)), [0.0, 1.0, 2.0]),
    ]:
        loss, logged = supervised.supervised_step(model, (images, targets), recipe)
        log_sum = math.log(sum(math.exp(v) for v in logits))
        assert loss.item() == pytest.approx(((log_sum - logits[2]) + (log_sum - logits[0])) / 2, rel=1e-6)
        assert logged == {"train_accuracy": 0.5}  # one of the two images is of the winning class


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


def test_nt_xent_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="the same N >= 2 images"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nt_xent(torch.randn(4, 3, 2), torch.randn(4, 3, 2))


def test_nt_xent_needs_two_images_for_a_negative_and_two_views_of_one_shape():
    # one image has no negatives: the loss is log(1) = 0 whatever the embeddings
    for z1, z2 in [(torch.randn(1, 4), torch.randn(1, 4)), (torch.zeros(0, 4), torch.zeros(0, 4))]:
        with pytest.raises(ValueError, match="N >= 2 images"):
            nt_xent(z1, z2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_nt_xent_from_the_exercise_gives_the_floats_of_the_one_expression_it_replaced(dtype):
    # The package's nt_xent before issue 35, written out: training must not change by a bit.
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(32, 16, generator=g).to(dtype), torch.randn(32, 16, generator=g).to(dtype)
    z = F.normalize(torch.cat([z1, z2]).to(torch.promote_types(dtype, torch.float32)), dim=1)
    logits = z @ z.T / 0.2
    logits.fill_diagonal_(float("-inf"))
    before = F.cross_entropy(logits, torch.cat([torch.arange(32, 64), torch.arange(32)]))
    assert torch.equal(nt_xent(z1, z2, 0.2), before)


def test_pretext_metrics_hand_worked_case():
    # Image 0's views agree; image 1's second view points at image 0's instead.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.1]])
    # view 0 (1,0): positive view 2 (1,0) ranks 1st.
    # view 1 (0,1): positive view 3 (1,.1) cos .0995; view 0 and 2 cos 0 -> 1st.
    # view 2 (1,0): positive view 0 ranks 1st (tie-free: view 3 has cos .995 < 1).
    # view 3 (1,.1): positive view 1 cos .0995; views 0 and 2 cos .995 -> 3rd.
    ranks = simclr.pretext_metrics(z1, z2)
    assert ranks["top1"] == pytest.approx(3 / 4)
    assert ranks["top5"] == pytest.approx(1.0)
    assert ranks["mean_position"] == pytest.approx((1 + 1 + 1 + 3) / 4)


class Pair(torch.nn.Module):
    """A SimCLR-shaped stand-in: one linear map of each view, and a record of what it was given."""

    def __init__(self):
        super().__init__()
        self.linear, self.seen = torch.nn.Linear(16, 4), []

    def forward(self, x1, x2):
        self.seen.append((x1, x2))
        return self.linear(x1.flatten(1)), self.linear(x2.flatten(1))


def test_simclr_step_feeds_two_views_and_returns_nt_xent_and_the_ranks_of_its_outputs(monkeypatch):
    monkeypatch.setenv("COURSE_BF16", "0")  # the computation by hand below is in float32

    def augment(images):  # a random shift of brightness: two calls give two views
        return images.float() / 255 + 0.1 * torch.rand(len(images), 1, 1, 1)

    model, images = Pair(), torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8)
    loss, logged = simclr.simclr_step(model, images, SimpleNamespace(augment=augment, temperature=0.3))
    ((x1, x2),) = model.seen
    assert not torch.equal(x1, x2), "the two views must differ"
    z1, z2 = model.linear(x1.flatten(1)), model.linear(x2.flatten(1))
    assert loss.item() == pytest.approx(nt_xent_by_hand(z1.detach(), z2.detach(), 0.3), rel=1e-5)
    assert logged == simclr.pretext_metrics(z1, z2)


def test_the_recipes_default_to_the_exported_code_and_the_baseline_to_notebook_01s_step():
    assert FashionSupervised.default_step is supervised.supervised_step
    assert FashionSupervised.default_model is supervised.fashion_classifier
    assert ScratchRecipe.default_step is supervised.supervised_step and ScratchRecipe.default_model is Classifier
    assert SimCLRRecipe.default_step is simclr.simclr_step and SimCLRRecipe.default_model is simclr.SimCLR
