"""Run profiles, devices, seeds and the folders the course writes to."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "laptop", "full")
# Earlier names of the profiles, still accepted (with a notice); also their checkpoint folders.
OLD_PROFILE_NAMES = {"cpu": "laptop", "gpu": "full"}
DEVICES = ("cpu", "cuda", "mps")
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


@cache
def _old_name_notice(old: str) -> None:
    new = OLD_PROFILE_NAMES[old]
    print(f"COURSE_PROFILE={old} is the old name of the {new} profile; set COURSE_PROFILE={new}", file=sys.stderr)


def profile() -> str:
    """The run profile, a training budget: ``COURSE_PROFILE`` if set, else ``laptop``.

    ``smoke`` is CI's: the whole notebook in about a minute, synthetic data allowed.
    ``laptop`` (the default, on every machine) takes at most 15 minutes a notebook on 2 CPU
    cores; ``full`` follows the source tutorials' recipes and datasets. The device is separate
    (:func:`device`). The old names ``cpu`` and ``gpu`` still work, with a one-line notice.
    """
    raw = os.environ.get("COURSE_PROFILE", "")
    value = raw.strip().lower()
    if not value:
        return "laptop"
    if value in OLD_PROFILE_NAMES:
        _old_name_notice(value)
        return OLD_PROFILE_NAMES[value]
    if value not in PROFILES:
        raise ValueError(f"COURSE_PROFILE={raw!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return value


def pick(*, smoke: T, laptop: T, full: T) -> T:
    """The value for the current profile, e.g. ``EPOCHS = pick(smoke=1, laptop=15, full=100)``."""
    return {"smoke": smoke, "laptop": laptop, "full": full}[profile()]


def _available(device_type: str) -> bool:
    return {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}[device_type]


def device() -> torch.device:
    """Where the models train, whatever the profile: ``COURSE_DEVICE`` (``cpu``, ``cuda`` or
    ``mps``) if set, else the best device present: CUDA, then Apple's MPS, then the CPU."""
    raw = os.environ.get("COURSE_DEVICE", "")
    value = raw.strip().lower()
    if not value:
        return torch.device(_accelerator() or "cpu")
    if value not in DEVICES:
        raise ValueError(f"COURSE_DEVICE={raw!r} is not a device; choose one of {', '.join(DEVICES)} or leave it unset")
    if not _available(value):
        raise RuntimeError(
            f"COURSE_DEVICE={value} but PyTorch finds no {value.upper()} device on this machine; "
            f"unset COURSE_DEVICE to train on {_accelerator() or 'cpu'}"
        )
    return torch.device(value)


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def env_flag(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/0, true/false, yes/no or on/off in any case;
    unset or empty gives ``default``, anything else is an error that names the variable."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return default
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError(f"{name}={raw!r} is neither on nor off; use one of {'/'.join(_ON)} or {'/'.join(_OFF)}")


def retrain_requested() -> bool:
    """``COURSE_RETRAIN``: train again even when a cached checkpoint matches."""
    return env_flag("COURSE_RETRAIN", False)


def bfloat16_path(device_type: str) -> str | None:
    """Which native bfloat16 arithmetic ``device_type`` has: ``"AMX"`` or ``"AVX512-BF16"``
    on an x86 CPU (AMX first: oneDNN uses it when both are there), ``"CUDA"`` on an NVIDIA
    GPU from Ampere on (compute capability 8.0), else None (bfloat16 would be emulated and
    slower than float32)."""
    if device_type == "cuda":
        # not torch.cuda.is_bf16_supported(): by default it also says yes where bfloat16 is emulated
        return "CUDA" if torch.cuda.get_device_capability() >= (8, 0) else None
    if device_type == "cpu":
        # private probes that older torch releases (still allowed by requirements.txt) lack
        for path, name in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")):
            probe = getattr(torch.cpu, name, None)
            if probe is not None and probe():
                return path
    return None


@cache
def native_precision(device_type: str) -> torch.dtype:
    """The fastest training precision ``device_type`` computes natively: bfloat16 where
    :func:`bfloat16_path` finds it, float16 on older CUDA cards from Volta on (capability
    7.x: V100, T4), else float32. On Apple's MPS float32: PyTorch's autocast supports MPS
    only since 2.5 and its gradient scaler did not run there at first."""
    if bfloat16_path(device_type) is not None:
        return torch.bfloat16
    if device_type == "cuda" and torch.cuda.get_device_capability() >= (7, 0):
        return torch.float16
    return torch.float32


def precision(device: torch.device) -> torch.dtype:
    """The precision training runs in on ``device``: ``COURSE_PRECISION`` (``bf16``, ``fp16``
    or ``fp32``) if set to one, else (unset or ``auto``) :func:`native_precision`;
    ``COURSE_BF16=0`` (the older switch) means ``fp32`` when ``COURSE_PRECISION`` is not set."""
    raw = os.environ.get("COURSE_PRECISION", "")
    value = raw.strip().lower()
    if value and value != "auto":
        if value not in PRECISIONS:
            raise ValueError(
                f"COURSE_PRECISION={raw!r} is not a precision; choose one of auto, {', '.join(PRECISIONS)}"
            )
        return PRECISIONS[value]
    if not env_flag("COURSE_BF16", True):
        return torch.float32
    return native_precision(device.type)


def mixed_precision(device: torch.device) -> AbstractContextManager:
    """Autocast to :func:`precision` (bfloat16 or float16) on ``device``, or a no-op in
    float32. Convolutions and matrix products then run in the lower precision, about twice
    as fast; losses should be computed in float32 outside the block. Training in float16
    also needs :func:`grad_scaler`."""
    dtype = precision(device)
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """The gradient scaler a training loop on ``device`` needs: active in float16 (whose
    small gradients would otherwise underflow to zero), a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision(device) == torch.float16)


def describe_precision(device: torch.device) -> str:
    """One line, e.g. "bfloat16 (AVX512-BF16)", "float16 with a gradient scaler" or "float32"."""
    dtype = precision(device)
    if dtype == torch.bfloat16:
        path = bfloat16_path(device.type)
        return f"bfloat16 ({path})" if path else "bfloat16 (emulated: COURSE_PRECISION=bf16)"
    if dtype == torch.float16:
        return "float16 with a gradient scaler"
    return "float32"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _folder(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or REPO_ROOT / default)


def data_dir() -> Path:
    """Where datasets are looked for and downloaded: ``COURSE_DATA_DIR``, default ``data/``."""
    return _folder("COURSE_DATA_DIR", "data")


def results_root() -> Path:
    """Where the measured results are: ``COURSE_RESULTS_DIR``, default ``results/``."""
    return _folder("COURSE_RESULTS_DIR", "results")


def results_dir() -> Path:
    """Where notebooks write metrics. Smoke runs go to ``results/smoke/`` so that they
    never overwrite the measured results the README quotes."""
    return results_root() / "smoke" if profile() == "smoke" else results_root()


def checkpoint_root() -> Path:
    """The checkpoint cache of every profile: ``COURSE_CHECKPOINT_DIR``, default ``checkpoints/``."""
    return _folder("COURSE_CHECKPOINT_DIR", "checkpoints")


def checkpoint_dir() -> Path:
    """Where trained weights are cached: ``COURSE_CHECKPOINT_DIR``, default ``checkpoints/<profile>``."""
    return checkpoint_root() / profile()


def checkpoint_folders(profile: str) -> list[Path]:
    """The folders holding ``profile``'s checkpoints: its own, then those of its old names
    (``checkpoints/cpu/`` for ``laptop``), where earlier runs left theirs."""
    names = [profile] + [old for old, new in OLD_PROFILE_NAMES.items() if new == profile]
    return [checkpoint_root() / name for name in names]


def checkpoint_file(name: str) -> Path:
    """The checkpoint ``name`` of the current profile: the first ``<name>.pt`` that exists in
    :func:`checkpoint_folders`, so that earlier runs stay loadable, else the one in ``checkpoint_dir()``."""
    paths = [folder / f"{name}.pt" for folder in checkpoint_folders(profile())]
    return next((path for path in paths if path.exists()), paths[0])


FOLDER_VARIABLES = ("COURSE_DATA_DIR", "COURSE_CHECKPOINT_DIR", "COURSE_RESULTS_DIR")


def shown_path(path: Path | str) -> str:
    """``path`` as the course prints and records it, without the machine's folders: relative
    to the course folder (``checkpoints/laptop/x.pt``), else relative to the folder variable
    that holds it (``$COURSE_DATA_DIR/cifar10``), else as it is."""
    path = Path(path).absolute()
    bases = [("", REPO_ROOT)]
    bases += [(f"${name}/", Path(os.environ[name])) for name in FOLDER_VARIABLES if os.environ.get(name)]
    for prefix, base in bases:
        if path.is_relative_to(base.absolute()):
            return prefix + path.relative_to(base.absolute()).as_posix()
    return str(path)


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a probe file into it; raises the ``OSError``
    (naming the folder) now, before hours of work would be lost to it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".probe"):
        pass


@contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` through a temporary file in the same folder that replaces it only
    when the block finishes: a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = tempfile.NamedTemporaryFile(mode, dir=path.parent, suffix=".tmp", delete=False)
    try:
        with f:
            yield f
        os.chmod(f.name, 0o644)  # NamedTemporaryFile creates owner-only files
        os.replace(f.name, path)
    except BaseException:  # a full disk, a folder where the file goes: no stray temporary file either
        if os.path.exists(f.name):
            os.unlink(f.name)
        raise
