"""Fixtures: an isolated environment per test, and tiny datasets written in the
real on-disk layouts (idx, CIFAR-10 pickles, STL10 binaries, ImageFolder)."""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_png

# The notebooks' stored outputs were made on these datasets; nbval compares them.
NOTEBOOK_DATA = ("fashion_mnist", "mnist", "cifar10")


def _missing_data() -> list[str]:
    from course_utils.data import SPLITS, find

    return [name for name in NOTEBOOK_DATA if not all(find(name, split) for split in SPLITS[name])]


def _missing_data_line(missing: list[str]) -> str:
    from course_utils.data import fetch_command
    from course_utils.runtime import data_dir

    return (
        f"MISSING DATA: {', '.join(missing)} not in {data_dir()}, so the notebooks run on the synthetic "
        f"stand-in and their outputs differ from the stored ones (nbval); fetch them with: "
        f"{fetch_command(' '.join(NOTEBOOK_DATA))}"
    )


def pytest_report_header(config) -> list[str]:
    """With ``--nbval``, say at the start of a run, and again at its end if it failed, which
    datasets are missing."""
    missing = _missing_data() if config.getoption("nbval", False) else []
    return [_missing_data_line(missing)] if missing else []


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if exitstatus != 0 and config.getoption("nbval", False) and (missing := _missing_data()):
        terminalreporter.write_line(_missing_data_line(missing), red=True, bold=True)


@pytest.fixture(autouse=True)
def close_figures():
    """Close every matplotlib figure a test left open (when the test used pyplot at all)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own data, results and checkpoint folders and the laptop profile
    (on the device and in the precision this machine has, unless a test pretends otherwise)."""
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    for name in ("COURSE_DEVICE", "COURSE_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    # No test may touch the Debian package or the network unless it asks to.
    monkeypatch.setattr("course_utils.data.catalogue.DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setattr("course_utils.data.catalogue.download", _no_network)
    (tmp_path / "data").mkdir()
    return tmp_path


def _no_network(name, data_dir, split):
    raise ConnectionError("network disabled in tests")


def random_images(n: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format: two zero bytes, type 0x08 (ubyte), ndim, big-endian dims, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_layout(raw: Path, n_train: int = 30, n_test: int = 20) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All four idx files in ``raw``; returns the arrays written per split."""
    written = {}
    for split, prefix, n in [("train", "train", n_train), ("test", "t10k", n_test)]:
        images = random_images(n, 1, 28, 28, seed=n)[:, 0]
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[split] = (images, labels)
    return written


def write_cifar_batches(root: Path, n_per_batch: int = 4) -> np.ndarray:
    """CIFAR-10's python layout: pickled dicts of row-major (N, 3072) uint8 + labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    all_images = []
    for i, name in enumerate(names):
        images = random_images(n_per_batch, 3, 32, 32, seed=i)
        all_images.append(images)
        entry = {"data": images.reshape(n_per_batch, -1), "labels": [(i + j) % 10 for j in range(n_per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return np.concatenate(all_images)


def write_stl10(root: Path, counts=(("train", 6), ("test", 4), ("unlabeled", 5))) -> dict[str, np.ndarray]:
    """STL10's binary layout: column-major 3x96x96 uint8 images, labels 1..10."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    written = {}
    for split, n in counts:
        images = random_images(n, 3, 96, 96, seed=n)  # (N, C, H, W)
        # On disk each channel is stored column by column, i.e. as (C, W, H).
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())
        written[split] = images
    return written


def write_image_folder(root: Path, classes: list[str], per_class: int = 2, size: int = 32) -> dict[str, np.ndarray]:
    """``root/<class>/<i>.png``; PNG is lossless, so the pixels can be compared exactly."""
    written = {}
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        images = random_images(per_class, 3, size, size, seed=c)
        for i, image in enumerate(images):
            (root / name / f"{i:04d}.png").write_bytes(encode_png(torch.from_numpy(image)).numpy().tobytes())
        written[name] = images
    return written
