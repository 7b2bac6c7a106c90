"""Datasets held whole in memory as uint8 tensors, found on disk or downloaded.

>>> train = load_dataset("fashion_mnist", "train")
>>> train.images.shape, train.images.dtype, train.source
(torch.Size([60000, 1, 28, 28]), torch.uint8, '...')

What the course knows about each dataset (splits, classes, shape, where it may
be, how it is fetched) is one entry of :data:`CATALOGUE`, in :mod:`.catalogue`;
the readers of the on-disk formats are in :mod:`.formats`.
``python -m course_utils.data list|check|download [names...]`` does the same
from a shell.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from course_utils import checks
from course_utils.runtime import data_dir as default_data_dir
from course_utils.runtime import profile

from . import catalogue
from .catalogue import CATALOGUE, DatasetInfo, Location, dataset_info
from .formats import DataFormatError
from .synthetic import synthetic_standin

# Views of the catalogue, for code that only needs one fact.
CLASSES: dict[str, list[str]] = {name: list(info.classes) for name, info in CATALOGUE.items()}
SPLITS: dict[str, tuple[str, ...]] = {name: info.splits for name, info in CATALOGUE.items()}

# A download larger than this starts only when asked for: by ``download_missing=True`` or
# ``python -m course_utils.data download NAME``, never by a notebook finding the data missing.
ASK_BEFORE_MB = 1000

__all__ = [
    "CATALOGUE",
    "CLASSES",
    "SPLITS",
    "DataFormatError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "ImageDataset",
    "first_k",
    "hold_out",
    "load_dataset",
    "per_class",
    "synthetic_standin",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked and could not be downloaded."""


