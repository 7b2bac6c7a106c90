"""Run profiles, devices, seeds and the folders the course writes to."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu")
REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


def profile() -> str:
    """The run profile: ``COURSE_PROFILE`` if set, else ``gpu`` with CUDA/MPS, else ``cpu``.

    ``smoke`` is CI's: the whole notebook in about a minute, synthetic data allowed.
    ``cpu`` fits a laptop (at most 15 minutes a notebook), ``gpu`` follows the sources.
    """
    raw = os.environ.get("COURSE_PROFILE", "")
    value = raw.strip().lower()
    if not value:
        return "gpu" if _accelerator() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"COURSE_PROFILE={raw!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return value


def pick(*, smoke: T, cpu: T, gpu: T) -> T:
    """The value for the current profile, e.g. ``EPOCHS = pick(smoke=1, cpu=15, gpu=100)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[profile()]


def device() -> torch.device:
    """The torch device for the current profile: CUDA or MPS for ``gpu``, else the CPU."""
    if profile() != "gpu":
        return torch.device("cpu")
    accelerator = _accelerator()
    if accelerator is None:
        raise RuntimeError("COURSE_PROFILE=gpu but neither CUDA nor MPS is available; use COURSE_PROFILE=cpu")
    return torch.device(accelerator)


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
    GPU from Ampere on, else None (bfloat16 would be emulated and slower than float32)."""
    if device_type == "cuda":
        return "CUDA" if torch.cuda.is_bf16_supported() else None
    if device_type == "cpu":
        # private probes that older torch releases (still allowed by requirements.txt) lack
        for path, name in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")):
            probe = getattr(torch.cpu, name, None)
            if probe is not None and probe():
                return path
    return None


@cache
def _native_bfloat16(device_type: str) -> bool:
    return bfloat16_path(device_type) is not None


def mixed_precision(device: torch.device) -> AbstractContextManager:
    """Autocast to bfloat16 where the hardware computes it natively (recent NVIDIA
    GPUs; CPUs with AVX512-BF16 or AMX), else a no-op. Convolutions and matrix
    products then run in bfloat16, about twice as fast; losses should be computed
    in float32 outside the block. ``COURSE_BF16=0`` turns it off."""
    if not env_flag("COURSE_BF16", True) or not _native_bfloat16(device.type):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


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


_FOLDER_VARIABLES = ("COURSE_DATA_DIR", "COURSE_CHECKPOINT_DIR", "COURSE_RESULTS_DIR")


def shown_path(path: Path | str) -> str:
    """``path`` as the course prints and records it, without the machine's folders: relative
    to the course folder (``checkpoints/laptop/x.pt``), else relative to the folder variable
    that holds it (``$COURSE_DATA_DIR/cifar10``), else as it is."""
    path = Path(path).absolute()
    bases = [("", REPO_ROOT)]
    bases += [(f"${name}/", Path(os.environ[name])) for name in _FOLDER_VARIABLES if os.environ.get(name)]
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
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, suffix=".tmp", delete=False) as f:
        try:
            yield f
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.chmod(f.name, 0o644)  # NamedTemporaryFile creates owner-only files
    os.replace(f.name, path)
