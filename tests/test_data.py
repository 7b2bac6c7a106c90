"""Data loading from every layout, subsets, the stand-in, the CLI and bad input."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from conftest import write_cifar_batches, write_image_folder, write_mnist_layout, write_stl10
from torchvision import datasets as tvd

from course_utils.data import (
    CLASSES,
    DataFormatError,
    DatasetNotFoundError,
    ImageDataset,
    first_k,
    load_dataset,
    per_class,
    synthetic_standin,
)
from course_utils.data.__main__ import main as cli


@pytest.fixture
def data(isolated):
    return isolated / "data"


# --- each source and layout ----------------------------------------------------------------


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_layout_is_read_pixel_for_pixel(data, name, folder):
    written = write_mnist_layout(data / folder / "raw")
    for split in ("train", "test"):
        ds = load_dataset(name, split)
        images, labels = written[split]
        assert ds.images.shape == (len(images), 1, 28, 28) and ds.images.dtype == torch.uint8
        assert np.array_equal(ds.images[:, 0].numpy(), images)
        assert np.array_equal(ds.targets.numpy(), labels) and ds.targets.dtype == torch.int64
        assert ds.classes == CLASSES[name] and len(ds.classes) == 10
        assert "torchvision layout" in ds.source


def _debian_package(isolated, compress=gzip.compress):
    """The Debian package's folder: the four idx files, gzipped."""
    written = write_mnist_layout(isolated / "plain")
    package = isolated / "debian"
    package.mkdir()
    for path in (isolated / "plain").iterdir():
        (package / f"{path.name}.gz").write_bytes(compress(path.read_bytes()))
    return package, written


def test_fashion_mnist_from_the_debian_package(isolated, monkeypatch):
    package, written = _debian_package(isolated)
    monkeypatch.setattr("course_utils.data.sources.DEBIAN_FASHION_MNIST", package)
    ds = load_dataset("fashion_mnist", "test")
    assert np.array_equal(ds.images[:, 0].numpy(), written["test"][0])
    assert "dataset-fashion-mnist" in ds.source
    assert not (isolated / "data" / "FashionMNIST").exists(), "the package must be read without copying"


def test_cifar10_python_batches(data, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)  # other md5 sums
    images = write_cifar_batches(data)
    train, test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert np.array_equal(train.images.numpy(), images[:20])
    assert np.array_equal(test.images.numpy(), images[20:])
    assert train.targets[:4].tolist() == [0, 1, 2, 3]


def test_cifar10_image_folder_maps_names_to_official_labels(data):
    classes = CLASSES["cifar10"]
    written = write_image_folder(data / "cifar10" / "test", classes, per_class=2)
    ds = load_dataset("cifar10", "test")
    assert ds.images.shape == (20, 3, 32, 32) and "ImageFolder" in ds.source
    for name, images in written.items():
        label = classes.index(name)
        assert np.array_equal(ds.images[ds.targets == label].numpy(), images)


def test_stl10_binary_layout_all_three_splits(data, monkeypatch):
    monkeypatch.setattr(tvd.STL10, "_check_integrity", lambda self: True)
    written = write_stl10(data)
    for split, images in written.items():
        ds = load_dataset("stl10", split)
        assert ds.images.shape == (len(images), 3, 96, 96)
        assert np.array_equal(ds.images.numpy(), images), "images must come back upright, not transposed"
        expected = [-1] * len(images) if split == "unlabeled" else list(np.arange(len(images)) % 10)
        assert ds.targets.tolist() == expected


# --- missing data --------------------------------------------------------------------------


def test_missing_dataset_outside_smoke_names_places_and_command(data):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("stl10", "unlabeled")
    message = str(error.value)
    assert "stl10" in message and str(data / "stl10_binary") in message
    assert "python -m course_utils.data download stl10" in message
    assert "network disabled" in message, "the download failure must be reported"


def test_missing_fashion_mnist_lists_both_places_and_apt(data):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion_mnist", "train")
    message = str(error.value)
    assert str(data / "FashionMNIST" / "raw") in message and "no-debian" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_smoke_profile_falls_back_to_the_standin_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = load_dataset("stl10", "train")
    assert "SYNTHETIC" in ds.source and "synthetic stand-in" in capsys.readouterr().out
    assert ds.images.shape[1:] == (3, 96, 96)


def test_smoke_profile_does_not_try_to_download(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")

    def fail(*args):
        raise AssertionError("smoke runs must not download")

    monkeypatch.setattr("course_utils.data.sources.download", fail)
    with pytest.warns(UserWarning):
        load_dataset("cifar10", "test")


# --- bad input -----------------------------------------------------------------------------


def test_unknown_dataset_and_split_are_clear_errors():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*fashion_mnist"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="cifar10 has no split 'unlabeled'"):
        load_dataset("cifar10", "unlabeled")


def test_truncated_idx_file_is_named(data):
    write_mnist_layout(data / "MNIST" / "raw")
    path = data / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", "train")


def test_idx_file_with_a_bad_header_is_named(data):
    write_mnist_layout(data / "MNIST" / "raw")
    path = data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"garbage!" + path.read_bytes())
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte.*not an idx file"):
        load_dataset("mnist", "test")


