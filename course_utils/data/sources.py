"""Where each dataset can live on disk, and how to read it from there.

Every dataset has an ordered list of :class:`Location` s. The readers hand the
formats to torchvision's own dataset classes and only check file sizes first,
so that a truncated or corrupt file is reported by name instead of surfacing as
an assertion deep inside torchvision.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tvd
from torchvision.io import ImageReadMode, decode_image

Arrays = tuple[torch.Tensor, torch.Tensor]

# Ubuntu and Debian ship the original FashionMNIST files in this package.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


CLASSES: dict[str, list[str]] = {
    "fashion_mnist": list(tvd.FashionMNIST.classes),
    "mnist": [str(digit) for digit in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "stl10": ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"],
}


class DataFormatError(RuntimeError):
    """A dataset file exists but cannot be read (truncated, corrupt, wrong layout)."""


@dataclass(frozen=True)
class Location:
    """One place a dataset may be: a description, a test for presence, a reader."""

    label: str
    folder: Callable[[Path], Path]
    files: Callable[[str], list[str]]
    read: Callable[[Path, str], Arrays]

    def present(self, data_dir: Path, split: str) -> bool:
        folder = self.folder(data_dir)
        return all((folder / name).exists() for name in self.files(split))

    def describe(self, data_dir: Path) -> str:
        return f"{self.folder(data_dir)} ({self.label})"


# --- idx files (MNIST, FashionMNIST) -------------------------------------------------------

_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _idx_files(split: str) -> list[str]:
    prefix = _IDX_PREFIX[split]
    return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]


def _all_idx_files(_split: str) -> list[str]:
    # torchvision's MNIST classes insist on finding both splits before reading either.
    return _idx_files("train") + _idx_files("test")


def _check_idx(path: Path) -> None:
    """Compare an idx file's size with the size its header promises."""
    with open(path, "rb") as f:
        header = f.read(4)
        if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] != 0x08:
            raise DataFormatError(f"{path} is not an idx file of unsigned bytes (bad header {header!r})")
        ndim = header[3]
        dims = np.frombuffer(f.read(4 * ndim), dtype=">u4")
    if len(dims) != ndim:
        raise DataFormatError(f"{path} is truncated inside its header")
    expected = 4 + 4 * ndim + int(np.prod(dims))
    actual = path.stat().st_size
    if actual != expected:
        raise DataFormatError(f"{path} has {actual} bytes but its header promises {expected}: truncated or corrupt")


def _read_idx_pair(cls: type[tvd.MNIST]) -> Callable[[Path, str], Arrays]:
    def read(data_dir: Path, split: str) -> Arrays:
        raw = data_dir / cls.__name__ / "raw"
        for name in _idx_files(split):
            _check_idx(raw / name)
        dataset = cls(str(data_dir), train=split == "train", download=False)
        if len(dataset.data) != len(dataset.targets):
            raise DataFormatError(f"{raw}: {len(dataset.data)} images but {len(dataset.targets)} labels")
        return dataset.data.unsqueeze(1), dataset.targets.long()

    return read


def _torchvision_idx(cls: type[tvd.MNIST]) -> Location:
    return Location("torchvision layout", lambda d: d / cls.__name__ / "raw", _all_idx_files, _read_idx_pair(cls))


