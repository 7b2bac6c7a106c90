"""Recipes: one frozen object per experiment holding every setting that changes the
trained weights (data, model shape, optimiser, schedule, augmentation, epochs, seed).

A recipe builds its model, trains it, and keys the checkpoint cache with its own
fields, so no configuration is written by hand and no setting can change the
weights without changing the key. ``recipe.pretrained()`` returns the trained model
from the cache, or trains it first, on :func:`~course_utils.runtime.device` either way;
a later notebook reloads another notebook's model by building the same recipe.

Each experiment family has its module here: ``fashion`` (notebook 01's supervised
baselines), ``simsiam`` (02), ``simclr`` (03).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil
import textwrap
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from course_utils import checks, results
from course_utils.checkpoints import CheckpointError, History, cached, data_fingerprint, load_checkpoint, plain
from course_utils.runtime import checkpoint_file, describe_precision, device, profile, seed_everything

__all__ = ["LIMITS", "Recipe", "code_fingerprint", "families", "plan"]

# Inclusive (low, high) bounds of the recipe fields that may be 0 or must stay below a limit;
# every other int field must be >= 1 and every other float field > 0 (see checks.fields).
LIMITS: dict[str, tuple[float | None, float | None]] = {
    "seed": (0, 2**32 - 1),  # NumPy's seeds
    "subset_seed": (0, 2**32 - 1),
    "warmup_steps": (0, None),
    "patience": (0, None),
    "weight_decay": (0, None),
    "final_lr_fraction": (0, 1),
    "dropout": (0, 1),
    "val_fraction": (0, 1),
    "forget_bias": (None, None),
    "temperature": (checks.MIN_TEMPERATURE, None),
}


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Base class of the course's recipes: subclasses add their settings as fields and
    implement :meth:`build`, :meth:`load_data` and :meth:`fit`.

    ``name`` is the checkpoint family, ``notebook`` the notebook that trains it. ``model``
    (the network's class) and ``step`` (the training step) are the method's code; ``None``
    means the package's (``default_model``, ``default_step``, from ``course_utils.methods``).
    A notebook hands in its own cells' code, and code that differs from the package's trains
    under another checkpoint name (:meth:`settings`).
    """

    name: ClassVar[str]
    notebook: ClassVar[str]
    default_model: ClassVar[Callable[..., nn.Module]]
    default_step: ClassVar[Callable[..., Any]]
    seed: int = 0
    model: Callable[..., nn.Module] | None = field(default=None, repr=False)
    step: Callable[..., Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        checks.fields(self, LIMITS)
        plain(self.settings())  # every setting must be storable: fail now, not after training

    @property
    def model_class(self) -> Callable[..., nn.Module]:
        """What builds the network: the notebook's ``model``, else the package's."""
        return self.model or type(self).default_model

    @property
    def training_step(self) -> Callable[..., Any]:
        """The step that trains: the notebook's ``step``, else the package's."""
        return self.step or type(self).default_step

    def settings(self) -> dict[str, Any]:
        """Every setting, with nested settings (an augmentation) as dicts, and the recipe's type;
        plus ``code``, the fingerprint of the model and step, when they are not the package's."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "step")}
        found = {"recipe": type(self).__name__, **{key: _as_plain(value) for key, value in fields.items()}}
        package = (getattr(type(self), "default_model", None), getattr(type(self), "default_step", None))
        if None in package:  # a recipe whose code is still the package's alone
            return found
        code = code_fingerprint(self.model_class, self.training_step)
        return found if code == code_fingerprint(*package) else {**found, "code": code}

    def checkpoint_name(self) -> str:
        """``<name>-<12 hex digits of the settings' hash>``: another setting, another file."""
        text = json.dumps(plain(self.settings()), sort_keys=True)
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def checkpoint_path(self) -> Path:
        """Where :meth:`pretrained` caches the trained weights."""
        return checkpoint_file(self.checkpoint_name())

    def is_cached(self) -> bool:
        """Whether a readable checkpoint trained with exactly these settings exists."""
        try:
            return plain(self.settings()) == load_checkpoint(self.checkpoint_path())["settings"]
        except (FileNotFoundError, CheckpointError):
            return False

    def build(self) -> nn.Module:
        """A freshly initialised model (call after seeding for repeatable weights)."""
        raise NotImplementedError

    def load_data(self) -> Any:
        """Whatever :meth:`fit` trains on, loaded from disk."""
        raise NotImplementedError

    def fit(self, model: nn.Module, data: Any, validate=None) -> History:
        """Train ``model`` (already on the device) on ``data``; returns the history."""
        raise NotImplementedError

    def cost(self) -> str:
        """What training involves, e.g. "25 epochs over 60,000 images"."""
        return ""

    def pretrained(self, data: Any = None, *, validate=None, retrain: bool | None = None) -> tuple[nn.Module, History]:
        """The trained model and its history: from the checkpoint cache when one was
        trained with exactly these settings on the same data, else trained now (``data``
        defaults to :meth:`load_data`; ``validate(model)`` may log metrics after each epoch).
        The model is on :func:`~course_utils.runtime.device` on both paths.

        The checkpoint records a fingerprint of the data it was trained on
        (:func:`~course_utils.checkpoints.data_fingerprint`); other data handed in trains
        again. Without ``data``, a checkpoint trained on :meth:`load_data` is reused unread,
        one trained on data handed in only after comparing it with :meth:`load_data`."""
        seed_everything(self.seed)
        model = self.build().to(device())
        loaded: list[Any] = []  # load_data() at most once

        def training_data() -> Any:
            if data is not None:
                return data
            if not loaded:
                loaded.append(self.load_data())
            return loaded[0]

        def same_data(record: dict[str, Any]) -> bool:
            stored = record.get("data")  # absent in checkpoints written before fingerprints
            return stored is None or (data is None and stored["loaded"]) or (
                stored["fingerprint"] == data_fingerprint(training_data())
            )  # fmt: skip

        def train_fn() -> History:
            print(f"Training {self.checkpoint_name()} ({self.notebook}): {self.cost()}")
            return self.fit(model, training_data(), validate)

        def data_record() -> dict[str, Any]:
            return {"data": {"fingerprint": data_fingerprint(training_data()), "loaded": data is None}}

        history = cached(self.checkpoint_name(), self.settings(), model, train_fn, retrain=retrain, accept=same_data,
                         extra=data_record)  # fmt: skip
        return model, history


def _as_plain(value: Any) -> Any:
    return asdict(value) if dataclasses.is_dataclass(value) else value


def code_fingerprint(*objects: Callable[..., Any]) -> str:
    """12 hex digits of SHA-256 over the syntax trees of ``objects`` (functions, or classes by
    their methods) and, recursively, of every function or class of the same module they name,
    and the values of that module's plain constants they name. Comments and layout do not
    count, so a notebook cell and its exported module agree; a changed line does not."""
    found: dict[str, str] = {}
    for item in objects:
        _collect(item, found)
    text = json.dumps(sorted(found.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _collect(item: Any, found: dict[str, str]) -> None:
    if not (inspect.isfunction(item) or inspect.isclass(item)):
        raise TypeError(f"a recipe's model and step must be a function or a class, got {item!r}")
    key = item.__qualname__  # not the module: a notebook's cell and its exported module must agree
    if key in found:
        return
    if inspect.isclass(item):  # a class of a notebook has no source file, its methods do
        parts = [f for f in vars(item).values() if inspect.isfunction(f)]
        found[key] = " ".join(base.__qualname__ for base in item.__bases__)
    else:
        parts = [item]
        found[key] = ""
    for part in parts:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(part)))
        except (OSError, TypeError, SyntaxError) as error:
            raise TypeError(f"cannot read the source of {key} ({error}); define a recipe's model and step "
                            "with def or class in a notebook cell or a .py file") from None  # fmt: skip
        found[key] += ast.dump(tree)
        function = inspect.unwrap(part)
        loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        for name in loaded & _global_names(function.__code__):  # not its arguments and locals
            value = function.__globals__.get(name)
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == item.__module__:
                _collect(value, found)
            elif isinstance(value, bool | int | float | str):
                found[name] = repr(value)


def _global_names(code: types.CodeType) -> set[str]:
    """The names a function's code (and the functions defined inside it) looks up outside itself."""
    nested = [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return set(code.co_names).union(*(_global_names(inner) for inner in nested))


def families() -> dict[str, set[str]]:
    """Checkpoint families per notebook number, e.g. ``{"02": {"simsiam_fashion"}}``, from
    every recipe defined in this package's modules."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, set[str]] = {}
    pending = list(Recipe.__subclasses__())
    while pending:
        recipe = pending.pop()
        pending += recipe.__subclasses__()
        if recipe.__module__.startswith(__name__):
            found.setdefault(recipe.notebook.partition("_")[0], set()).add(recipe.name)
    return found


def _flatten(items: Iterable[Any]) -> list[Recipe]:
    found: list[Recipe] = []
    for item in items:
        if isinstance(item, Recipe):
            found.append(item)
        else:
            found += _flatten(item.values() if isinstance(item, Mapping) else item)
    return found


def plan(results_name: str, *recipes: Recipe | Iterable[Any] | Mapping[Any, Any]) -> None:
    """Print what a notebook will do on this machine, before it trains anything: the
    profile, the device, the precision, what its ``recipes`` (recipes, or lists and dicts
    of them) will train and what the checkpoint cache already holds, and the expected time:
    the wall time of the last run recorded for this profile in ``results/<results_name>.json``."""
    here = device()
    chosen = _flatten(recipes)
    to_train = [recipe for recipe in chosen if not recipe.is_cached()]
    print(f"profile {profile()}, device {here}, precision {describe_precision(here)}")
    cached_count = len(chosen) - len(to_train)
    print(f"to train: {len(to_train)} of {len(chosen)} recipes ({cached_count} found in the checkpoint cache)")
    for cost, count in Counter(recipe.cost() for recipe in to_train).items():
        print(f"  {count} x {cost}")
    record = results.load(results_name)
    if record is None:
        print(f"expected time: not measured yet in the {profile()} profile")
        return
    hardware = record.get("hardware", "not recorded")
    minutes, measured_on = record["wall_seconds"] / 60, results.describe_hardware(hardware)
    print(f"expected time: about {minutes:.0f} min, as this profile's last recorded run took on {measured_on}")
    if here.type != "cpu" and not (isinstance(hardware, dict) and hardware.get("gpu")):
        print(f"  (that was on a CPU; on {here.type} expect less, not measured yet)")
