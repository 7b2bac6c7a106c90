"""Each notebook's headline numbers, written to ``results/<notebook>.json``."""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from course_utils import checks
from course_utils.runtime import (
    OLD_PROFILE_NAMES,
    atomic_write,
    bfloat16_path,
    device,
    precision,
    profile,
    results_dir,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
HARDWARE_KEYS = {"cpu", "cores_used", "cores_available", "bfloat16"}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware() -> dict[str, Any]:
    """What the run computed on: CPU model, cores used by torch and available to the
    process, the bfloat16 path training took (``off`` where the device has one but another
    precision was chosen, ``none`` where it has none), the training precision, the GPU if
    one is used, and torch."""
    current = device()
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    dtype = precision(current)
    path = bfloat16_path(current.type)
    if dtype == torch.bfloat16:
        bfloat16 = path or "emulated"
    else:
        bfloat16 = "off" if path else "none"
    gpu = None
    if current.type == "cuda":
        gpu = torch.cuda.get_device_name(current)
    elif current.type == "mps":
        gpu = "Apple MPS"
    return {
        "cpu": cpu_model(),
        "cores_used": torch.get_num_threads(),
        "cores_available": available,
        "bfloat16": bfloat16,
        "precision": str(dtype).removeprefix("torch."),
        "gpu": gpu,
        "torch": torch.__version__,
    }


def describe_hardware(hardware: dict[str, Any] | str) -> str:
    """One line for a table, e.g. "AMD EPYC, 2 of 2 cores, bfloat16 AVX512-BF16".
    Files written before the hardware was recorded in detail hold a string: shown as it is."""
    if isinstance(hardware, str):
        return hardware
    text = f"{hardware['cpu']}, {hardware['cores_used']} of {hardware['cores_available']} cores"
    text += f", bfloat16 {hardware['bfloat16']}"
    if hardware.get("gpu"):
        text += f", GPU {hardware['gpu']}"
    if hardware.get("precision", "bfloat16") != "bfloat16":
        text += f", {hardware['precision']}"
    return text


def check_name(notebook: str) -> str:
    """``notebook`` if it is a plain file stem (letters, digits, ``_``, ``-``), so that a
    result can never be written outside the results folder; else a ``ValueError``."""
    if not isinstance(notebook, str) or not NAME.fullmatch(notebook):
        raise ValueError(
            f"notebook={notebook!r} is not a results name; expected the notebook's file stem, "
            "letters, digits, '_' and '-' only, e.g. '01_supervised_baseline'"
        )
    return notebook


def _plain(value: Any, where: str, nulls: dict[str, str]) -> Any:
    """``value`` as strict JSON stores it: numpy and 0-d tensor numbers become Python
    numbers, NaN and infinities become None with the reason recorded in ``nulls``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isfinite(value):
            return value
        nulls[where] = f"was {value}"
        return None
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]", nulls) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {str(key): _plain(item, f"{where}.{key}", nulls) for key, item in value.items()}
    raise TypeError(f"{where} = {value!r} ({type(value).__name__}) cannot be saved; use numbers, strings, lists, dicts")


def save(
    notebook: str,
    metrics: dict[str, Any],
    *,
    sources: list[str],
    wall_seconds: float,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write ``results/<notebook>.json`` (``results/smoke/`` in the smoke profile) atomically.

    It records the profile, where each dataset came from, the metrics, the wall
    time, the hardware and the configuration, so a number can be traced to its run.
    A NaN or infinite number is stored as null, and ``nulls`` says which and why.
    """
    path = results_dir() / f"{check_name(notebook)}.json"
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict of name -> number, got {metrics!r}")
    if not isinstance(sources, list | tuple) or not all(isinstance(source, str) for source in sources):
        raise TypeError(f"sources must be a list of strings (each dataset's source), got {sources!r}")
    checks.number("wall_seconds", wall_seconds, 0)
    if not isinstance(config, dict | None):
        raise TypeError(f"config must be a dict of settings or None, got {config!r}")
    nulls: dict[str, str] = {}
    record = {
        "notebook": notebook,
        "profile": profile(),
        "datasets": _plain(sources, "sources", nulls),
        "metrics": _plain(metrics, "metrics", nulls),
        "wall_seconds": round(float(wall_seconds), 1),
        "hardware": hardware(),
        "config": _plain(config or {}, "config", nulls),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if nulls:
        record["nulls"] = nulls
        print(f"Warning: saved as null (not a finite number): {', '.join(f'{k} {v}' for k, v in nulls.items())}")
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=2, allow_nan=False)
        f.write("\n")
    return path


def read(path: Path) -> dict[str, Any]:
    """The record in the results file ``path``, its profile under the current name (``cpu``
    is read as ``laptop``, ``gpu`` as ``full``); a damaged file is a ``ValueError`` naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not a readable results file ({error}); run its notebook again") from error
    except OSError as error:  # a folder where the file should be, no permission
        raise ValueError(f"cannot read the results file {path} ({error.strerror or error})") from error
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise ValueError(f"{path} is not a results file: expected a JSON object with 'metrics'; run its notebook again")
    nulls, hardware = record.get("nulls", {}), record.get("hardware", "")
    forms = {
        "datasets": _strings(record.get("datasets", [])),
        "nulls": isinstance(nulls, dict) and _strings(list(nulls.values())),
        "hardware": isinstance(hardware, str) or (isinstance(hardware, dict) and HARDWARE_KEYS <= hardware.keys()),
        "profile": isinstance(record.get("profile", ""), str),
        "finished": isinstance(record.get("finished", ""), str),
        "wall_seconds": isinstance(record.get("wall_seconds"), int | float | None),
    }
    wrong = [name for name, right in forms.items() if not right]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)} not in the form save() writes; run its notebook again")
    if record.get("profile") in OLD_PROFILE_NAMES:  # the same recipes under their new name: "cpu" runs are laptop's
        record["profile"] = OLD_PROFILE_NAMES[record["profile"]]
    return record


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def load(notebook: str) -> dict[str, Any] | None:
    """The saved record of ``notebook`` in the current profile, or None if there is none."""
    path = results_dir() / f"{check_name(notebook)}.json"
    if not path.exists():
        return None
    record = read(path)
    return record if record.get("profile") == profile() else None