def test_corrupt_gzip_in_the_debian_package_is_named(isolated, monkeypatch):
    package, _ = _debian_package(isolated, compress=lambda raw: gzip.compress(raw)[:50])
    monkeypatch.setattr("course_utils.data.sources.DEBIAN_FASHION_MNIST", package)
    with pytest.raises(DataFormatError, match=r"\.gz is truncated or corrupt"):
        load_dataset("fashion_mnist", "train")


def test_truncated_stl10_file_is_named(data, monkeypatch):
    monkeypatch.setattr(tvd.STL10, "_check_integrity", lambda self: True)
    write_stl10(data)
    path = data / "stl10_binary" / "train_X.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataFormatError, match="train_X.bin.*truncated"):
        load_dataset("stl10", "train")


def test_undecodable_image_is_named(data):
    write_image_folder(data / "cifar10" / "train", CLASSES["cifar10"], per_class=1)
    (data / "cifar10" / "train" / "cat" / "0000.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFormatError, match="cat/0000.png"):
        load_dataset("cifar10", "train")


def test_image_folder_with_wrong_classes_is_rejected(data):
    write_image_folder(data / "cifar10" / "train", ["cats", "dogs"], per_class=1)
    with pytest.raises(DataFormatError, match="class folders"):
        load_dataset("cifar10", "train")


def test_dataset_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(torch.zeros(4, 1, 28, 28), torch.zeros(4), ["a"], "test")
    with pytest.raises(ValueError, match="targets"):
        ImageDataset(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(3), ["a"], "test")


# --- subsets -------------------------------------------------------------------------------


def _toy(labels: list[int]) -> ImageDataset:
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1)  # pixel value = original index
    return ImageDataset(images, torch.tensor(labels), ["a", "b", "c"], "toy")


def test_first_k_keeps_file_order():
    ds = first_k(_toy([2, 0, 1, 1, 0]), 3)
    assert ds.images.flatten().tolist() == [0, 1, 2] and ds.targets.tolist() == [2, 0, 1]
    assert "first 3" in ds.source


def test_per_class_is_stratified_and_deterministic():
    labels = [0] * 10 + [1] * 6 + [2] * 8
    toy = _toy(labels)
    a, b = per_class(toy, 4, seed=1), per_class(toy, 4, seed=1)
    assert torch.bincount(a.targets).tolist() == [4, 4, 4]
    assert torch.equal(a.images, b.images)
    chosen = a.images.flatten().long()
    assert torch.equal(torch.tensor(labels)[chosen], a.targets), "images must keep their own labels"
    assert not torch.equal(per_class(toy, 4, seed=2).images, a.images)


def test_per_class_asking_for_more_than_exist_is_an_error():
    with pytest.raises(ValueError, match="asked for 7 per class.*'b' has only 6"):
        per_class(_toy([0] * 10 + [1] * 6 + [2] * 8), 7)
    with pytest.raises(ValueError, match="first_k"):
        first_k(_toy([0, 1]), 3)


# --- the synthetic stand-in ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape", [("fashion_mnist", (1, 28, 28)), ("cifar10", (3, 32, 32)), ("stl10", (3, 96, 96))]
)
def test_standin_has_the_real_shape_and_balanced_classes(name, shape):
    images, labels = synthetic_standin(name, "train")
    assert images.dtype == torch.uint8 and images.shape[1:] == shape
    assert torch.bincount(labels).tolist() == [len(labels) // 10] * 10
    assert torch.equal(synthetic_standin(name, "train")[0], images), "same call, same images"
    assert (synthetic_standin(name, "unlabeled")[1] == -1).all()


def test_standin_classes_are_learnable_by_a_small_network():
    torch.manual_seed(0)
    train_x, train_y = synthetic_standin("fashion_mnist", "train")
    test_x, test_y = synthetic_standin("fashion_mnist", "test")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 5, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(15):
        for index in torch.randperm(len(train_x)).split(50):
            loss = torch.nn.functional.cross_entropy(net(train_x[index].float() / 255), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    accuracy = (net(test_x.float() / 255).argmax(1) == test_y).float().mean().item()
    assert accuracy > 0.6, f"stand-in classes should be learnable (chance is 0.1), got {accuracy:.2f}"


# --- the command line ----------------------------------------------------------------------


def test_cli_list_shows_found_and_missing(data, capsys):
    write_mnist_layout(data / "MNIST" / "raw")
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "mnist          train      found" in out
    assert "stl10          unlabeled  MISSING; get it with: python -m course_utils.data download stl10" in out


def test_cli_check_fails_on_missing_and_passes_on_present(data, capsys):
    write_mnist_layout(data / "MNIST" / "raw")
    assert cli(["check", "mnist"]) == 0
    assert "ok   mnist train: 30 images (1, 28, 28)" in capsys.readouterr().out
    assert cli(["check", "mnist", "cifar10"]) == 1
    assert "FAIL cifar10 train" in capsys.readouterr().out


def test_cli_check_fails_on_a_corrupt_file(data, capsys):
    write_mnist_layout(data / "MNIST" / "raw")
    path = data / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    assert cli(["check", "mnist"]) == 1
    assert "train-labels-idx1-ubyte" in capsys.readouterr().out


def test_cli_download_reports_failure(capsys):
    assert cli(["download", "stl10"]) == 1
    assert "FAIL stl10" in capsys.readouterr().out


def test_cli_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        cli(["check", "imagenet"])
    assert "unknown dataset imagenet" in capsys.readouterr().err
