"""The README's first command, ``python -m course_utils.data download fashion_mnist mnist cifar10``,
for real: torchvision's downloaders fetch the files over HTTP from a server on 127.0.0.1
(``COURSE_DATA_MIRROR``), unpack them and check their MD5 sums, and the course reads them.

The mirror holds the real data, as this machine has it:
- FashionMNIST: the four ``.gz`` files of Debian's package dataset-fashion-mnist. They are
  not the official archives byte for byte (each is shorter by its gzip header's file-name
  field and carries another date), so their MD5 sums differ from torchvision's, and the
  test replaces torchvision's sums with theirs.
- MNIST: the four idx files of ``../shared/datasets/MNIST/raw`` gzipped here. Gzipping again
  does not reproduce the official archives' bytes, so the test replaces torchvision's MD5
  sums for MNIST with those of these files.
- CIFAR-10: ``../shared/datasets/cifar10-jpg.tar.gz`` (the images as JPEGs) rebuilt into the
  official python layout (five training batches, a test batch, ``batches.meta``) and
  ``cifar-10-python.tar.gz``; its pixels are the JPEG-decoded ones, so the test replaces the
  MD5 sums of the archive and of every batch file likewise.
Where an MD5 is replaced, the check still runs, on the rebuilt file's own sum.

``COURSE_SHARED_DATASETS`` names the shared folder when it is not ``../shared/datasets``;
when that variable is set (CI) a missing folder fails the test instead of skipping it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import pickle
import shutil
import sys
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd
from torchvision.io import ImageReadMode, decode_image

from course_utils.data import CLASSES, formats, load_from_disk
from course_utils.data import catalogue as catalogue_module
from course_utils.data.__main__ import main as data_main
from course_utils.runtime import REPO_ROOT

REAL_DOWNLOAD = catalogue_module.download  # saved before conftest's fixture disables the network
SHARED = Path(os.environ.get("COURSE_SHARED_DATASETS") or REPO_ROOT.parent / "shared" / "datasets")
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
IDX = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def need(path: Path, what: str) -> None:
    if path.exists():
        return
    if os.environ.get("COURSE_SHARED_DATASETS"):
        pytest.fail(f"COURSE_SHARED_DATASETS is set but {path} ({what}) is missing")
    pytest.skip(f"{path} ({what}) is not on this machine")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def idx_array(data: bytes, header: int) -> np.ndarray:
    """The idx payload after its header (16 bytes for images, 8 for labels), read by hand."""
    return np.frombuffer(data, dtype=np.uint8, offset=header)


class Server:
    """A static file server on 127.0.0.1 in a thread; ``fetched`` lists the GET requests' paths."""

    def __init__(self, folder: Path):
        self.fetched: list[str] = []
        fetched = self.fetched

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                fetched.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # torchvision drops its first probe
                    super().handle_error(request, client_address)

        self.httpd = Quiet(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fashion_folder(mirror: Path) -> Path:
    folder = mirror / "FashionMNIST"
    folder.mkdir(parents=True)
    for name in IDX:
        shutil.copy(DEBIAN / f"{name}.gz", folder / f"{name}.gz")
    return folder


def cifar_jpegs() -> dict[str, list[tuple[np.ndarray, int]]]:
    """Per split, (image (3, 32, 32), label) for every ``cifar10/<split>/<class>/<file>.jpg`` in
    the shared archive, decoded from the archive's stream (60,000 small files are slow to unpack)."""
    found: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "test": []}
    with tarfile.open(SHARED / "cifar10-jpg.tar.gz") as tar:
        for member in tar:
            if member.isfile():
                _, split, name, _ = member.name.split("/")
                encoded = torch.frombuffer(bytearray(tar.extractfile(member).read()), dtype=torch.uint8)
                image = decode_image(encoded, mode=ImageReadMode.RGB).numpy()
                found[split].append((image, CLASSES["cifar10"].index(name)))
    return found


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """The mirror folder with the three datasets, and the CIFAR-10 test images put into it."""
    need(DEBIAN, "Debian's dataset-fashion-mnist")
    need(SHARED / "MNIST" / "raw", "MNIST idx files")
    need(SHARED / "cifar10-jpg.tar.gz", "CIFAR-10 as JPEGs")
    root = tmp_path_factory.mktemp("mirror")
    fashion_folder(root)
    (root / "MNIST").mkdir()
    for name in IDX:
        (root / "MNIST" / f"{name}.gz").write_bytes(gzip.compress((SHARED / "MNIST" / "raw" / name).read_bytes()))

    batches = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    batches.mkdir()
    arrays = {}
    jpegs = cifar_jpegs()
    for split, names in [("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])]:
        images, labels = np.stack([image for image, _ in jpegs[split]]), np.array([label for _, label in jpegs[split]])
        arrays[split] = images
        for name, part in zip(names, np.array_split(np.arange(len(images)), len(names))):
            entry = {"batch_label": name, "data": images[part].reshape(len(part), -1), "labels": labels[part].tolist()}
            (batches / name).write_bytes(pickle.dumps(entry))
    (batches / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES["cifar10"]}))
    (root / "CIFAR10").mkdir()
    with tarfile.open(root / "CIFAR10" / "cifar-10-python.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    return root, arrays


def replace_idx_md5s(monkeypatch, root: Path) -> None:
    """torchvision's MD5 sums for the idx archives in ``root`` become those files' own."""
    for cls in (tvd.FashionMNIST, tvd.MNIST):
        if (root / cls.__name__).is_dir():
            sums = [(f"{n}.gz", md5(root / cls.__name__ / f"{n}.gz")) for n in IDX]
            monkeypatch.setattr(cls, "resources", sums)


def replace_md5s(monkeypatch, root: Path, batches: Path) -> None:
    """torchvision's (and the course's) MD5 sums become the mirror's files' own."""
    replace_idx_md5s(monkeypatch, root)
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", md5(root / "CIFAR10" / "cifar-10-python.tar.gz"))
    for split, attribute in [("train", "train_list"), ("test", "test_list")]:
        sums = [[name, md5(batches / name)] for name, _ in getattr(tvd.CIFAR10, attribute)]
        monkeypatch.setattr(tvd.CIFAR10, attribute, sums)
        monkeypatch.setitem(formats.CIFAR_BATCHES, split, sums)
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": md5(batches / "batches.meta")})


def test_the_readme_download_command_fetches_the_three_datasets_from_a_loopback_mirror(
    mirror, isolated, monkeypatch, capsys
):
    root, cifar = mirror
    rebuilt = isolated / "rebuilt"
    with tarfile.open(root / "CIFAR10" / "cifar-10-python.tar.gz") as tar:
        tar.extractall(rebuilt, filter="data")
    replace_md5s(monkeypatch, root, rebuilt / "cifar-10-batches-py")
    monkeypatch.setattr(catalogue_module, "download", REAL_DOWNLOAD)
    data = isolated / "data"
    with Server(root) as server:
        monkeypatch.setenv("COURSE_DATA_MIRROR", server.url + "/")
        assert data_main(["download", "fashion_mnist", "mnist", "cifar10"]) == 0, capsys.readouterr().out
        assert data_main(["check", "fashion_mnist", "mnist", "cifar10"]) == 0, capsys.readouterr().out
    expected = {f"/{folder}/{name}.gz" for folder in ("FashionMNIST", "MNIST") for name in IDX}
    assert set(server.fetched) == expected | {"/CIFAR10/cifar-10-python.tar.gz"}  # some are asked for twice
    out = capsys.readouterr().out
    assert f"downloading from {server.url} into {data}" in out

    for folder, source in [("FashionMNIST", lambda n: gzip.decompress((DEBIAN / f"{n}.gz").read_bytes())),
                           ("MNIST", lambda n: (SHARED / "MNIST" / "raw" / n).read_bytes())]:  # fmt: skip
        for name in IDX:
            assert (data / folder / "raw" / name).read_bytes() == source(name), f"{folder} {name}"
    mnist = load_from_disk("mnist", "test")
    assert "torchvision layout" in mnist.source
    raw = (SHARED / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()
    np.testing.assert_array_equal(mnist.images.numpy().reshape(-1), idx_array(raw, 16))
    labels = (SHARED / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes()
    np.testing.assert_array_equal(mnist.targets.numpy(), idx_array(labels, 8))
    for split, images in cifar.items():
        loaded = load_from_disk("cifar10", split)
        assert "cifar-10-batches-py" in loaded.source
        np.testing.assert_array_equal(loaded.images.numpy(), images)


def test_a_mirror_without_the_files_is_one_failure_line_per_split(isolated, monkeypatch, capsys):
    monkeypatch.setattr(catalogue_module, "download", REAL_DOWNLOAD)
    (isolated / "empty").mkdir()
    with Server(isolated / "empty") as server:
        monkeypatch.setenv("COURSE_DATA_MIRROR", server.url)
        assert data_main(["download", "mnist"]) == 1
    lines = capsys.readouterr().out.splitlines()
    failures = [line for line in lines if line.startswith("FAIL")]
    assert len(failures) == 2 and all("404" in line for line in failures), lines
    assert set(server.fetched) == {"/MNIST/train-images-idx3-ubyte.gz"}  # the first file, then it gives up


@pytest.mark.parametrize("value", ["localhost:8000", "file:///srv/mirror"])
def test_a_mirror_that_is_not_a_web_url_is_refused_before_any_download(value, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_MIRROR", value)
    assert data_main(["download", "mnist"]) == 2
    assert capsys.readouterr().err == (
        f"error: ValueError: COURSE_DATA_MIRROR={value!r} is not a web address; "
        "give one starting with http:// or https://\n"
    )
