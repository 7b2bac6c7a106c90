"""A short training loop over in-memory data.

The loop knows nothing about the task: a *step* function takes the model and a
batch of indices into the in-memory dataset and returns the loss (optionally
with a dict of metrics to log); a *batch order* (any re-iterable of index tensors
with a length, such as :class:`ShuffledBatches`) says which indices make each batch.
:func:`recipe_step` makes such a step from a notebook's ``step(model, batch, recipe)``;
:func:`fit` adds the optimiser and learning-rate schedule, and :func:`fit_classifier`
trains with notebook 01's ``supervised_step``.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sized
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_utils import checks
from course_utils.checkpoints import History
from course_utils.images import to_float
from course_utils.methods.supervised import supervised_step
from course_utils.runtime import grad_scaler, mixed_precision

StepOutput = torch.Tensor | tuple[torch.Tensor, dict[str, float]]
Step = Callable[[nn.Module, torch.Tensor], StepOutput]
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class BatchOrder(Protocol, Sized):
    """Which items make each batch of an epoch: iterating yields index tensors."""

    def __iter__(self) -> Iterator[torch.Tensor]: ...


class ShuffledBatches:
    """Each epoch a new shuffle of ``range(num_items)`` cut into batches of ``batch_size``.

    The incomplete last batch is dropped (BatchNorm dislikes tiny batches); a batch
    larger than the data shrinks to the data. The same ``seed`` gives the same order.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0):
        checks.count("num_items", num_items), checks.count("batch_size", batch_size), checks.count("seed", seed, 0)
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.num_items // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.num_items, generator=self.generator)
        yield from order[: len(self) * self.batch_size].split(self.batch_size)


class BestEpoch:
    """The weights of the epoch with the highest validation score so far.

    Call :meth:`update` once per epoch (from ``validate``, say) and :meth:`restore` after
    training: the model gets those weights back and the history a ``best_epoch`` entry,
    counted from 1. A later epoch replaces the kept one only with a strictly higher score.
    """

    def __init__(self) -> None:
        self.score = -math.inf
        self.epoch = 0
        self.epochs_seen = 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, model: nn.Module, score: float) -> None:
        self.epochs_seen += 1
        if score > self.score:
            self.score, self.epoch = score, self.epochs_seen
            self.state = copy.deepcopy(model.state_dict())

    def restore(self, model: nn.Module, history: History) -> History:
        if self.state is None:
            raise ValueError(f"no epoch to restore: {self.epochs_seen} epochs scored, none with a number (NaN?)")
        model.load_state_dict(self.state)
        return {**history, "best_epoch": [float(self.epoch)]}


def _check_length(epochs: int, batches: BatchOrder) -> None:
    if checks.count("epochs", epochs) and len(batches) < 1:
        raise ValueError(f"training needs at least one batch an epoch, got {len(batches)}")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def recipe_step(step: Callable[..., StepOutput], data: torch.Tensor | tuple[torch.Tensor, ...], recipe: Any) -> Step:
    """The loop's step from a method's ``step(model, batch, recipe)``: ``batch`` is ``data`` (a
    tensor, or a tuple of tensors such as images and targets) at the batch's indices, on the
    model's device."""

    def indexed(model: nn.Module, index: torch.Tensor) -> StepOutput:
        device = _device_of(model)
        if isinstance(data, torch.Tensor):
            return step(model, data[index].to(device), recipe)
        return step(model, tuple(part[index].to(device) for part in data), recipe)

    return indexed


