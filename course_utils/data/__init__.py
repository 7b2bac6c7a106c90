"""Datasets held whole in memory as uint8 tensors, found on disk or downloaded.

>>> train = load_dataset("fashion_mnist", "train")
>>> train.images.shape, train.images.dtype, train.source
(torch.Size([60000, 1, 28, 28]), torch.uint8, '...')

``python -m course_utils.data list|check|download [names...]`` does the same
from a shell.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from course_utils.runtime import data_dir as default_data_dir
from course_utils.runtime import profile

from . import sources
from .sources import CLASSES, LOCATIONS, DataFormatError
from .synthetic import synthetic_standin

SPLITS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("train", "test"),
    "mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "stl10": ("train", "test", "unlabeled"),
}

__all__ = [
    "CLASSES",
    "SPLITS",
    "DataFormatError",
    "DatasetNotFoundError",
    "ImageDataset",
    "first_k",
    "load_dataset",
    "per_class",
    "synthetic_standin",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked and could not be downloaded."""


class ImageDataset(Dataset):
    """A whole split in memory: ``images`` uint8 (N, C, H, W), ``targets`` int64 (N,).

    ``targets`` is -1 for unlabeled images. ``source`` says where the data came from.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: list[str], source: str):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if targets.shape != (len(images),):
            raise ValueError(f"targets must have shape ({len(images)},), got {tuple(targets.shape)}")
        self.images = images
        self.targets = targets.long()
        self.classes = list(classes)
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} images of {tuple(self.images.shape[1:])}, {len(self.classes)} classes)"

    def subset(self, indices: torch.Tensor, note: str) -> ImageDataset:
        """The images at ``indices``; ``note`` is added to ``source``."""
        return ImageDataset(self.images[indices], self.targets[indices], self.classes, f"{self.source}, {note}")


def _check_name(name: str, split: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(SPLITS)}")
    if split not in SPLITS[name]:
        raise ValueError(f"{name} has no split {split!r}; choose one of {', '.join(SPLITS[name])}")


def fetch_command(name: str) -> str:
    """The shell command that fetches ``name`` into the data directory."""
    return f"python -m course_utils.data download {name}"


def find(name: str, split: str, data_dir: Path | None = None):
    """The first :class:`~course_utils.data.sources.Location` holding this split, or None."""
    _check_name(name, split)
    root = Path(data_dir) if data_dir else default_data_dir()
    return next((loc for loc in LOCATIONS[name] if loc.present(root, split)), None)


def not_found_message(name: str, split: str, data_dir: Path, reason: str = "") -> str:
    looked = "\n".join(f"  - {loc.describe(data_dir)}" for loc in LOCATIONS[name])
    hint = f"\nFetch it with:\n  {fetch_command(name)}"
    if name == "fashion_mnist":
        hint += "\nor, on Debian/Ubuntu:\n  sudo apt-get install dataset-fashion-mnist"
    hint += "\n(set COURSE_DATA_DIR to use another data directory)"
    return f"{name} ({split} split) not found. Looked in:\n{looked}\n{reason}{hint}"


def load_dataset(
    name: str, split: str, data_dir: Path | str | None = None, download_missing: bool | None = None
) -> ImageDataset:
    """Load a whole split into memory.

    Looks in the data directory (``COURSE_DATA_DIR``, default ``data/``) in
    torchvision's layouts, then in the other places this dataset may be (the
    Debian package for FashionMNIST, an ImageFolder tree for CIFAR-10), then
    downloads with torchvision unless ``download_missing`` is False (the default
    is to download outside the ``smoke`` profile). Still missing: in ``smoke`` the
    synthetic stand-in is returned with a warning; otherwise
    :class:`DatasetNotFoundError` says where it looked and how to fetch it.
    """
    _check_name(name, split)
    root = Path(data_dir) if data_dir else default_data_dir()
    smoke = profile() == "smoke"
    location = find(name, split, root)
    reason = ""
    if location is None and (not smoke if download_missing is None else download_missing):
        try:
            sources.download(name, root, split)
            location = find(name, split, root)
        except Exception as error:  # network errors come in many types; the message says which
            reason = f"Download failed: {type(error).__name__}: {error}\n"
    if location is not None:
        images, targets = location.read(root, split)
        return ImageDataset(images, targets, CLASSES[name], f"{name} {split} from {location.describe(root)}")
    if smoke:
        warnings.warn(
            f"{name} {split} not found; the smoke profile uses the SYNTHETIC stand-in instead. "
            f"Its numbers say nothing about {name}.",
            stacklevel=2,
        )
        print(f"NOTE: using the synthetic stand-in for {name} ({split}): the real data is missing.")
        images, targets = synthetic_standin(name, split)
        return ImageDataset(images, targets, CLASSES[name], f"SYNTHETIC stand-in for {name} {split}")
    raise DatasetNotFoundError(not_found_message(name, split, root, reason))


def first_k(dataset: ImageDataset, k: int) -> ImageDataset:
    """The first ``k`` items, in file order (the FashionMNIST source uses ``k=1000``)."""
    if not 0 < k <= len(dataset):
        raise ValueError(f"first_k needs 0 < k <= {len(dataset)}, got {k}")
    return dataset.subset(torch.arange(k), f"first {k}")


def per_class(dataset: ImageDataset, k: int, seed: int = 0) -> ImageDataset:
    """``k`` items of every class, drawn with a fixed ``seed`` (same seed, same items)."""
    labels = dataset.targets
    if (labels < 0).any():
        raise ValueError("per_class needs a labelled dataset; this one has unlabeled (-1) targets")
    counts = torch.bincount(labels, minlength=len(dataset.classes))
    if k < 1 or k > counts.min():
        smallest = int(counts.argmin())
        raise ValueError(
            f"asked for {k} per class, but class {dataset.classes[smallest]!r} has only {int(counts[smallest])}"
        )
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = torch.cat([order[labels[order] == c][:k] for c in range(len(dataset.classes))])
    return dataset.subset(chosen.sort().values, f"{k} per class (seed {seed})")
