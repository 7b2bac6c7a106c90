"""Readers for the on-disk formats: idx (MNIST, FashionMNIST, plain or gzipped),
CIFAR-10's python batches, STL10's binaries and ImageFolder trees of image files.

Each reader takes the folder that holds a dataset, a split and the dataset's class
names, and returns uint8 images (N, C, H, W) and int64 labels (-1 for unlabeled
images). Every check names the file it failed on, so that a truncated, corrupt or
mislabelled file is reported as such instead of surfacing deep inside torch.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tvd
from torchvision.datasets.utils import check_integrity
from torchvision.io import ImageReadMode, decode_image

Arrays = tuple[torch.Tensor, torch.Tensor]


class DataFormatError(RuntimeError):
    """A dataset file exists but cannot be read (unreadable, truncated, corrupt, wrong layout)."""


def check_labels(labels: np.ndarray, low: int, high: int, path: Path) -> None:
    """Every label must lie in ``low..high``; a byte outside names the file it came from."""
    outside = np.flatnonzero((labels < low) | (labels > high))
    if len(outside):
        first = int(outside[0])
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise DataFormatError(
            f"{path}: label {int(labels[first])} at position {first}{more} is outside {low}..{high}: "
            "corrupt or not this dataset's file"
        )


def check_counts(images: np.ndarray | torch.Tensor, labels: np.ndarray, path: Path) -> None:
    if len(images) != len(labels):
        raise DataFormatError(f"{path} has {len(labels)} labels for {len(images)} images")


def _check_md5(path: Path, md5: str) -> None:
    if not check_integrity(path, md5):
        raise DataFormatError(f"{path} fails its MD5 check: truncated, corrupt or not the official file")


# --- idx (MNIST, FashionMNIST) -------------------------------------------------------------

IDX_PREFIX = {"train": "train", "test": "t10k"}


def idx_files(split: str, suffix: str = "") -> list[str]:
    """The image and label file names of a split, e.g. ``t10k-labels-idx1-ubyte.gz``."""
    prefix = IDX_PREFIX[split]
    return [f"{prefix}-images-idx3-ubyte{suffix}", f"{prefix}-labels-idx1-ubyte{suffix}"]


def read_idx(path: Path) -> np.ndarray:
    """One idx file of unsigned bytes (gunzipped first if its name ends in ``.gz``)."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path} is truncated or corrupt: {error}") from error
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataFormatError(f"{path} is not an idx file of unsigned bytes (bad header {raw[:4]!r})")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataFormatError(f"{path} is truncated inside its header")
    dims = np.frombuffer(raw[4:start], dtype=">u4").astype(np.int64)
    expected = start + int(np.prod(dims))
    if len(raw) != expected:
        raise DataFormatError(f"{path} has {len(raw)} bytes but its header promises {expected}: truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(tuple(dims))


def idx_reader(suffix: str = ""):
    """A reader for the four idx files of MNIST or FashionMNIST, named with ``suffix`` (``""`` or ``".gz"``)."""

    def read(folder: Path, split: str, classes: Sequence[str]) -> Arrays:
        image_file, label_file = (folder / name for name in idx_files(split, suffix))
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1:
            raise DataFormatError(f"{image_file} and {label_file} must hold (N, H, W) images and (N,) labels")
        check_counts(images, labels, label_file)
        check_labels(labels, 0, len(classes) - 1, label_file)
        return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    return read


# --- CIFAR-10 python batches ---------------------------------------------------------------

CIFAR_BATCHES = {"train": tvd.CIFAR10.train_list, "test": tvd.CIFAR10.test_list}  # [file name, md5] pairs


def read_cifar_batches(folder: Path, split: str, classes: Sequence[str]) -> Arrays:
    """The pickled batches of a split, checked against torchvision's MD5 sums."""
    images, labels = [], []
    for name, md5 in CIFAR_BATCHES[split]:
        path = folder / name
        _check_md5(path, md5)
        with open(path, "rb") as f:
            try:
                entry = pickle.load(f, encoding="latin1")
                data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                batch_labels = np.asarray(entry["labels"], dtype=np.int64)
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
                raise DataFormatError(f"{path} is not a CIFAR-10 batch: {type(error).__name__}: {error}") from error
        check_counts(data, batch_labels, path)
        check_labels(batch_labels, 0, len(classes) - 1, path)
        images.append(data)
        labels.append(batch_labels)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


# --- STL10 binaries ------------------------------------------------------------------------

STL10_FILES = {
    "train": ["train_X.bin", "train_y.bin"],
    "test": ["test_X.bin", "test_y.bin"],
    "unlabeled": ["unlabeled_X.bin"],
}
_STL10_MD5 = dict(tvd.STL10.train_list + tvd.STL10.test_list)
_STL10_IMAGE_BYTES = 3 * 96 * 96


def read_stl10(folder: Path, split: str, classes: Sequence[str]) -> Arrays:
    """STL10's binaries: images stored column by column, labels 1..10 (none for ``unlabeled``)."""
    paths = [folder / name for name in STL10_FILES[split]]
    for path in paths:
        _check_md5(path, _STL10_MD5[path.name])
    image_file = paths[0]
    count, rest = divmod(image_file.stat().st_size, _STL10_IMAGE_BYTES)
    if rest or count == 0:
        raise DataFormatError(f"{image_file} is not a whole number of 96x96 RGB images: truncated or corrupt")
    # On disk each channel is stored column by column: (N, C, W, H).
    images = torch.from_numpy(np.fromfile(image_file, dtype=np.uint8).reshape(count, 3, 96, 96)).transpose(2, 3)
    if split == "unlabeled":
        return images, torch.full((count,), -1, dtype=torch.long)
    label_file = paths[1]
    labels = np.fromfile(label_file, dtype=np.uint8)
    check_counts(images, labels, label_file)
    check_labels(labels, 1, len(classes), label_file)
    return images, torch.from_numpy(labels.astype(np.int64) - 1)


# --- ImageFolder trees ---------------------------------------------------------------------


def read_image_folder(root: Path, classes: Sequence[str]) -> Arrays:
    """Decode every image under ``root/<class>/`` into one uint8 tensor (N, C, H, W).

    The class folders must be exactly ``classes``, none of them empty; each is read in
    sorted file order.
    """
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if found != sorted(classes):
        raise DataFormatError(f"{root} has class folders {found}, expected {sorted(classes)}")
    folder = tvd.ImageFolder(str(root), allow_empty=True)
    counts = np.bincount(np.asarray(folder.targets, dtype=np.int64), minlength=len(folder.classes))
    # A missing class would shift every later result without a word, so it is an error, not a warning.
    empty = [str(root / name) for name, count in zip(folder.classes, counts) if count == 0]
    if empty:
        raise DataFormatError(f"class folder(s) with no images: {', '.join(empty)}")
    images = []
    for path, _ in folder.samples:
        try:
            images.append(decode_image(path, mode=ImageReadMode.RGB))
        except RuntimeError as error:
            raise DataFormatError(f"cannot decode image {path}: {error}") from error
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise DataFormatError(f"{root} mixes image sizes {sorted(shapes)}")
    # ImageFolder numbers classes in sorted order; map them to the official order.
    official = torch.tensor([list(classes).index(name) for name in folder.classes])
    return torch.stack(images), official[torch.tensor(folder.targets, dtype=torch.long)]


def image_folder_reader(folder: Path, split: str, classes: Sequence[str]) -> Arrays:
    """``folder/<split>/<class>/*``, e.g. CIFAR-10 unpacked as JPEG or PNG files."""
    return read_image_folder(folder / split, classes)
