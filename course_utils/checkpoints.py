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
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.runtime import (
    atomic_write,
    checkpoint_dir,
    checkpoint_file,
    ensure_writable,
    retrain_requested,
    shown_path,
)

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


def _hash_tensor(digest: Any, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy())


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(f"{key}|".encode())
        _hash_tensor(digest, state[key])
    return digest.hexdigest()


def data_fingerprint(data: Any) -> str:
    """SHA-256 over every tensor and array in ``data`` (nested in tuples, lists, dicts and
    objects' attributes): their dtypes, shapes and every byte, and the numbers beside them.
    Strings are left out: in the course's data they describe (a source, class names), they
    do not train. Hashing all bytes costs about 0.1 s for CIFAR-10's 150 MB; a sample of them
    would miss one changed image."""
    digest = hashlib.sha256()

    def walk(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            _hash_tensor(digest, item)
        elif isinstance(item, np.ndarray):
            _hash_tensor(digest, torch.from_numpy(np.ascontiguousarray(item)))
        elif isinstance(item, list | tuple):
            digest.update(f"[{len(item)}".encode())
            for part in item:
                walk(part)
        elif isinstance(item, dict) or hasattr(item, "__dict__"):
            for key, part in sorted((item if isinstance(item, dict) else vars(item)).items()):
                digest.update(f"{key}:".encode())
                walk(part)
        elif isinstance(item, bool | int | float) or item is None:
            digest.update(repr(item).encode())
        elif not isinstance(item, str):
            raise TypeError(f"cannot fingerprint training data of type {type(item).__name__}; pass tensors, "
                            "arrays, or tuples, lists, dicts and dataclasses of them")  # fmt: skip

    walk(data)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import torchvision

    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__)}


def save_checkpoint(
    path: Path, model: nn.Module, settings: Mapping[str, Any], history: Mapping[str, list], **extra: Any
) -> None:
    """Write weights, settings, history, digest, versions (and ``extra`` entries) atomically:
    a crash never leaves half a file, and a damaged file is caught when it is read."""
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    record = {
        "format": FORMAT,
        "settings": plain(settings),
        "model": state,
        "history": plain_history(history),
        "digest": weights_digest(state),
        "versions": _versions(),
        **extra,
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
    *,
    accept: Callable[[dict[str, Any]], bool] = lambda record: True,
    extra: Callable[[], dict[str, Any]] = dict,
) -> History:
    """Load ``<folder>/<name>.pt`` into ``model`` if it was trained with exactly ``settings``
    and ``accept(record)`` agrees (a recipe checks the data there); otherwise call
    ``train_fn()`` and save the result, with the entries ``extra()`` adds. Returns the history.
    ``folder`` defaults to the profile's (:func:`~course_utils.runtime.checkpoint_file` finds
    a checkpoint that an earlier run wrote under the profile's old name; training saves under the new one).

    The settings and the target are checked *before* training, and a save that fails after it
    (a full disk) only warns: the trained model is never lost. ``retrain=True`` (or
    ``COURSE_RETRAIN=1``) always trains. The model stays on its device.
    """
    stored = plain(settings)
    folder = Path(folder) if folder is not None else checkpoint_dir()
    target = folder / f"{name}.pt"  # where training saves
    path = checkpoint_file(name) if folder == checkpoint_dir() else target  # where a cached one may be
    if retrain is None:
        retrain = retrain_requested()
    if path.exists() and not retrain:
        record = load_checkpoint(path)
        if record["settings"] != stored:
            print(f"{shown_path(path)} was trained with other settings; training again")
        elif not accept(record):
            print(f"{shown_path(path)} was trained on other data than this call's; training again")
        else:
            model.load_state_dict(record["model"])
            print(f"Loaded {name} from {shown_path(path)} (same settings; COURSE_RETRAIN=1 trains again)")
            return record["history"]
    if target.is_dir():
        raise IsADirectoryError(
            f"a folder stands where the checkpoint {shown_path(target)} goes; move it away before training"
        )
    _check_writable(folder)
    history = train_fn()
    try:
        history = plain_history(history)
        save_checkpoint(target, model, stored, history, **extra())
    except Exception as error:  # a full disk, a history value that is not a number: keep the trained model
        warnings.warn(
            f"the trained model could not be saved to {shown_path(target)} ({type(error).__name__}: {error}); "
            "it is returned but not cached, so the next run trains again",
            RuntimeWarning,
            stacklevel=2,
        )
    return dict(history)