def _read_debian_fashion(_data_dir: Path, split: str) -> Arrays:
    """Unpack the packaged ``.gz`` files into a temporary torchvision layout and read them there."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name in _all_idx_files(split):
            source = DEBIAN_FASHION_MNIST / f"{name}.gz"
            try:
                with gzip.open(source, "rb") as f, open(raw / name, "wb") as out:
                    shutil.copyfileobj(f, out)
            except (OSError, EOFError) as error:
                raise DataFormatError(f"{source} is truncated or corrupt: {error}") from error
        return _read_idx_pair(tvd.FashionMNIST)(Path(tmp), split)


DEBIAN_LOCATION = Location(
    "Debian/Ubuntu package dataset-fashion-mnist",
    lambda _: DEBIAN_FASHION_MNIST,
    lambda split: [f"{name}.gz" for name in _all_idx_files(split)],
    _read_debian_fashion,
)


# --- CIFAR-10 ------------------------------------------------------------------------------


def _read_cifar_batches(data_dir: Path, split: str) -> Arrays:
    try:
        dataset = tvd.CIFAR10(str(data_dir), train=split == "train", download=False)
    except RuntimeError as error:
        raise DataFormatError(f"{data_dir / tvd.CIFAR10.base_folder}: {error}") from error
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.long)


def _cifar_batch_files(split: str) -> list[str]:
    return [name for name, _ in (tvd.CIFAR10.train_list if split == "train" else tvd.CIFAR10.test_list)]


def read_image_folder(root: Path, classes: list[str]) -> Arrays:
    """Decode every image under ``root/<class>/`` into one uint8 tensor (N, C, H, W).

    The class folders must be exactly ``classes``; each is read in sorted file order.
    """
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if found != sorted(classes):
        raise DataFormatError(f"{root} has class folders {found}, expected {sorted(classes)}")
    folder = tvd.ImageFolder(str(root), allow_empty=True)
    images = []
    for path, _ in folder.samples:
        try:
            images.append(decode_image(path, mode=ImageReadMode.RGB))
        except RuntimeError as error:
            raise DataFormatError(f"cannot decode image {path}: {error}") from error
    if not images:
        raise DataFormatError(f"{root} holds no images")
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise DataFormatError(f"{root} mixes image sizes {sorted(shapes)}")
    # ImageFolder numbers classes in sorted order; map them to the official order.
    official = torch.tensor([classes.index(name) for name in folder.classes])
    targets = official[torch.tensor(folder.targets, dtype=torch.long)]
    return torch.stack(images), targets


def _cifar_image_folder(classes: list[str]) -> Location:
    return Location(
        "ImageFolder layout",
        lambda d: d / "cifar10",
        lambda split: [split],
        lambda data_dir, split: read_image_folder(data_dir / "cifar10" / split, classes),
    )


# --- STL10 ---------------------------------------------------------------------------------

_STL_FILES = {
    "train": ["train_X.bin", "train_y.bin"],
    "test": ["test_X.bin", "test_y.bin"],
    "unlabeled": ["unlabeled_X.bin"],
}
_STL_IMAGE_BYTES = 3 * 96 * 96


def _read_stl10(data_dir: Path, split: str) -> Arrays:
    folder = data_dir / tvd.STL10.base_folder
    image_file = folder / _STL_FILES[split][0]
    count, rest = divmod(image_file.stat().st_size, _STL_IMAGE_BYTES)
    if rest or count == 0:
        raise DataFormatError(f"{image_file} is not a whole number of 96x96 RGB images: truncated or corrupt")
    if split != "unlabeled":
        label_file = folder / _STL_FILES[split][1]
        if label_file.stat().st_size != count:
            raise DataFormatError(f"{label_file} has {label_file.stat().st_size} labels for {count} images")
    try:
        dataset = tvd.STL10(str(data_dir), split=split, download=False)
    except RuntimeError as error:
        raise DataFormatError(f"{folder}: {error}") from error
    return torch.from_numpy(dataset.data), torch.from_numpy(dataset.labels.astype(np.int64))


# --- the catalogue -------------------------------------------------------------------------

LOCATIONS: dict[str, list[Location]] = {
    "fashion_mnist": [_torchvision_idx(tvd.FashionMNIST), DEBIAN_LOCATION],
    "mnist": [_torchvision_idx(tvd.MNIST)],
    "cifar10": [
        Location("torchvision layout", lambda d: d / tvd.CIFAR10.base_folder, _cifar_batch_files, _read_cifar_batches),
        _cifar_image_folder(CLASSES["cifar10"]),
    ],
    "stl10": [Location("torchvision layout", lambda d: d / tvd.STL10.base_folder, _STL_FILES.__getitem__, _read_stl10)],
}


def download(name: str, data_dir: Path, split: str) -> None:
    """Fetch one split with torchvision's own downloader into ``data_dir``."""
    root = str(data_dir)
    if name == "stl10":
        tvd.STL10(root, split=split, download=True)
    elif name == "cifar10":
        tvd.CIFAR10(root, train=split == "train", download=True)
    else:
        cls = tvd.FashionMNIST if name == "fashion_mnist" else tvd.MNIST
        cls(root, train=split == "train", download=True)
