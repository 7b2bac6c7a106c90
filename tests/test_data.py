"""Data loading from every layout, subsets, the stand-in, the CLI and bad input."""

from __future__ import annotations

import builtins
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_cifar_batches, write_image_folder, write_mnist_layout, write_stl10

from course_utils.data import (
    CATALOGUE,
    CLASSES,
    SPLITS,
    DataFormatError,
    DatasetNotFoundError,
    ImageDataset,
    first_k,
    hold_out,
    load_dataset,
    per_class,
    synthetic_standin,
)
from course_utils.data.__main__ import main as cli
from course_utils.data.catalogue import DatasetInfo, Location
from course_utils.data.formats import image_folder_reader


@pytest.fixture
def data(isolated):
    return isolated / "data"


@pytest.fixture
def no_md5(monkeypatch):
    """The tiny CIFAR-10 and STL10 files written here cannot have the official MD5 sums."""
    monkeypatch.setattr("course_utils.data.formats.check_integrity", lambda *args: True)


@pytest.fixture
def downloads(monkeypatch):
    """Every download the loader starts, recorded (and failing, as with no network)."""
    calls = []

    def record(name, data_dir, split):
        calls.append((name, split))
        raise ConnectionError("network disabled in tests")

    monkeypatch.setattr("course_utils.data.catalogue.download", record)
    return calls


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
        assert ds.source == f"{name} {split} from $COURSE_DATA_DIR/{folder}/raw (torchvision layout)"


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
    monkeypatch.setattr("course_utils.data.catalogue.DEBIAN_FASHION_MNIST", package)
    ds = load_dataset("fashion_mnist", "test")
    assert np.array_equal(ds.images[:, 0].numpy(), written["test"][0])
    assert ds.source == "fashion_mnist test from Debian/Ubuntu package dataset-fashion-mnist"  # no folder
    assert not (isolated / "data" / "FashionMNIST").exists(), "the package must be read without copying"


def test_cifar10_python_batches(data, no_md5):
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


def test_stl10_binary_layout_all_three_splits(data, no_md5):
    written = write_stl10(data)
    for split, images in written.items():
        ds = load_dataset("stl10", split)
        assert ds.images.shape == (len(images), 3, 96, 96)
        assert np.array_equal(ds.images.numpy(), images), "images must come back upright, not transposed"
        expected = [-1] * len(images) if split == "unlabeled" else list(np.arange(len(images)) % 10)
        assert ds.targets.tolist() == expected


# --- missing data --------------------------------------------------------------------------


def test_missing_dataset_outside_smoke_names_places_and_command(data, downloads):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("cifar10", "test")
    message = str(error.value)
    assert str(data / "cifar-10-batches-py") in message and str(data / "cifar10") in message
    assert "python -m course_utils.data download cifar10   (170 MB download)" in message
    assert "network disabled" in message, "the download failure must be reported"
    assert downloads == [("cifar10", "test")]


def test_a_download_over_1_gb_is_never_started_unasked(data, downloads):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("stl10", "unlabeled")
    assert downloads == [], "STL10's 2.6 GB must not start because a notebook found it missing"
    message = str(error.value)
    assert str(data / "stl10_binary") in message and "2.6 GB" in message
    assert "python -m course_utils.data download stl10" in message


def test_a_large_download_starts_when_asked_for(downloads, capsys):
    with pytest.raises(DatasetNotFoundError, match="network disabled"):
        load_dataset("stl10", "test", download_missing=True)
    assert cli(["download", "stl10"]) == 1  # the command line asks by name; the stub has no network
    assert downloads == [("stl10", "test"), ("stl10", "train"), ("stl10", "test"), ("stl10", "unlabeled")]
    assert "2.6 GB" in capsys.readouterr().out


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


def test_smoke_profile_does_not_try_to_download(monkeypatch, downloads):
    # The stub records the call instead of raising: the loader catches every download error.
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        load_dataset("cifar10", "test")
    assert downloads == [], "smoke runs must not download"


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
    monkeypatch.setattr("course_utils.data.catalogue.DEBIAN_FASHION_MNIST", package)
    with pytest.raises(DataFormatError, match=r"\.gz is truncated or corrupt"):
        load_dataset("fashion_mnist", "train")


