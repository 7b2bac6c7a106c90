"""Notebook 05's pieces: images as rows, the recurrent and convolutional models, the
gradient per time step, the plateau training and the recipes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_methods import load_module

from course_utils.data import ImageDataset
from course_utils.methods import rows as methods_rows
from course_utils.methods.rows import RowClassifier, SmallCNN, image_to_rows, step_gradient_norms
from course_utils.recipes import rows as rows_module
from course_utils.recipes.rows import CNNRecipe, RowData, RowRecipe
from course_utils.runtime import device
from course_utils.train import evaluate_loss


def _numbered_image() -> torch.Tensor:
    """One 3x2x2 image whose value is 100 * channel + 10 * row + column."""
    c, y, x = torch.meshgrid(torch.arange(3), torch.arange(2), torch.arange(2), indexing="ij")
    return (100 * c + 10 * y + x).unsqueeze(0)


def test_rows_interleave_rgb_pixel_by_pixel_like_the_source():
    rows = image_to_rows(_numbered_image(), "interleaved")
    assert rows.tolist() == [[[0, 100, 200, 1, 101, 201], [10, 110, 210, 11, 111, 211]]]


def test_planar_rows_put_the_red_row_first_then_green_then_blue():
    rows = image_to_rows(_numbered_image(), "planar")
    assert rows.tolist() == [[[0, 1, 100, 101, 200, 201], [10, 11, 110, 111, 210, 211]]]


def test_bad_rows_input_is_a_clear_error():
    with pytest.raises(ValueError, match="layout"):
        image_to_rows(_numbered_image(), "rgb")
    with pytest.raises(ValueError, match="N, C, H, W"):
        image_to_rows(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="cell 'Lstm' or layout 'interleaved' unknown"):
        RowRecipe(cell="Lstm")
    with pytest.raises(ValueError, match="layout 'rgb' unknown"):
        RowRecipe(layout="rgb")
    with pytest.raises(ValueError, match="the gru cell has no forget gate"):
        RowRecipe(cell="gru", forget_bias=1.0)
    with pytest.raises(TypeError, match="uint8"):  # floats in [0, 1] belong there
        RowClassifier("gru", hidden_size=4)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_the_two_layouts_differ_only_by_a_permutation_of_the_input_weights():
    torch.manual_seed(0)
    interleaved = RowClassifier("gru", hidden_size=8, head=(4,), layout="interleaved").eval()
    planar = RowClassifier("gru", hidden_size=8, head=(4,), layout="planar").eval()
    planar.load_state_dict(interleaved.state_dict())
    # planar input j = c * 32 + x holds what interleaved input x * 3 + c holds
    c, x = torch.meshgrid(torch.arange(3), torch.arange(32), indexing="ij")
    source_column = (x * 3 + c).flatten()
    with torch.no_grad():
        planar.recurrent.weight_ih_l0.copy_(interleaved.recurrent.weight_ih_l0[:, source_column])
    images = torch.rand(5, 3, 32, 32)
    torch.testing.assert_close(planar(images), interleaved(images))


def _head_parameters(hidden: int) -> int:
    # Linear(h, 64) + BatchNorm(64) + Linear(64, 64) + BatchNorm(64) + Linear(64, 10)
    return (hidden * 64 + 64) + 2 * 64 + (64 * 64 + 64) + 2 * 64 + (64 * 10 + 10)


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_the_source_model_has_the_textbook_parameter_count(cell, gates):
    model = RowClassifier(cell)
    # each gate: input weights 96 x 256, recurrent weights 256 x 256, two biases of 256
    recurrent = gates * (96 * 256 + 256 * 256 + 2 * 256)
    assert sum(p.numel() for p in model.parameters()) == recurrent + _head_parameters(256)
    assert model(torch.rand(4, 3, 32, 32)).shape == (4, 10)


def test_forget_bias_opens_only_the_lstm_forget_gates():
    torch.manual_seed(0)
    default = RowClassifier("lstm", hidden_size=5)
    torch.manual_seed(0)
    opened = RowClassifier("lstm", hidden_size=5, forget_bias=1.0)
    total = opened.recurrent.bias_ih_l0 + opened.recurrent.bias_hh_l0
    # gates are stacked input, forget, cell, output: the forget gate is entries 5 to 9
    torch.testing.assert_close(total[5:10], torch.ones(5))
    for gate in (slice(0, 5), slice(10, 20)):
        torch.testing.assert_close(opened.recurrent.bias_ih_l0[gate], default.recurrent.bias_ih_l0[gate])


def test_small_cnn_parameter_count():
    model = SmallCNN(width=32)
    convolutions = 9 * (3 * 32 + 32 * 64 + 64 * 128) + 2 * (32 + 64 + 128)  # 3x3 kernels without bias, BatchNorm
    assert sum(p.numel() for p in model.parameters()) == convolutions + 128 * 10 + 10
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def _one_unit_rnn(a: float) -> RowClassifier:
    """A plain RNN with one hidden unit: h_t = tanh(x_t . 1 + a h_{t-1}), no biases."""
    model = RowClassifier("rnn", hidden_size=1, head=(), dropout=0.0)
    with torch.no_grad():
        model.recurrent.weight_ih_l0.fill_(1.0)
        model.recurrent.weight_hh_l0.fill_(a)
        model.recurrent.bias_ih_l0.zero_()
        model.recurrent.bias_hh_l0.zero_()
    return model


def test_gradient_per_step_shrinks_by_the_recurrent_weight_at_each_step_back():
    # With zero inputs h stays 0 and tanh'(0) = 1, so dh_T/dx_t = a^(T-t) * (1, ..., 1):
    # the gradient norm at step t is |a|^(T-t) times the one at the last step.
    a, steps = 0.5, 6
    norms = step_gradient_norms(_one_unit_rnn(a), torch.zeros(3, steps, 96), torch.tensor([0, 1, 2]))
    expected = torch.tensor([a ** (steps - 1 - t) for t in range(steps)], dtype=torch.float32)
    torch.testing.assert_close(norms / norms[-1], expected)


def test_gradient_per_step_is_each_images_own_gradient():
    torch.manual_seed(0)
    model = RowClassifier("lstm", hidden_size=6, head=(5,))
    rows, targets = torch.randn(4, 7, 96), torch.tensor([1, 0, 3, 9])
    model.train()
    norms = step_gradient_norms(model, rows, targets)
    assert model.training  # mode restored
    model.eval()
    per_image = []
    for i in range(4):  # one image at a time, by autograd on its own loss
        x = rows[i : i + 1].clone().requires_grad_(True)
        F.cross_entropy(model.forward_rows(x), targets[i : i + 1]).backward()
        per_image.append(x.grad[0].norm(dim=1))
    torch.testing.assert_close(norms, torch.stack(per_image).mean(0))


def test_the_split_holds_out_the_first_images_of_the_seeded_shuffle_and_trains_on_the_next(monkeypatch):
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 32, 32).contiguous()
    dataset = ImageDataset(images, torch.arange(100) % 10, [str(c) for c in range(10)], "numbered")
    monkeypatch.setattr(rows_module, "load_dataset", lambda name, split: dataset)
    data = RowRecipe(val_size=20, train_size=50, seed=1).load_data()
    order = torch.randperm(100, generator=torch.Generator().manual_seed(1))  # the draw, written out
    assert data.val_images[:, 0, 0, 0].tolist() == order[:20].tolist()
    assert data.train_images[:, 0, 0, 0].tolist() == order[20:70].tolist(), "in the order drawn"
    assert torch.equal(data.train_targets, order[20:70] % 10), "images keep their labels"
    assert len(RowRecipe(val_size=20).load_data().train_images) == 80
    with pytest.raises(ValueError, match="asked for 101 items, but the data has only 100"):
        RowRecipe(val_size=20, train_size=81).load_data()


def test_evaluate_loss_is_the_mean_cross_entropy_and_accuracy(monkeypatch):
    monkeypatch.setenv("COURSE_BF16", "0")  # float32 throughout, so the numbers agree exactly
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    targets = torch.randint(0, 10, (10,))
    logits = model(images.float() / 255)
    metrics = evaluate_loss(model, images, targets, batch_size=3)
    assert metrics["val_loss"] == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert metrics["val_accuracy"] == (logits.argmax(1) == targets).sum().item() / 10


def _tiny_data(n: int = 48, seed: int = 0) -> RowData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    targets = torch.randint(0, 10, (n,), generator=g)
    return RowData(images[16:], targets[16:], images[:16], targets[:16], source="random")


def test_plateau_training_divides_the_rate_and_keeps_the_best_validation_epoch():
    torch.manual_seed(0)
    model = RowClassifier("gru", hidden_size=8, head=(8,))
    recipe = RowRecipe(cell="gru", hidden_size=8, head=(8,), epochs=8, batch_size=8, lr=0.05, weight_decay=0.0,
                       patience=0)  # fmt: skip
    states = []
    history = recipe.fit(
        model,
        _tiny_data(),
        on_epoch=lambda epoch, metrics: states.append({k: v.clone() for k, v in model.state_dict().items()}),
    )
    # ReduceLROnPlateau, patience 0: the next epoch's rate is a tenth whenever the
    # validation loss is not below (1 - 1e-4) times the best so far.
    lr, best = 0.05, float("inf")
    for epoch, loss in enumerate(history["val_loss"]):
        assert history["lr"][epoch] == pytest.approx(lr)
        if loss < best * (1 - 1e-4):
            best = loss
        else:
            lr *= 0.1
    assert min(history["lr"]) < 0.05  # the rule fired at least once on this noisy task
    accuracies = history["val_accuracy"]
    best_epoch = accuracies.index(max(accuracies))  # the first of equally good epochs
    assert history["best_epoch"] == [best_epoch + 1]
    for key, value in model.state_dict().items():
        assert torch.equal(value, states[best_epoch][key]), key


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if 0 < value < 1 else value + 1.0  # dropout stays a fraction
    if isinstance(value, tuple):
        return (*value, 8)
    if value is None:
        return 100
    return {"lstm": "gru", "interleaved": "planar"}[value]


@pytest.mark.parametrize("recipe_type", [RowRecipe, CNNRecipe])
def test_every_recipe_field_changes_the_checkpoint_name(recipe_type):
    recipe = recipe_type.default()
    settings = [field.name for field in dataclasses.fields(recipe) if field.name not in ("model", "step")]
    names = {recipe.checkpoint_name()}
    for name in settings:  # the code (model, step) is tests/test_methods.py's
        changes = {name: _changed(getattr(recipe, name)), **({"forget_bias": 0.0} if name == "cell" else {})}
        names.add(dataclasses.replace(recipe, **changes).checkpoint_name())  # a GRU has no forget gate
    assert len(names) == len(settings) + 1


def test_defaults_follow_the_profile(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    source = RowRecipe.default("rnn")
    assert (source.cell, source.hidden_size, source.num_layers, source.head) == ("rnn", 256, 1, (64, 64))
    assert (source.lr, source.weight_decay, source.epochs, source.batch_size) == (0.00022, 0.00052, 100, 64)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert RowRecipe.default("gru").epochs < 100


@pytest.mark.parametrize("recipe", [
    RowRecipe(cell="gru", hidden_size=8, head=(8,), epochs=2, batch_size=8, val_size=16),
    CNNRecipe(width=4, epochs=1, batch_size=8, val_size=16),
])  # fmt: skip
def test_a_tiny_recipe_trains_on_the_device_and_round_trips_through_its_checkpoint(recipe, capsys):
    data = _tiny_data()
    model, history = recipe.pretrained(data)
    assert next(model.parameters()).device == device()
    assert recipe.is_cached() and len(history["val_loss"]) == recipe.epochs
    again, history_again = recipe.pretrained(data)
    assert "Loaded" in capsys.readouterr().out
    assert history_again == history
    for (key, value), other in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(value.cpu(), other.cpu()), key


def test_the_checkpoint_names_of_the_measured_runs_stay(monkeypatch):
    # The names of the laptop run stored in notebook 05: its cached weights stay valid.
    names = [RowRecipe.default(cell).checkpoint_name() for cell in ("rnn", "lstm", "gru")]
    assert [*names, CNNRecipe.default().checkpoint_name()] == [
        "recurrent_rows-58df49bc1551", "recurrent_rows-ff2593bce633", "recurrent_rows-b25703f79594",
        "rows_cnn-1dfc70757ce4",
    ]  # fmt: skip
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert RowRecipe.default("lstm").checkpoint_name() == "recurrent_rows-7b7322a41d0f"


ROWS_SOURCE = Path(methods_rows.__file__).read_text()


@pytest.mark.parametrize(
    "old, new",
    [
        (".permute(0, 2, 3, 1).reshape(n, h, w * c)", ".flip(2).permute(0, 2, 3, 1).reshape(n, h, w * c)"),
        ("nn.BatchNorm1d(width), nn.ReLU(),", "nn.BatchNorm1d(width), nn.Tanh(),"),
    ],
    ids=["exercise 1 reads the rows bottom first", "the head's activation"],
)
def test_an_edited_notebook_cell_trains_under_its_own_name_and_trains_otherwise(tmp_path, capsys, old, new):
    assert old in ROWS_SOURCE
    edited = load_module(tmp_path / f"rows_edited_{abs(hash(old))}.py", ROWS_SOURCE.replace(old, new))
    same = load_module(tmp_path / f"rows_same_{abs(hash(old))}.py", ROWS_SOURCE.replace("# Summed,", "# Added,"))
    base = RowRecipe(cell="gru", hidden_size=8, head=(8,), epochs=1, batch_size=8, val_size=16)
    recipes = {
        "package": base,
        "edited": dataclasses.replace(base, model=edited.RowClassifier),
        "same code": dataclasses.replace(base, model=same.RowClassifier),
    }
    assert recipes["same code"].checkpoint_name() == base.checkpoint_name() != recipes["edited"].checkpoint_name()
    weights = {}
    for name, recipe in recipes.items():
        model, _ = recipe.pretrained(_tiny_data())
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    out = capsys.readouterr().out
    assert out.count("Training recurrent_rows") == 2 and "Loaded" in out  # the same code reuses, edited code trains
    assert torch.equal(weights["package"], weights["same code"])
    assert not torch.equal(weights["package"], weights["edited"])
