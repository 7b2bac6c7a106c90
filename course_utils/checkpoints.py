"""Trained weights on disk: written atomically, verified when read, cached by recipe.

A checkpoint holds the model's weights, the settings that produced them (a recipe's
fields), the training history, a SHA-256 digest of the weights and the library
versions that wrote it. :func:`cached` loads it when the settings match and trains
otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.runtime import atomic_write, checkpoint_dir, ensure_writable, retrain_requested, shown_path

History = dict[str, list[float]]
FORMAT = 2


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used: unreadable, damaged or not the course's."""


def plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as JSON stores them (tuples become lists), so saved and new compare equal.

    Raises ``TypeError`` for anything JSON cannot store exactly (a numpy integer, an
    object, NaN), naming the setting: found before training, not after.
    """
    for key, value in settings.items():
        _check_storable(value, str(key))
    return json.loads(json.dumps(settings))


def _check_storable(value: Any, where: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"setting {where} is {value}; only finite numbers can be stored")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_storable(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"setting {where} has a key {key!r} of type {type(key).__name__}; keys must be str")
            _check_storable(item, f"{where}.{key}")
        return
    raise TypeError(
        f"setting {where} = {value!r} is a {type(value).__module__}.{type(value).__qualname__}; "
        "checkpoints store only str, int, float, bool, None, lists and dicts of them"
    )


def plain_history(history: Mapping[str, list[Any]]) -> History:
    """The history with every value a Python float (numpy or tensor scalars are converted)."""
    return {str(key): [float(value) for value in values] for key, values in history.items()}


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import torchvision

    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__)}


def save_checkpoint(path: Path, model: nn.Module, settings: Mapping[str, Any], history: Mapping[str, list]) -> None:
    """Write weights, settings, history, digest and versions atomically: a crash never
    leaves half a file, and a damaged file is caught when it is read."""
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    record = {
        "format": FORMAT,
        "settings": plain(settings),
        "model": state,
        "history": plain_history(history),
        "digest": weights_digest(state),
        "versions": _versions(),
    }
    with atomic_write(Path(path)) as f:
        torch.save(record, f)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code is unpickled) and check the
    weights against their digest. Raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    retrain = f"delete {path} or set COURSE_RETRAIN=1 to train again"
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged or unsafe files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {first_line}); {retrain}"
        ) from error
    expected = {"format", "settings", "model", "history", "digest"}
    if not isinstance(record, dict) or not expected <= record.keys() or record["format"] != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this course (format {FORMAT}); {retrain}")
    if weights_digest(record["model"]) != record["digest"]:
        raise CheckpointError(f"{path}: the stored weights do not match their digest (damaged file); {retrain}")
    return record


def _check_writable(folder: Path) -> None:
    try:
        ensure_writable(folder)
    except OSError as error:
        raise PermissionError(
            f"cannot write checkpoints to {folder} ({error.strerror}); set COURSE_CHECKPOINT_DIR to a writable folder"
        ) from error


def cached(
    name: str,
    settings: Mapping[str, Any],
    model: nn.Module,
    train_fn: Callable[[], Mapping[str, list]],
    retrain: bool | None = None,
    folder: Path | None = None,
) -> History:
    """Load ``<folder>/<name>.pt`` into ``model`` if it was trained with exactly
    ``settings``; otherwise call ``train_fn()`` and save the result. Returns the history.

    The settings and the folder are checked *before* training, so that a finished run
    is never lost to a setting that cannot be stored or a folder that cannot be written.
    ``retrain=True`` (or ``COURSE_RETRAIN=1``) always trains. The model stays on its device.
    """
    stored = plain(settings)
    folder = Path(folder) if folder is not None else checkpoint_dir()
    path = folder / f"{name}.pt"
    if retrain is None:
        retrain = retrain_requested()
    if path.exists() and not retrain:
        record = load_checkpoint(path)
        if record["settings"] == stored:
            model.load_state_dict(record["model"])
            print(f"Loaded {name} from {shown_path(path)} (same settings; COURSE_RETRAIN=1 trains again)")
            return record["history"]
        print(f"{shown_path(path)} was trained with other settings; training again")
    _check_writable(folder)
    history = plain_history(train_fn())
    save_checkpoint(path, model, stored, history)
    return history