def test_truncated_stl10_file_is_named(data, no_md5):
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
        ImageDataset(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["a"], "test")


def test_dataset_rejects_labels_outside_its_classes():
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"targets must lie in 0..2.*from 0 to 3"):
        ImageDataset(images, torch.tensor([0, 3, 1]), ["a", "b", "c"], "test")
    with pytest.raises(ValueError, match="integer class indices"):
        ImageDataset(images, torch.tensor([0.0, 1.5, 1.0]), ["a", "b", "c"], "test")
    assert ImageDataset(images, torch.tensor([-1, -1, 2]), ["a", "b", "c"], "test").targets.tolist() == [-1, -1, 2]


def _flip_deflate_bytes(raw: bytes) -> bytes:
    """gzip with damaged bytes right after its 10-byte header: zlib fails mid-stream (not a CRC error)."""
    damaged = bytearray(gzip.compress(raw))
    damaged[12:20] = bytes(b ^ 0xFF for b in damaged[12:20])
    return bytes(damaged)


def test_corrupt_gzip_stream_is_named(isolated, monkeypatch, capsys):
    package, _ = _debian_package(isolated, compress=_flip_deflate_bytes)
    monkeypatch.setattr("course_utils.data.catalogue.DEBIAN_FASHION_MNIST", package)
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte\.gz is truncated or corrupt"):
        load_dataset("fashion_mnist", "train")
    assert cli(["check", "fashion_mnist"]) == 1
    out = capsys.readouterr().out
    assert "FAIL fashion_mnist test: " in out and "t10k-images-idx3-ubyte.gz is truncated or corrupt" in out


@pytest.mark.parametrize("layout", ["idx", "stl10", "cifar10"])
def test_label_out_of_range_is_an_error_naming_the_file(data, no_md5, layout):
    """A label byte >= the class count must stop the load, not become an IndexError in per_class later."""
    if layout == "idx":
        write_mnist_layout(data / "MNIST" / "raw")
        label_file = data / "MNIST" / "raw" / "train-labels-idx1-ubyte"
        raw = bytearray(label_file.read_bytes())
        raw[8 + 5] = 10  # after the 8-byte header; MNIST labels are 0..9
        name, expected = "mnist", "train-labels-idx1-ubyte: label 10 at position 5"
    elif layout == "stl10":
        write_stl10(data)
        label_file = data / "stl10_binary" / "train_y.bin"
        raw = bytearray(label_file.read_bytes())
        raw[2] = 0  # STL10 stores 1..10; unchecked, a 0 would become -1, i.e. "unlabeled"
        name, expected = "stl10", "train_y.bin: label 0 at position 2"
    else:
        write_cifar_batches(data)
        label_file = data / "cifar-10-batches-py" / "data_batch_2"
        entry = pickle.loads(label_file.read_bytes())
        entry["labels"][1] = 12
        raw = pickle.dumps(entry)
        name, expected = "cifar10", "data_batch_2: label 12 at position 1"
    label_file.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=expected):
        load_dataset(name, "train")


def test_empty_class_folder_is_an_error_naming_it(data):
    write_image_folder(data / "cifar10" / "test", CLASSES["cifar10"], per_class=2)
    for image in (data / "cifar10" / "test" / "frog").iterdir():
        image.unlink()
    with pytest.raises(DataFormatError, match=r"no images: \S*cifar10/test/frog"):
        load_dataset("cifar10", "test")


def test_cifar10_batch_failing_its_md5_is_named(data):
    write_cifar_batches(data)  # not the official files, so the very first one fails
    with pytest.raises(DataFormatError, match="data_batch_1 fails its MD5 check"):
        load_dataset("cifar10", "train")


def test_cifar10_batch_that_is_not_a_pickle_is_named(data, no_md5):
    write_cifar_batches(data)
    (data / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataFormatError, match="test_batch is not a CIFAR-10 batch"):
        load_dataset("cifar10", "test")


