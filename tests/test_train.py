"""The training loop, seeding, and the checkpoint cache."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import runtime, seed_everything
from course_utils import train as train_module
from course_utils.methods.supervised import ConvBackbone, supervised_step
from course_utils.models import Classifier
from course_utils.train import (
    BestEpoch,
    ShuffledBatches,
    evaluate_loss,
    fit,
    fit_classifier,
    recipe_step,
    train,
    warmup_cosine,
)


def _toy_problem(n: int = 64):
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % 2
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    images[targets == 1, :, :14] += 150  # class 1 is bright on top: easy to learn
    return images, targets


def _model() -> Classifier:
    return Classifier(
        ConvBackbone(), torch.nn.Sequential(torch.nn.Linear(2048, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    )


def _run(seed: int, epochs: int = 3):
    seed_everything(seed)
    model = _model()
    images, targets = _toy_problem()
    history = train(
        model,
        recipe_step(supervised_step, (images, targets), None),
        ShuffledBatches(len(images), 16, seed),
        epochs=epochs,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        validate=lambda m: {"val_metric": 1.0},
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


def test_fit_classifier_learns_and_trains_only_what_requires_grad():
    seed_everything(0)
    images, targets = _toy_problem()
    model = _model().freeze_backbone()
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    history = fit_classifier(model, images, targets, epochs=15, batch_size=16, lr=3e-3)
    assert history["train_accuracy"][-1] == 1.0
    assert all(torch.equal(frozen[k], v) for k, v in model.backbone.state_dict().items())


def test_supervised_step_on_float_features_is_the_cross_entropy_written_out():
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, -1.0]])
    targets = torch.tensor([0, 1, 1, 0])
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5]]))
        model.bias.zero_()
    loss, metrics = supervised_step(model, (features, targets), None)
    # logits per row: [1, .5], [-2, 1], [0, 1], [4, 1]; -log softmax of the target, averaged
    logits = [[1.0, 0.5], [-2.0, 1.0], [0.0, 1.0], [4.0, 1.0]]
    expected = sum(math.log(math.exp(row[0]) + math.exp(row[1])) - row[t] for row, t in zip(logits, [0, 1, 1, 0]))
    assert loss.item() == pytest.approx(expected / 4, rel=1e-6)
    assert metrics["train_accuracy"] == 1.0  # every row's larger logit is its target


def test_shuffled_batches_cover_every_item_once_per_epoch_and_drop_the_rest():
    batches = ShuffledBatches(10, 4, seed=1)
    assert len(batches) == 2
    for _ in range(3):
        epoch = list(batches)
        assert [len(b) for b in epoch] == [4, 4]
        seen = torch.cat(epoch)
        assert len(set(seen.tolist())) == 8 and 0 <= seen.min() and seen.max() < 10
    assert [b.tolist() for b in ShuffledBatches(10, 4, seed=1)] == [b.tolist() for b in ShuffledBatches(10, 4, seed=1)]
    assert len(ShuffledBatches(3, 64)) == 1, "a batch larger than the data shrinks to the data"


@pytest.mark.parametrize("epochs", [0, -1])
def test_training_refuses_zero_epochs(epochs):
    model = _model()
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        train(model, lambda m, i: torch.zeros(()), ShuffledBatches(8, 4), epochs=epochs,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1))  # fmt: skip


def test_a_loss_that_stops_being_finite_stops_training_with_a_clear_error():
    model = torch.nn.Linear(2, 1)
    losses = iter([1.0, float("nan")])

    def step(m, index):
        return m(torch.ones(len(index), 2)).sum() * 0 + next(losses)

    with pytest.raises(FloatingPointError, match="loss became nan at step 2"):
        train(model, step, ShuffledBatches(8, 4), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.parametrize("epochs", [0, -2])
def test_fit_classifier_refuses_zero_epochs_before_building_a_schedule(epochs):
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        fit_classifier(torch.nn.Linear(2, 2), torch.randn(8, 2), torch.arange(8) % 2, epochs=epochs, batch_size=4,
                       lr=0.1)  # fmt: skip


def test_fit_checks_its_optimiser_and_learning_rate():
    model = torch.nn.Linear(2, 2)
    step = recipe_step(supervised_step, (torch.randn(8, 2), torch.arange(8) % 2), None)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        fit(model, step, ShuffledBatches(8, 4), epochs=1, lr=0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        fit(model, step, ShuffledBatches(8, 4), epochs=1, lr=0.0)


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


@pytest.mark.parametrize(
    ("hardware", "setting", "expected"),
    [(True, "1", torch.bfloat16), (True, "off", torch.float32), (False, "1", torch.float32),
     (False, "on", torch.float32)],
)  # fmt: skip
def test_steps_run_the_model_in_bfloat16_only_on_native_hardware_and_the_loss_in_float32(
    monkeypatch, hardware, setting, expected
):
    monkeypatch.setattr(runtime, "native_precision", lambda device_type: torch.bfloat16 if hardware else torch.float32)
    monkeypatch.setenv("COURSE_BF16", setting)
    seen = {}

    class Probe(torch.nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            seen["dtype"] = out.dtype
            return out

    features, targets = torch.randn(8, 4), torch.arange(8) % 2
    loss, _ = supervised_step(Probe(4, 2), (features, targets), None)
    assert seen["dtype"] == expected
    assert loss.dtype == torch.float32


def test_best_epoch_restores_the_first_epoch_with_the_highest_score():
    model = torch.nn.Linear(1, 1, bias=False)
    best = BestEpoch()
    for weight, score in [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.7)]:  # epoch 4 only ties epoch 2
        with torch.no_grad():
            model.weight.fill_(weight)
        best.update(model, score)
    history = best.restore(model, {"loss": [1.0, 0.5, 0.4, 0.3]})
    assert model.weight.item() == 2.0, "epoch 2's weights, copied then, not changed by later epochs"
    assert history == {"loss": [1.0, 0.5, 0.4, 0.3], "best_epoch": [2.0]}
    assert best.epochs_seen == 4


def test_evaluate_loss_on_float_features_counts_hits_of_the_argmax_in_chunks():
    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 2))  # logits (x0, x1, 0)
    inputs = torch.tensor([[2.0, 1.0], [0.0, 3.0], [-1.0, -2.0], [5.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 1, 2, 1, 0])  # argmax: 0, 1, 2, 0, 1 -> three hits
    metrics = evaluate_loss(model.train(), inputs, targets, batch_size=2)
    assert metrics["val_accuracy"] == pytest.approx(3 / 5)
    logits = [[x0, x1, 0.0] for x0, x1 in inputs.tolist()]
    by_hand = [math.log(sum(math.exp(v) for v in row)) - row[t] for row, t in zip(logits, targets.tolist())]
    assert metrics["val_loss"] == pytest.approx(sum(by_hand) / 5, rel=1e-5)
    assert model.training, "the mode is restored"


def test_fit_classifier_ends_on_the_epoch_that_validated_best(monkeypatch):
    monkeypatch.setenv("COURSE_BF16", "0")  # the hand computation below is in float32
    g = torch.Generator().manual_seed(1)
    features = torch.randn(64, 4, generator=g)
    targets = (features[:, 0] + 0.3 * features[:, 1] > 0).long()
    validation = (features[:20] + 0.8 * torch.randn(20, 4, generator=g), targets[:20])
    seed_everything(0)
    model = torch.nn.Linear(features.shape[1], 2)
    snapshots = []

    def keep(net):  # called after each epoch, before the validation accuracy is measured
        snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
        return {}

    history = fit_classifier(model, features, targets, epochs=6, batch_size=16, lr=0.3, validation=validation,
                             validate=keep)  # fmt: skip
    by_hand = []
    for state in snapshots:
        probe = torch.nn.Linear(features.shape[1], 2)
        probe.load_state_dict(state)
        by_hand.append((probe(validation[0]).argmax(1) == validation[1]).float().mean().item())
    assert history["val_accuracy"] == pytest.approx(by_hand)
    best = by_hand.index(max(by_hand))  # the first of equal scores
    assert history["best_epoch"] == [best + 1]
    assert all(torch.equal(model.state_dict()[k], snapshots[best][k]) for k in snapshots[best])


def test_float16_training_goes_through_the_gradient_scaler_and_takes_the_true_step(monkeypatch):
    # One SGD step of a linear model on 0.5 * mean((w x)^2), in float16 autocast on the CPU: the
    # scaler multiplies the loss by 2^16 and must divide the gradients by it again before the
    # step, so the weights move by lr * mean(w.x x) as the float32 formula says.
    monkeypatch.setenv("COURSE_PRECISION", "fp16")
    scalers = []
    monkeypatch.setattr(
        train_module, "grad_scaler", lambda device: scalers.append(runtime.grad_scaler(device)) or scalers[-1]
    )
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 1.0]]) / 10  # small: no overflow at 2^16
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.25, -0.5]]))
    w = model.weight.detach().clone()[0]
    expected = w - 10 * ((x @ w)[:, None] * x).mean(0)  # the gradient of 0.5 * mean((w.x)^2) written out

    def step(net, index):
        with runtime.mixed_precision(torch.device("cpu")):
            out = net(x[index])
        assert out.dtype == torch.float16
        return 0.5 * out.float().pow(2).mean()

    optimizer = torch.optim.SGD(model.parameters(), lr=10)
    train(model, step, ShuffledBatches(4, 4), epochs=1, optimizer=optimizer)
    assert scalers[0].is_enabled() and scalers[0].get_scale() == 2.0**16
    assert scalers[0]._get_growth_tracker() == 1, "one step taken through the scaler"
    assert not torch.allclose(expected, w, atol=0.02), "the step is large enough to see"
    assert torch.allclose(model.weight.detach()[0], expected, atol=2e-3), "float16 inputs: about 3 digits"
