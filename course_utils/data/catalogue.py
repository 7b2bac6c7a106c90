"""The catalogue: one :class:`DatasetInfo` per dataset, and nothing about a dataset anywhere else.

An entry holds the splits, the class names, the image shape, the places the files
may be (in order; the first one holding a split wins), how torchvision fetches them
and how big that download is. Adding a dataset means adding one entry to
``CATALOGUE`` (and, for a new on-disk format, a reader in :mod:`.formats`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from torchvision import datasets as tvd

from course_utils.runtime import shown_path

from .formats import (
    CIFAR_BATCHES,
    STL10_FILES,
    Arrays,
    idx_files,
    idx_reader,
    image_folder_reader,
    read_cifar_batches,
    read_stl10,
)

Reader = Callable[[Path, str, Sequence[str]], Arrays]

MIRROR_VARIABLE = "COURSE_DATA_MIRROR"

# Ubuntu and Debian ship the original FashionMNIST files in this package.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class Location:
    """One place a dataset may be: a label, its folder, the files a split needs there, and their reader."""

    label: str
    folder: Callable[[Path], Path]  # data directory -> the folder holding the files
    files: Callable[[str], list[str]]  # split -> names inside that folder
    read: Reader  # (folder, split, class names) -> (images, labels)

    def present(self, data_dir: Path, split: str) -> bool:
        folder = self.folder(data_dir)
        return all((folder / name).exists() for name in self.files(split))

    def describe(self, data_dir: Path) -> str:
        return f"{self.folder(data_dir)} ({self.label})"

    def source(self, data_dir: Path) -> str:
        """Where a dataset came from, for printing and for the results files: the folder as
        ``shown_path`` writes it and the label, or the label alone for a fixed system folder
        (the Debian package's), which the label already names."""
        folder = self.folder(data_dir)
        if not folder.absolute().is_relative_to(Path(data_dir).absolute()):
            return self.label
        return f"{shown_path(folder)} ({self.label})"


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the course knows about one dataset."""

    name: str
    splits: tuple[str, ...]
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (C, H, W) of one image
    locations: tuple[Location, ...]
    fetch: Callable[[Path, str], object]  # (data directory, split): download into torchvision's layout
    download_mb: int  # approximate size of that download
    fetch_hint: str = ""  # another way to get the files, shown when they are missing

    @property
    def download_size(self) -> str:
        """The download size in words, e.g. ``"170 MB"`` or ``"2.6 GB"``."""
        return f"{self.download_mb / 1000:.1f} GB" if self.download_mb >= 1000 else f"{self.download_mb} MB"


def _torchvision_layout(folder: str, files: Callable[[str], list[str]], read: Reader) -> Location:
    return Location("torchvision layout", lambda data_dir: data_dir / folder, files, read)


def mirror() -> str | None:
    """The base URL in ``COURSE_DATA_MIRROR`` (None when unset); anything but an http(s) URL
    is a ValueError naming the variable (torchvision's downloader cannot read file:// URLs)."""
    raw = os.environ.get(MIRROR_VARIABLE, "").strip()
    if raw and urlsplit(raw).scheme not in ("http", "https"):
        raise ValueError(f"{MIRROR_VARIABLE}={raw!r} is not a web address; give one starting with http:// or https://")
    return raw.rstrip("/") or None


def mirrored(cls: type) -> type:
    """torchvision's dataset class ``cls``, or with ``COURSE_DATA_MIRROR`` set, a subclass of
    the same name (torchvision names its folders after the class) that fetches the same
    files from ``<mirror>/<class name>/<file name>``, e.g. ``<mirror>/MNIST/train-images-idx3-ubyte.gz``
    or ``<mirror>/CIFAR10/cifar-10-python.tar.gz``. torchvision still checks their MD5 sums."""
    base = mirror()
    if base is None:
        return cls
    folder = f"{base}/{cls.__name__}/"
    urls = {"mirrors": [folder]} if hasattr(cls, "mirrors") else {"url": folder + cls.filename}
    return type(cls.__name__, (cls,), urls)


def _fetch_with_train_flag(cls: type) -> Callable[[Path, str], object]:
    """torchvision's downloader for datasets whose split is ``train=True/False``."""
    return lambda data_dir, split: mirrored(cls)(str(data_dir), train=split == "train", download=True)


_TRAIN_TEST = ("train", "test")
_DIGITS = tuple(str(digit) for digit in range(10))

CATALOGUE: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            name="fashion_mnist",
            splits=_TRAIN_TEST,
            classes=tuple(tvd.FashionMNIST.classes),
            shape=(1, 28, 28),
            locations=(
                _torchvision_layout("FashionMNIST/raw", idx_files, idx_reader()),
                Location(
                    "Debian/Ubuntu package dataset-fashion-mnist",
                    lambda _: DEBIAN_FASHION_MNIST,  # looked up at call time, so tests can point it elsewhere
                    lambda split: idx_files(split, ".gz"),
                    idx_reader(".gz"),
                ),
            ),
            fetch=_fetch_with_train_flag(tvd.FashionMNIST),
            download_mb=30,
            fetch_hint="sudo apt-get install dataset-fashion-mnist  (Debian/Ubuntu)",
        ),
        DatasetInfo(
            name="mnist",
            splits=_TRAIN_TEST,
            classes=_DIGITS,
            shape=(1, 28, 28),
            locations=(_torchvision_layout("MNIST/raw", idx_files, idx_reader()),),
            fetch=_fetch_with_train_flag(tvd.MNIST),
            download_mb=12,
        ),
        DatasetInfo(
            name="cifar10",
            splits=_TRAIN_TEST,
            classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            shape=(3, 32, 32),
            locations=(
                _torchvision_layout(
                    tvd.CIFAR10.base_folder,
                    lambda split: [name for name, _ in CIFAR_BATCHES[split]],
                    read_cifar_batches,
                ),
                Location(
                    "ImageFolder layout",
                    lambda data_dir: data_dir / "cifar10",
                    lambda split: [split],
                    image_folder_reader,
                ),
            ),
            fetch=_fetch_with_train_flag(tvd.CIFAR10),
            download_mb=170,
        ),
        DatasetInfo(
            name="stl10",
            splits=("train", "test", "unlabeled"),
            classes=("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
            shape=(3, 96, 96),
            locations=(_torchvision_layout(tvd.STL10.base_folder, STL10_FILES.__getitem__, read_stl10),),
            fetch=lambda data_dir, split: mirrored(tvd.STL10)(str(data_dir), split=split, download=True),
            download_mb=2640,
        ),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry of ``name``; an unknown name is a ValueError listing the known ones."""
    if name not in CATALOGUE:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def download(name: str, data_dir: Path, split: str) -> None:
    """Fetch one split with torchvision's own downloader into ``data_dir`` (the only place downloads start)."""
    dataset_info(name).fetch(data_dir, split)
