"""Each notebook's headline numbers, written to ``results/<notebook>.json``."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from course_utils.runtime import atomic_write, device, profile, results_dir


def hardware() -> str:
    """A one-line description of the machine: CPU count and the GPU if one is used."""
    text = f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"
    current = device()
    if current.type == "cuda":
        text += f", {torch.cuda.get_device_name(current)}"
    elif current.type == "mps":
        text += ", Apple MPS"
    return text


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
    """
    record = {
        "notebook": notebook,
        "profile": profile(),
        "datasets": sources,
        "metrics": metrics,
        "wall_seconds": round(wall_seconds, 1),
        "hardware": hardware(),
        "config": config or {},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = results_dir() / f"{notebook}.json"
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    return path


def load(notebook: str) -> dict[str, Any] | None:
    """The saved record of ``notebook`` in the current profile, or None if there is none."""
    path = results_dir() / f"{notebook}.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("profile") == profile() else None
