"""A short training loop over in-memory data, and checkpoint caching.

The loop knows nothing about the task: a *step* function takes the model and a
batch of indices into the in-memory dataset and returns the loss (optionally
with a dict of metrics to log). ``supervised_step`` and ``two_view_step`` build
the steps the notebooks need.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_utils.augment import to_float
from course_utils.runtime import atomic_write, checkpoint_dir, mixed_precision

StepOutput = torch.Tensor | tuple[torch.Tensor, dict[str, float]]
Step = Callable[[nn.Module, torch.Tensor], StepOutput]
History = dict[str, list[float]]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def supervised_step(
    images: torch.Tensor, targets: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Step:
    """Cross-entropy on a batch of labelled inputs: uint8 images (scaled to [0, 1]
    or passed through ``augment``) or ready float features."""

    def step(model: nn.Module, index: torch.Tensor) -> StepOutput:
        device = _device_of(model)
        batch = images[index].to(device)
        if augment is not None:
            x = augment(batch)
        else:
            x = to_float(batch) if batch.dtype == torch.uint8 else batch
        with mixed_precision(device):
            logits = model(x).float()
        y = targets[index].to(device)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        return F.cross_entropy(logits, y), {"train_accuracy": accuracy}

    return step


def two_view_step(
    images: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Callable[..., torch.Tensor],
    metrics_fn: Callable[..., dict[str, float]] | None = None,
) -> Step:
    """Self-supervised step: two random views of each image go through
    ``model(x1, x2)``; its outputs go to ``loss_fn`` (and ``metrics_fn``) in float32."""

    def step(model: nn.Module, index: torch.Tensor) -> StepOutput:
        device = _device_of(model)
        batch = images[index].to(device)
        x1, x2 = augment(batch), augment(batch)
        with mixed_precision(device):
            outputs = model(x1, x2)
        outputs = tuple(output.float() for output in outputs)
        metrics = metrics_fn(*outputs) if metrics_fn else {}
        return loss_fn(*outputs), metrics

    return step


def train(
    model: nn.Module,
    step: Step,
    num_items: int,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    seed: int = 0,
    desc: str = "training",
) -> History:
    """Train for ``epochs`` passes over ``num_items`` items in shuffled batches.

    Incomplete last batches are dropped (BatchNorm dislikes tiny batches).
    ``scheduler.step()`` runs after every batch. After each epoch ``validate(model)``
    may add metrics. Returns the history: the mean of every logged value per
    epoch, and ``step_loss`` for every batch.
    """
    order = torch.Generator().manual_seed(seed)
    steps = max(1, num_items // batch_size)
    history: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(range(epochs), desc=desc)
    for _ in bar:
        model.train()
        totals: dict[str, float] = defaultdict(float)
        for index in torch.randperm(num_items, generator=order)[: steps * batch_size].split(batch_size):
            output = step(model, index)
            loss, metrics = output if isinstance(output, tuple) else (output, {})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history["step_loss"].append(loss_value := loss.item())
            for key, value in {"loss": loss_value, **metrics}.items():
                totals[key] += value / steps
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

    def factor(step: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warmup * (final_fraction + (1 - final_fraction) * cosine)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    desc: str = "training",
) -> History:
    """Supervised training of every parameter that requires grad: AdamW (plain Adam
    when ``weight_decay`` is 0) and cross-entropy, the learning rate decaying along
    a cosine to 0. A batch larger than the data shrinks to the data."""
    batch_size = min(batch_size, len(images))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, epochs * (len(images) // batch_size))
    step = supervised_step(images, targets, augment)
    return train(
        model, step, len(images), epochs=epochs, batch_size=batch_size, optimizer=optimizer, scheduler=scheduler,
        seed=seed, desc=desc,
    )  # fmt: skip


# --- checkpoints ---------------------------------------------------------------------------


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be loaded."""


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON would store it (tuples become lists), so saved and new compare equal."""
    return json.loads(json.dumps(config))


def save_checkpoint(path: Path, model: nn.Module, config: dict[str, Any], history: History) -> None:
    """Write weights, config and history atomically: a crash never leaves half a file."""
    state = {key: value.cpu() for key, value in model.state_dict().items()}
    with atomic_write(path) as f:
        torch.save({"config": _plain(config), "model": state, "history": history}, f)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code is unpickled)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); delete it to retrain"
        ) from error
    if not isinstance(checkpoint, dict) or not {"config", "model", "history"} <= checkpoint.keys():
        raise CheckpointError(f"{path} is not a course checkpoint (expected config, model and history)")
    return checkpoint


def train_or_load(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    train_fn: Callable[[], History],
    retrain: bool | None = None,
    folder: Path | None = None,
) -> History:
    """Load ``<checkpoint dir>/<name>.pt`` if it was trained with exactly ``config``;
    otherwise call ``train_fn()`` and save the result.

    ``retrain=True`` (or ``COURSE_RETRAIN=1``) always trains. Returns the history.
    """
    path = (folder or checkpoint_dir()) / f"{name}.pt"
    if retrain is None:
        retrain = os.environ.get("COURSE_RETRAIN", "") == "1"
    if path.exists() and not retrain:
        checkpoint = load_checkpoint(path)
        if checkpoint["config"] == _plain(config):
            model.load_state_dict(checkpoint["model"])
            print(f"Loaded {name} from {path} (same configuration; COURSE_RETRAIN=1 retrains)")
            return checkpoint["history"]
        print(f"{path} was trained with another configuration; training again")
    history = train_fn()
    save_checkpoint(path, model, config, history)
    return history
