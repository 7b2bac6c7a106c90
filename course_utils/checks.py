"""The checks that values get where they enter the package (a recipe being built, data
loaded, the command line) and the few guards the math functions keep against a silent
mistake: each raises one line naming the value and what was expected."""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Mapping, Sized
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch

# How far past [0, 1] a float image batch may go: resampling a [0, 1] image can round just outside it.
SLACK = 1e-3
# Below this a softmax over cosine similarities is already an arg-max in float32, and far below it
# (1e-39) 1 / temperature overflows: the loss turns NaN.
MIN_TEMPERATURE = 1e-4


def count(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``low..high``; else a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {_bounds(low, high)}, got {value}")
    return int(value)


def number(name: str, value: Any, low: float | None = None, high: float | None = None, *, above: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool) with ``low <= value <= high``
    (``above``: ``low < value``); else a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    too_low = low is not None and (value <= low if above else value < low)
    if not math.isfinite(value) or too_low or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite number {_bounds(low, high, above)}, got {value}")
    return value


def temperature(value: Any) -> float:
    """A softmax temperature: a finite number of at least :data:`MIN_TEMPERATURE`."""
    return number("temperature", value, MIN_TEMPERATURE)


def _bounds(low: float | None, high: float | None, above: bool = False) -> str:
    parts = [f"{'>' if above else '>='} {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    return " and ".join(part for part in parts if part) or "(any)"


def same_length(**named: Sized) -> int:
    """The common length of the named arrays; a ValueError listing them when they differ or are empty."""
    lengths = {name: len(value) for name, value in named.items()}
    if len(set(lengths.values())) > 1 or 0 in lengths.values():
        listed = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ValueError(f"one entry per item expected, and at least one item, but {listed}")
    return next(iter(lengths.values()))


def setting_matches(setting: str, value: int | None, data: Sized) -> None:
    """A recipe's count ``setting`` = ``value`` must be what trains: the data must hold that
    many items (any number for None), else a ValueError, before training starts."""
    if value is not None and len(data) != value:
        raise ValueError(
            f"the training data hold {len(data):,} items but the recipe says {setting}={value:,} (are there that "
            f"many?); pass that many or build the recipe with {setting}={len(data)}"
        )


def image_batch(x: Any, where: str, channels: int | None = None, floats: bool = True) -> None:
    """A non-empty (N, C, H, W) tensor (with ``channels`` channels); with ``floats``, float
    values in [0, 1] (one pass over the values, one device sync)."""
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        raise ValueError(f"{where} expects (N, {channels or 'C'}, H, W) images, got {shape}")
    if 0 in x.shape:
        raise ValueError(f"{where} expects a non-empty batch of images, got {shape}")
    if not floats:
        return
    if not x.is_floating_point():
        raise TypeError(f"{where} expects float images, got {x.dtype}; convert uint8 with course_utils.images.to_float")
    low, high = torch.stack(torch.aminmax(x)).tolist()
    if not (low >= -SLACK and high <= 1 + SLACK):  # written so that NaN fails too
        raise ValueError(
            f"{where} expects float images with values in [0, 1], got values in [{low:.4g}, {high:.4g}]: "
            "pass the uint8 images or divide by 255"
        )


def varying(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """``x`` as an (N, D) array, unless its rows are all the same (PCA would divide by zero, t-SNE crash)."""
    x = _array(x, name)
    if x.ndim != 2 or np.ptp(x, axis=0).max() == 0:
        raise ValueError(f"{name} must be (N, D) features whose rows are not all the same (collapsed), got {x.shape}")
    return x


def labels(y: np.ndarray | torch.Tensor, name: str, n: int | None = None, classes: int = 1) -> np.ndarray:
    """``y`` as an int64 vector of class indices >= 0 (``n`` of them, one per row of the
    features, when given) holding at least ``classes`` distinct classes."""
    y = _array(y, name)
    if y.ndim != 1 or len(y) == 0 or (n is not None and len(y) != n) or not np.issubdtype(y.dtype, np.integer):
        expected = "" if n is None else f"{n} "
        raise ValueError(f"{name} must be {expected}integer labels (one per row of the features), got {y.dtype} "
                         f"{y.shape}")  # fmt: skip
    if y.min() < 0:
        raise ValueError(f"{name} holds {y.min()}: class indices are >= 0 (-1 marks an unlabeled image)")
    if len(np.unique(y)) < classes:
        raise ValueError(f"{name} holds {len(np.unique(y))} class(es); at least {classes} are needed")
    return y.astype(np.int64)


def _array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray | list | tuple):
        return np.asarray(x)
    raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")


def fields(settings: Any, limits: Mapping[str, tuple[float | None, float | None]]) -> None:
    """Every field of the dataclass ``settings`` against its annotation: ints are ints (not
    bools or floats) of at least 1, floats finite numbers above 0, unless ``limits`` gives the
    field's own inclusive (low, high); bools are bools, strs strs, tuples of ints hold ints of
    at least 1, and a nested dataclass is one of its class. ``X | None`` also allows None."""
    hints = get_type_hints(type(settings))
    for field in dataclasses.fields(settings):
        value, kind = getattr(settings, field.name), hints[field.name]
        if get_origin(kind) in (Union, types.UnionType):
            if value is None and type(None) in get_args(kind):
                continue
            kind = next(arm for arm in get_args(kind) if arm is not type(None))
        low, high = limits.get(field.name, (1 if kind is int else 0, None))
        if kind is int:
            count(field.name, value, low, high)
        elif kind is float:
            number(field.name, value, low, high, above=field.name not in limits)
        elif kind in (bool, str) and not isinstance(value, kind):
            raise TypeError(f"{field.name} must be a {kind.__name__}, got {value!r} ({type(value).__name__})")
        elif get_origin(kind) is tuple and get_args(kind)[0] is int:
            if not isinstance(value, tuple | list):
                raise TypeError(f"{field.name} must be a tuple of ints, got {value!r}")
            for i, item in enumerate(value):
                count(f"{field.name}[{i}]", item)
        elif dataclasses.is_dataclass(kind) and not isinstance(value, kind):
            raise TypeError(f"{field.name} must be a {kind.__name__}, got {value!r}")