class ImageDataset(Dataset):
    """A whole split in memory: ``images`` uint8 (N, C, H, W), ``targets`` int64 (N,).

    ``targets`` is -1 for unlabeled images, else an index into ``classes``.
    ``source`` says where the data came from.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: list[str], source: str):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if targets.shape != (len(images),):
            raise ValueError(f"targets must have shape ({len(images)},), got {tuple(targets.shape)}")
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise ValueError(f"targets must be integer class indices, got {targets.dtype}")
        if len(targets) and (targets.min() < -1 or targets.max() >= len(classes)):
            raise ValueError(
                f"targets must lie in 0..{len(classes) - 1} (or -1 for unlabeled), "
                f"got values from {int(targets.min())} to {int(targets.max())}"
            )
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


def _split_info(name: str, split: str) -> DatasetInfo:
    info = dataset_info(name)
    if split not in info.splits:
        raise ValueError(f"{name} has no split {split!r}; choose one of {', '.join(info.splits)}")
    return info


def data_root(data_dir: Path | str | None = None) -> Path:
    """``data_dir`` if given, else ``COURSE_DATA_DIR`` (default ``data/``); a file there is a ValueError."""
    root = Path(data_dir) if data_dir else default_data_dir()
    if root.exists() and not root.is_dir():
        raise ValueError(f"the data directory {root} is a file, not a folder (set by data_dir or COURSE_DATA_DIR)")
    return root


def fetch_command(name: str) -> str:
    """The shell command that fetches ``name`` into the data directory."""
    return f"python -m course_utils.data download {name}"


def find(name: str, split: str, data_dir: Path | str | None = None) -> Location | None:
    """The first catalogued :class:`~course_utils.data.catalogue.Location` holding this split, or None."""
    info = _split_info(name, split)
    root = data_root(data_dir)
    return next((location for location in info.locations if location.present(root, split)), None)


def load_from_disk(name: str, split: str, data_dir: Path | str | None = None) -> ImageDataset | None:
    """The split read from the first place that holds it, or None: never downloads, never substitutes.

    A file that is there but cannot be read raises :class:`DataFormatError` naming it.
    """
    info = _split_info(name, split)
    root = data_root(data_dir)
    location = find(name, split, root)
    if location is None:
        return None
    try:
        images, targets = location.read(location.folder(root), split, info.classes)
    except OSError as error:  # no permission, a folder where a file should be, a file gone since found
        where = error.filename or location.describe(root)
        raise DataFormatError(f"cannot read {where}: {error.strerror or error}") from error
    if tuple(images.shape[1:]) != info.shape:
        raise DataFormatError(
            f"{location.describe(root)} holds {split} images of shape {tuple(images.shape[1:])}, expected {info.shape}"
        )
    return ImageDataset(images, targets, list(info.classes), f"{name} {split} from {location.source(root)}")


def fetch_ways(name: str) -> list[str]:
    """Every way to get ``name``: the download command (with its size), then any other."""
    info = dataset_info(name)
    command = f"{fetch_command(name)}   ({info.download_size} download)"
    return [command, info.fetch_hint] if info.fetch_hint else [command]


def places(name: str, data_dir: Path) -> list[str]:
    """Every place ``name`` is looked for, in order, described."""
    return [location.describe(data_dir) for location in dataset_info(name).locations]


def not_found_message(name: str, split: str, data_dir: Path, reason: str = "") -> str:
    """Where ``name`` was looked for, why it was not fetched, and every way to fetch it."""
    looked = "\n".join(f"  - {place}" for place in places(name, data_dir))
    ways = "\nor:\n  ".join(fetch_ways(name))
    return (
        f"{name} ({split} split) not found. Looked in:\n{looked}\n{reason}Fetch it with:\n  {ways}\n"
        "(set COURSE_DATA_DIR to use another data directory)"
    )


def load_dataset(
    name: str, split: str, data_dir: Path | str | None = None, download_missing: bool | None = None
) -> ImageDataset:
    """Load a whole split into memory.

    Looks in the data directory (``COURSE_DATA_DIR``, default ``data/``) in
    torchvision's layouts, then in the other places this dataset may be (the
    Debian package for FashionMNIST, an ImageFolder tree for CIFAR-10). A missing
    split is downloaded with torchvision when ``download_missing`` is True; when it
    is None (the default) only outside the ``smoke`` profile and only if the download
    is under ``ASK_BEFORE_MB`` (STL10's 2.6 GB must be asked for). Still missing: in
    ``smoke`` the synthetic stand-in is returned with a warning; otherwise
    :class:`DatasetNotFoundError` says where it looked and how to fetch it.
    """
    info = _split_info(name, split)
    if download_missing not in (None, True, False):
        raise TypeError(f"download_missing must be None, True or False, got {download_missing!r}")
    root = data_root(data_dir)
    smoke = profile() == "smoke"
    dataset = load_from_disk(name, split, root)
    reason = ""
    if dataset is None and (not smoke if download_missing is None else download_missing):
        if download_missing is None and info.download_mb > ASK_BEFORE_MB:
            reason = f"It is a {info.download_size} download, so it is not started without being asked for.\n"
        else:
            try:
                catalogue.download(name, root, split)
            except Exception as error:  # network errors come in many types; the message says which
                reason = f"Download failed: {type(error).__name__}: {error}\n"
            else:
                dataset = load_from_disk(name, split, root)
    if dataset is not None:
        return dataset
    if smoke:
        warnings.warn(
            f"{name} {split} not found; the smoke profile uses the SYNTHETIC stand-in instead. "
            f"Its numbers say nothing about {name}.",
            stacklevel=2,
        )
        print(f"NOTE: using the synthetic stand-in for {name} ({split}): the real data is missing.")
        images, targets = synthetic_standin(name, split)
        return ImageDataset(images, targets, list(info.classes), f"SYNTHETIC stand-in for {name} {split}")
    raise DatasetNotFoundError(not_found_message(name, split, root, reason))


def first_k(dataset: ImageDataset, k: int) -> ImageDataset:
    """The first ``k`` items, in file order (the FashionMNIST source uses ``k=1000``)."""
    k = checks.count("k (first_k)", k, 1, len(dataset))
    return dataset.subset(torch.arange(k), f"first {k}")


def hold_out(
    dataset: ImageDataset, k: int, seed: int = 0, after: int = 0, *, by_class: bool = True, keep: int | None = None
) -> tuple[ImageDataset, ImageDataset]:
    """Split off a validation set: ``k`` items of every class (``k`` in all when not
    ``by_class``) drawn at random (seeded) among the items from index ``after`` on, so the
    first ``after`` stay in training.

    Returns ``(rest, held_out)``: by class both in file order, otherwise in the order drawn.
    ``keep`` trims the rest to the first ``after`` items and the next ``keep`` items of the
    draw (of every class, when ``by_class``). Training, tuning and the choice of an epoch use
    these two; the test split is left for the final numbers only.
    """
    after = checks.count("after", after, 0, len(dataset) - 1)
    rest, held = _draw(dataset, k, seed, after, by_class, keep)
    how = f"{k} {'per class' if by_class else 'in all'} held out (seed {seed})"
    return dataset.subset(rest, f"without {how}"), dataset.subset(held, how)


def per_class(dataset: ImageDataset, k: int, seed: int = 0) -> ImageDataset:
    """``k`` items of every class, drawn with a fixed ``seed`` (same seed, same items)."""
    return dataset.subset(_draw(dataset, k, seed, 0, True, 0)[1], f"{k} per class (seed {seed})")


def _draw(
    dataset: ImageDataset, k: int, seed: int, after: int, by_class: bool, keep: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of :func:`hold_out`'s rest and held-out items, from one seeded shuffle of the
    items from ``after`` on: of every class (or of all) the first ``k`` drawn are held out."""
    k = checks.count(f"k (items {'per class' if by_class else 'held out'})", k)
    seed = checks.count("seed", seed, 0, 2**63 - 1)
    order = torch.randperm(len(dataset) - after, generator=torch.Generator().manual_seed(seed)) + after
    if by_class and (dataset.targets < 0).any():
        raise ValueError("per_class needs a labelled dataset; this one has unlabeled (-1) targets")
    groups = [order[dataset.targets[order] == c] for c in range(len(dataset.classes))] if by_class else [order]
    wanted = k + (0 if keep is None else checks.count("keep", keep, 0))
    sizes = [len(group) for group in groups]
    if (fewest := min(sizes)) < wanted:
        where = f"per class, but class {dataset.classes[sizes.index(fewest)]!r}" if by_class else "items, but the data"
        raise ValueError(f"asked for {wanted} {where} has only {fewest}")
    end = None if keep is None else k + keep
    held = torch.cat([group[:k] for group in groups])
    rest = torch.cat([torch.arange(after), *(group[k:end] for group in groups)])
    return (rest.sort().values, held.sort().values) if by_class else (rest, held)