def test_images_of_the_wrong_size_are_rejected(data):
    write_image_folder(data / "cifar10" / "train", CLASSES["cifar10"], per_class=1, size=28)
    with pytest.raises(DataFormatError, match=r"holds train images of shape \(3, 28, 28\), expected \(3, 32, 32\)"):
        load_dataset("cifar10", "train")


def test_a_folder_in_place_of_a_file_is_named(data, capsys):
    write_mnist_layout(data / "MNIST" / "raw")
    path = data / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.unlink()
    path.mkdir()
    with pytest.raises(DataFormatError, match="cannot read .*t10k-images-idx3-ubyte: Is a directory"):
        load_dataset("mnist", "test")
    assert cli(["check", "mnist"]) == 1
    assert "FAIL mnist test: cannot read" in capsys.readouterr().out


def test_an_unreadable_file_is_named_and_the_cli_says_so_in_one_line(data, monkeypatch, capsys):
    write_mnist_layout(data / "MNIST" / "raw")
    locked = data / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    real_open = builtins.open

    def no_permission(file, *args, **kwargs):  # tests may run as root, whom chmod does not stop
        if isinstance(file, (str, Path)) and Path(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    with pytest.raises(DataFormatError, match="cannot read .*train-labels-idx1-ubyte: Permission denied"):
        load_dataset("mnist", "train")
    assert cli(["check", "mnist"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL mnist train: cannot read {locked}: Permission denied\n" in out
    assert "ok   mnist test" in out, "one bad file must not stop the check of the others"


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
    assert f"mnist: 10 classes, 1x28x28 images, 12 MB download\n  train      found in {data / 'MNIST' / 'raw'}" in out
    assert "stl10: 10 classes, 3x96x96 images, 2.6 GB download\n  train      MISSING\n" in out
    assert "  get it with: python -m course_utils.data download stl10   (2.6 GB download)\n" in out
    assert "or: sudo apt-get install dataset-fashion-mnist" in out


def test_cli_check_does_not_count_the_standin_as_found(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert cli(["check", "stl10"]) == 1
    out = capsys.readouterr().out
    assert "ok   " not in out and out.count("FAIL stl10") == 3
    assert "SYNTHETIC stand-in for missing data; it is not the data" in out


def test_cli_reports_a_bad_profile_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    assert cli(["check", "mnist"]) == 2
    assert capsys.readouterr().err == (
        "error: ValueError: COURSE_PROFILE='fast' is not a profile; choose one of smoke, laptop, full\n"
    )


def test_cli_turns_an_unexpected_error_into_one_line(monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr("course_utils.data.__main__.load_from_disk", broken)
    assert cli(["check", "mnist"]) == 2
    assert capsys.readouterr().err == "error: RuntimeError: something nobody foresaw\n"


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


# --- the catalogue -------------------------------------------------------------------------


def test_the_old_tables_are_views_of_the_catalogue():
    assert list(CATALOGUE) == ["fashion_mnist", "mnist", "cifar10", "stl10"]
    assert SPLITS == {name: info.splits for name, info in CATALOGUE.items()}
    assert CLASSES == {name: list(info.classes) for name, info in CATALOGUE.items()}
    assert CLASSES["fashion_mnist"][0] == "T-shirt/top" and CLASSES["stl10"][7] == "monkey"
    assert [CATALOGUE[name].download_size for name in CATALOGUE] == ["30 MB", "12 MB", "170 MB", "2.6 GB"]


def test_a_new_dataset_needs_only_its_catalogue_entry(data, monkeypatch, capsys):
    """A 4-class, 3x20x20 dataset in an ImageFolder tree: the loader, stand-in and CLI all follow its entry."""
    fetched = []
    entry = DatasetInfo(
        name="shapes",
        splits=("train",),
        classes=("circle", "square", "star", "triangle"),
        shape=(3, 20, 20),
        locations=(Location("ImageFolder layout", lambda d: d / "shapes", lambda split: [split], image_folder_reader),),
        fetch=lambda data_dir, split: fetched.append(split),
        download_mb=1,
    )
    monkeypatch.setitem(CATALOGUE, "shapes", entry)
    written = write_image_folder(data / "shapes" / "train", list(entry.classes), per_class=3, size=20)
    ds = load_dataset("shapes", "train")
    assert ds.images.shape == (12, 3, 20, 20) and ds.classes == list(entry.classes)
    assert np.array_equal(ds.images[ds.targets == 2].numpy(), written["star"])
    with pytest.raises(ValueError, match="shapes has no split 'test'"):
        load_dataset("shapes", "test")
    images, labels = synthetic_standin("shapes", "train")
    assert images.shape[1:] == (3, 20, 20) and torch.bincount(labels).tolist() == [500] * 4
    assert cli(["check", "shapes"]) == 0 and "ok   shapes train: 12 images (3, 20, 20)" in capsys.readouterr().out


def test_cli_data_directory_that_is_a_file_is_one_line(isolated, monkeypatch, capsys):
    (isolated / "afile").write_text("")
    monkeypatch.setenv("COURSE_DATA_DIR", str(isolated / "afile"))
    assert cli(["list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: ValueError: the data directory {isolated / 'afile'} is a file, not a folder")
    assert err.count("\n") == 1


def test_cli_download_failure_is_one_line(monkeypatch, capsys):
    def torchvision_like(name, data_dir, split):
        raise RuntimeError("Error downloading x.gz:\nTried https://example.org/, got:\n<urlopen error refused>\n")

    monkeypatch.setattr("course_utils.data.catalogue.download", torchvision_like)
    assert cli(["download", "mnist"]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = "RuntimeError: Error downloading x.gz: Tried https://example.org/, got: <urlopen error refused>"
    assert lines[1] == f"FAIL mnist train: {expected}"


def test_hold_out_keeps_the_next_items_of_the_same_draw():
    targets = torch.tensor([c for _ in range(6) for c in (0, 1, 2)])  # 18 items, 6 per class
    data = ImageDataset(torch.arange(18, dtype=torch.uint8).view(18, 1, 1, 1), targets, ["a", "b", "c"], "toy")
    order = torch.randperm(18, generator=torch.Generator().manual_seed(4)).tolist()  # the draw, written out
    by_class = {c: [i for i in order if i % 3 == c] for c in range(3)}
    rest, held = hold_out(data, 2, seed=4, keep=3)
    assert held.images.flatten().tolist() == sorted(i for c in range(3) for i in by_class[c][:2])
    assert rest.images.flatten().tolist() == sorted(i for c in range(3) for i in by_class[c][2:5])
    rest, held = hold_out(data, 5, seed=4, by_class=False, keep=7)  # not by class: in the order drawn
    assert (held.images.flatten().tolist(), rest.images.flatten().tolist()) == (order[:5], order[5:12])
    assert hold_out(data, 5, seed=4, by_class=False)[0].images.flatten().tolist() == order[5:]
    with pytest.raises(ValueError, match="asked for 19 items, but the data has only 18"):
        hold_out(data, 5, by_class=False, keep=14)


def test_hold_out_splits_off_k_per_class_after_the_first_items():
    targets = torch.tensor([c for _ in range(6) for c in (0, 1, 2)])  # 18 items, 6 per class
    images = torch.arange(18, dtype=torch.uint8).view(18, 1, 1, 1)  # each image holds its index
    data = ImageDataset(images, targets, ["a", "b", "c"], "toy")
    rest, held = hold_out(data, 2, seed=5, after=6)
    held_ids, rest_ids = held.images.flatten().tolist(), rest.images.flatten().tolist()
    assert torch.bincount(held.targets, minlength=3).tolist() == [2, 2, 2]
    assert min(held_ids) >= 6, "the first 6 items stay in training"
    assert sorted(held_ids + rest_ids) == list(range(18)) and not set(held_ids) & set(rest_ids)
    assert rest_ids == sorted(rest_ids) and held_ids == sorted(held_ids), "both keep file order"
    again, _ = hold_out(data, 2, seed=5, after=6)
    assert torch.equal(again.images, rest.images), "same seed, same split"
    assert hold_out(data, 2, seed=6, after=6)[1].images.flatten().tolist() != held_ids
    with pytest.raises(ValueError, match="has only 4"):
        hold_out(data, 5, after=6)
    with pytest.raises(ValueError, match="after must be an int >= 0 and <= "):
        hold_out(data, 1, after=18)