def train(
    model: nn.Module,
    step: Step,
    batches: BatchOrder,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    desc: str = "training",
) -> History:
    """Train for ``epochs`` passes over ``batches``.

    ``scheduler.step()`` runs after every batch. In float16 the gradients go through
    :func:`~course_utils.runtime.grad_scaler`. After each epoch ``validate(model)``
    may add metrics (in eval mode, without gradients). Returns the history: the mean
    of every logged value per epoch, and ``step_loss`` for every batch.
    """
    _check_length(epochs, batches)
    history: dict[str, list[float]] = defaultdict(list)
    scaler = grad_scaler(_device_of(model))
    bar = tqdm(range(epochs), desc=desc)
    for _ in bar:
        model.train()
        totals: dict[str, float] = defaultdict(float)
        for index in batches:
            output = step(model, index)
            loss, metrics = output if isinstance(output, tuple) else (output, {})
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # skipped when float16 gradients overflowed; the scale then shrinks
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            history["step_loss"].append(loss_value := loss.item())
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"{desc}: the loss became {loss_value} at step {len(history['step_loss'])}; "
                    "a lower learning rate usually helps"
                )
            for key, value in {"loss": loss_value, **metrics}.items():
                totals[key] += value / len(batches)
        if validate is not None:
            model.eval()
            with torch.no_grad():
                totals.update(validate(model))
        for key, value in totals.items():
            history[key].append(value)
        bar.set_postfix({key: f"{value:.3f}" for key, value in totals.items()})
    return dict(history)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over ``warmup_steps``, then following a cosine
    from its full value down to ``final_fraction`` of it at ``total_steps``."""
    checks.count("total_steps", total_steps)

    def factor(step: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warmup * (final_fraction + (1 - final_fraction) * cosine)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model: nn.Module,
    step: Step,
    batches: BatchOrder,
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    warmup_steps: int = 0,
    final_lr_fraction: float = 0.0,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    desc: str = "training",
) -> History:
    """:func:`train` every parameter that requires grad with ``optimizer`` (``adamw``,
    or ``adam``, whose weight decay is an L2 penalty inside the gradient) and the
    :func:`warmup_cosine` schedule over all ``epochs * len(batches)`` steps."""
    _check_length(epochs, batches)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    checks.number("lr", lr, 0, above=True), checks.number("weight_decay", weight_decay, 0)
    checks.count("warmup_steps", warmup_steps, 0), checks.number("final_lr_fraction", final_lr_fraction, 0, 1)
    parameters = [p for p in model.parameters() if p.requires_grad]
    opt = OPTIMIZERS[optimizer](parameters, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(opt, epochs * len(batches), warmup_steps, final_lr_fraction)
    return train(model, step, batches, epochs=epochs, optimizer=opt, scheduler=scheduler, validate=validate, desc=desc)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 1000
) -> dict[str, float]:
    """Mean cross-entropy (``val_loss``) and accuracy (``val_accuracy``) of ``model`` on uint8
    images or float features, in eval mode (the mode is restored afterwards)."""
    checks.same_length(inputs=inputs, targets=targets), checks.count("batch_size", batch_size)
    was_training = model.training
    model.eval()
    device = _device_of(model)
    total_loss, correct = 0.0, 0
    for chunk, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        x = chunk.to(device)
        with mixed_precision(device):
            logits = model(to_float(x) if x.dtype == torch.uint8 else x).float()
        y = y.to(device)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return {"val_loss": total_loss / len(inputs), "val_accuracy": correct / len(inputs)}


def fit_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    recipe: Any = None,
    step: Callable[..., StepOutput] = supervised_step,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    desc: str = "training",
) -> History:
    """Training of every parameter that requires grad with ``step(model, (images, targets),
    recipe)`` (notebook 01's cross-entropy step; ``recipe.augment``, if any, changes the
    images): AdamW (plain Adam when ``weight_decay`` is 0), the learning rate decaying along a
    cosine to 0, shuffled batches (a batch larger than the data shrinks to the data).

    With ``validation = (inputs, targets)`` (held out of the training data, never the test
    set) the history gains ``val_accuracy`` per epoch, and the model ends with the weights
    of the epoch that scored best there (:class:`BestEpoch`; ``best_epoch`` in the history).
    """
    checks.labels(targets, "targets", len(images))
    if validation is not None:
        checks.labels(validation[1], "validation targets", len(validation[0]))
    step = recipe_step(step, (images, targets), recipe)
    batches = ShuffledBatches(len(images), batch_size, seed)
    best = BestEpoch()

    def after_epoch(net: nn.Module) -> dict[str, float]:
        metrics = validate(net) if validate is not None else {}
        if validation is not None:
            metrics["val_accuracy"] = evaluate_loss(net, *validation, batch_size=2048)["val_accuracy"]
            best.update(net, metrics["val_accuracy"])
        return metrics

    history = fit(model, step, batches, epochs=epochs, lr=lr, weight_decay=weight_decay, validate=after_epoch,
                  desc=desc)  # fmt: skip
    return best.restore(model, history) if validation is not None else history
