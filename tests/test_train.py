"""The training loop, seeding, and the checkpoint cache."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import runtime, seed_everything
from course_utils.models import Classifier, ConvBackbone, mlp_head
from course_utils.train import (
    CheckpointError,
    fit_classifier,
    load_checkpoint,
    save_checkpoint,
    supervised_step,
    train,
    train_or_load,
    warmup_cosine,
)


def _toy_problem(n: int = 64):
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % 2
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    images[targets == 1, :, :14] += 150  # class 1 is bright on top: easy to learn
    return images, targets


def _model() -> Classifier:
    return Classifier(ConvBackbone(), mlp_head(2048, 16, 2))


def _run(seed: int, epochs: int = 3):
    seed_everything(seed)
    model = _model()
    images, targets = _toy_problem()
    history = train(
        model,
        supervised_step(images, targets),
        len(images),
        epochs=epochs,
        batch_size=16,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        validate=lambda m: {"val_metric": 1.0},
        seed=seed,
    )
    return model, history


def test_same_seed_same_losses_other_seed_other_losses():
    _, a = _run(seed=3)
    _, b = _run(seed=3)
    _, c = _run(seed=4)
    assert a["step_loss"] == b["step_loss"]
    assert a["step_loss"] != c["step_loss"]


def test_history_has_per_epoch_means_and_every_step():
    _, history = _run(seed=0, epochs=4)
    assert len(history["step_loss"]) == 4 * (64 // 16)
    assert len(history["loss"]) == len(history["train_accuracy"]) == len(history["val_metric"]) == 4
    first_epoch = history["step_loss"][:4]
    assert history["loss"][0] == pytest.approx(sum(first_epoch) / 4)
    assert history["loss"][-1] < history["loss"][0], "the toy problem must be learned"


def test_checkpoint_round_trip(isolated):
    model, history = _run(seed=0, epochs=1)
    path = isolated / "ck" / "toy.pt"
    save_checkpoint(path, model, {"lr": 0.05, "sizes": (1, 2)}, history)
    loaded = load_checkpoint(path)
    assert loaded["config"] == {"lr": 0.05, "sizes": [1, 2]}
    assert loaded["history"] == history
    fresh = _model()
    fresh.load_state_dict(loaded["model"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert [p.name for p in path.parent.iterdir()] == ["toy.pt"], "no temporary file may be left behind"


def test_cache_hit_miss_and_forced_retrain(isolated, monkeypatch):
    calls = []

    def trainer(model):
        def fn():
            calls.append(1)
            with torch.no_grad():
                model.head[0].weight.fill_(len(calls))
            return {"loss": [float(len(calls))]}

        return fn

    model = _model()
    assert train_or_load("toy", model, {"epochs": 1}, trainer(model)) == {"loss": [1.0]}
    second = _model()
    assert train_or_load("toy", second, {"epochs": 1}, trainer(second)) == {"loss": [1.0]}
    assert len(calls) == 1, "same configuration: loaded, not trained"
    assert torch.all(second.head[0].weight == 1.0), "the saved weights must be loaded"
    train_or_load("toy", _model(), {"epochs": 2}, trainer(_model()))
    assert len(calls) == 2, "another configuration: trained again"
    train_or_load("toy", _model(), {"epochs": 2}, trainer(_model()), retrain=True)
    assert len(calls) == 3
    monkeypatch.setenv("COURSE_RETRAIN", "1")
    train_or_load("toy", _model(), {"epochs": 2}, trainer(_model()))
    assert len(calls) == 4
    assert (isolated / "checkpoints" / "cpu" / "toy.pt").exists()


def test_corrupt_checkpoint_is_a_clear_error(isolated):
    path = isolated / "bad.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt is not a readable checkpoint"):
        load_checkpoint(path)


class Payload:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_loading_refuses_arbitrary_pickled_objects(isolated):
    path = isolated / "evil.pt"
    torch.save({"config": {}, "model": {}, "history": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_fit_classifier_learns_and_trains_only_what_requires_grad():
    seed_everything(0)
    images, targets = _toy_problem()
    model = _model().freeze_backbone()
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    history = fit_classifier(model, images, targets, epochs=15, batch_size=16, lr=3e-3)
    assert history["train_accuracy"][-1] == 1.0
    assert all(torch.equal(frozen[k], v) for k, v in model.backbone.state_dict().items())


def test_supervised_step_accepts_float_features():
    features = torch.randn(8, 4)
    step = supervised_step(features, torch.arange(8) % 2)
    loss, metrics = step(torch.nn.Linear(4, 2), torch.arange(8))
    assert loss.ndim == 0 and 0 <= metrics["train_accuracy"] <= 1


def test_warmup_cosine_matches_the_formula():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=2.0)
    scheduler = warmup_cosine(optimizer, total_steps=10, warmup_steps=4, final_fraction=0.1)
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    for step, lr in enumerate(seen):
        warm = min(1.0, (step + 1) / 4)
        cosine = (1 + math.cos(math.pi * min(step, 10) / 10)) / 2
        assert lr == pytest.approx(2.0 * warm * (0.1 + 0.9 * cosine))
    assert seen[0] == pytest.approx(0.5) and seen[10] == seen[11] == pytest.approx(0.2)


def test_fit_classifier_shrinks_a_batch_larger_than_the_data():
    images, targets = _toy_problem(n=12)
    history = fit_classifier(_model(), images, targets, epochs=2, batch_size=64, lr=1e-3)
    assert len(history["step_loss"]) == 2, "one batch of all 12 images per epoch"


@pytest.mark.parametrize("setting", ["1", "0"])
def test_steps_run_the_model_in_bfloat16_where_native_and_the_loss_in_float32(monkeypatch, setting):
    monkeypatch.setenv("COURSE_BF16", setting)
    seen = {}

    class Probe(torch.nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            seen["dtype"] = out.dtype
            return out

    features, targets = torch.randn(8, 4), torch.arange(8) % 2
    loss, _ = supervised_step(features, targets)(Probe(4, 2), torch.arange(8))
    native = setting == "1" and runtime._native_bfloat16("cpu")
    assert seen["dtype"] == (torch.bfloat16 if native else torch.float32)
    assert loss.dtype == torch.float32
