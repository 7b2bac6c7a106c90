"""Handing checkpoints to a class: ``course pack`` on one machine, ``course unpack`` on another.

The checkpoint is a real course recipe trained in ``smoke`` (on the synthetic stand-in: the
test's data folder is empty). Damaged and foreign archives are built here with tarfile and
zipfile, and each must be refused by name with nothing left in the checkpoint cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from course_utils import course
from course_utils.kit import MANIFEST
from course_utils.recipes.fashion import FashionSupervised

RECIPE = FashionSupervised(labels=40, balanced=True, epochs=1, batch_size=20)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """An archive packed from a smoke checkpoint folder, and the trained weights."""
    folder = tmp_path_factory.mktemp("instructor")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_PROFILE", "smoke")
        patch.setenv("COURSE_DATA_DIR", str(folder / "data"))  # empty: the synthetic stand-in
        patch.setenv("COURSE_CHECKPOINT_DIR", str(folder / "checkpoints"))
        patch.delenv("COURSE_RETRAIN", raising=False)
        patch.setattr("course_utils.data.catalogue.DEBIAN_FASHION_MNIST", folder / "no-debian")
        with pytest.warns(UserWarning, match="SYNTHETIC"):
            model, _ = RECIPE.pretrained()
        assert RECIPE.is_cached()
        archive = folder / "kit.tar.gz"
        assert course.main(["pack", "--profile", "smoke", "--output", str(archive)]) == 0
    return archive, {key: value.clone() for key, value in model.state_dict().items()}


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_the_manifest_lists_each_file_with_its_digest_and_recipe(packed):
    archive, _ = packed
    files = members(archive)
    checkpoint = f"{RECIPE.checkpoint_name()}.pt"
    assert sorted(files) == sorted([MANIFEST, checkpoint])
    manifest = json.loads(files[MANIFEST])
    entry = manifest["files"][checkpoint]
    assert entry["sha256"] == hashlib.sha256(files[checkpoint]).hexdigest()
    assert entry["bytes"] == len(files[checkpoint])
    assert entry["recipe"] == json.loads(json.dumps(RECIPE.settings()))
    assert manifest["profile"] == "smoke" and manifest["course_version"]


def test_checkpoints_packed_in_one_folder_load_in_another_without_training(packed, isolated, monkeypatch, capsys):
    archive, weights = packed
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(isolated / "student"))
    assert not RECIPE.is_cached()
    assert course.main(["unpack", str(archive)]) == 0
    assert "1 checkpoints, profile smoke" in capsys.readouterr().out
    assert RECIPE.is_cached()

    def no_training(*args):
        raise AssertionError("the unpacked checkpoint was not used: the recipe trained")

    monkeypatch.setattr(FashionSupervised, "fit", no_training)
    model, history = RECIPE.pretrained()
    assert "Loaded fashion_supervised-" in capsys.readouterr().out
    assert history["loss"] and all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert sorted(p.name for p in (isolated / "student").iterdir()) == ["smoke"], "no staging folder left behind"


def tar_bytes(files: dict[str, bytes], kinds: dict[str, bytes] | None = None) -> bytes:
    """A .tar.gz of ``files`` (name -> content); ``kinds`` gives a member another tar type."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            if kinds and name in kinds:
                info.type, info.linkname, info.size = kinds[name], "/etc/passwd", 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def with_manifest(members: dict[str, bytes], **changes) -> dict[str, bytes]:
    manifest = json.loads(members[MANIFEST])
    manifest.update(changes)
    return {**members, MANIFEST: json.dumps(manifest).encode()}


def damaged(archive: Path) -> dict[str, bytes]:
    """Archives that must be refused: name -> content."""
    good = archive.read_bytes()
    files = members(archive)
    checkpoint = next(name for name in files if name != MANIFEST)
    flipped = bytearray(files[checkpoint])
    flipped[len(flipped) // 2] ^= 0xFF
    entry = json.loads(files[MANIFEST])["files"][checkpoint]
    corrupt_gzip = bytearray(good)
    corrupt_gzip[len(good) // 2] ^= 0xFF
    listed = dict(json.loads(files[MANIFEST])["files"])
    return {
        "truncated": good[: len(good) // 2],
        "corrupt": bytes(corrupt_gzip),
        "digest": tar_bytes({**files, checkpoint: bytes(flipped)}),
        # the manifest agrees with the flipped bytes, but the checkpoint's own weights digest does not
        "weights": tar_bytes(with_manifest({**files, checkpoint: bytes(flipped)}, files={
            checkpoint: {**entry, "sha256": hashlib.sha256(flipped).hexdigest()}})),
        "recipe": tar_bytes(with_manifest(files, files={checkpoint: {**entry, "recipe": {"recipe": "Other"}}})),
        "missing": tar_bytes({MANIFEST: files[MANIFEST]}),
        "zip": _zip(files),
        "text": b"a letter, not an archive\n",
        "no-manifest": tar_bytes({checkpoint: files[checkpoint]}),
        "not-ours": tar_bytes(with_manifest(files, kind="something else")),
        "parent": tar_bytes({**files, "../evil.pt": files[checkpoint]}),
        "absolute": tar_bytes({**files, "/tmp/evil.pt": files[checkpoint]}),
        "folder": tar_bytes({**files, "smoke/evil.pt": files[checkpoint]}),
        "unlisted": tar_bytes({**files, "extra.pt": files[checkpoint]}),
        "symlink": tar_bytes(with_manifest({**files, "link.pt": b""}, files={**listed, "link.pt": entry}),
                             kinds={"link.pt": tarfile.SYMTYPE}),
    }  # fmt: skip


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


EXPECTED = {
    "truncated": r" is damaged \((ReadError|EOFError)",
    # a flipped byte inside the compressed stream: the member's digest fails before gzip's CRC is read
    "corrupt": r": fashion_supervised-\w+\.pt does not match its SHA-256 digest",
    "digest": r": fashion_supervised-\w+\.pt does not match its SHA-256 digest in the manifest \(damaged\)",
    "weights": r": fashion_supervised-\w+\.pt is not a readable checkpoint of this course",
    "recipe": r": fashion_supervised-\w+\.pt was trained with other settings than its manifest's recipe",
    "missing": r": fashion_supervised-\w+\.pt is in the manifest but not in the archive \(truncated\?\)",
    "zip": r" is not a course checkpoint archive: not a tar file \(plain or compressed\)",
    "text": r" is not a course checkpoint archive: not a tar file",
    "no-manifest": rf"is not a course checkpoint archive: it has no {MANIFEST}",
    "not-ours": r"is not a course checkpoint archive \(format 1\)",
    "parent": r": unexpected member '\.\./evil\.pt' \(only plain <name>\.pt files belong here\)",
    "absolute": r": unexpected member '/tmp/evil\.pt'",
    "folder": r": unexpected member 'smoke/evil\.pt'",
    "unlisted": r": member 'extra\.pt' is not in its manifest",
    "symlink": r": member 'link\.pt' is not a regular file",
}


def test_damaged_and_foreign_archives_are_refused_by_name_and_leave_nothing(packed, isolated, monkeypatch, capsys):
    archive, _ = packed
    cache = isolated / "student"
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(cache))
    cases = damaged(archive)
    assert sorted(cases) == sorted(EXPECTED)
    for name, content in cases.items():
        path = isolated / f"{name}.tar.gz"
        path.write_bytes(content)
        assert course.main(["unpack", str(path)]) == 1, name
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith(f"error: {path}"), (name, error)
        assert re.search(EXPECTED[name], error), (name, error)
        left = [p for p in cache.rglob("*")] if cache.exists() else []
        assert not left, f"{name}: left {left}"
    assert not (isolated / "evil.pt").exists() and not Path("/tmp/evil.pt").exists()


def test_pack_without_checkpoints_and_unpack_without_a_file_say_what_to_do(isolated, capsys):
    assert course.main(["pack", "--profile", "smoke", "--output", str(isolated / "kit.tar.gz")]) == 1
    assert "no checkpoints in " in capsys.readouterr().err and not (isolated / "kit.tar.gz").exists()
    assert course.main(["unpack", str(isolated / "nothing.tar.gz")]) == 1
    assert capsys.readouterr().err == f"error: no archive file {isolated / 'nothing.tar.gz'}\n"


def test_a_gzip_that_holds_no_tar_is_refused(isolated, capsys):
    path = isolated / "plain.gz"
    path.write_bytes(gzip.compress(b"x" * 1000))
    assert course.main(["unpack", str(path)]) == 1
    assert "is not a course checkpoint archive: not a tar file" in capsys.readouterr().err


def test_the_laptop_pack_holds_the_checkpoints_earlier_runs_left_in_cpu(packed, isolated, monkeypatch):
    archive, _ = packed
    checkpoint = f"{RECIPE.checkpoint_name()}.pt"
    root = isolated / "checkpoints"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / checkpoint).write_bytes(members(archive)[checkpoint])  # as the cpu profile left it
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(root))
    assert course.main(["pack", "--output", str(isolated / "laptop.tar.gz")]) == 0  # laptop is the default
    manifest = json.loads(members(isolated / "laptop.tar.gz")[MANIFEST])
    assert manifest["profile"] == "laptop" and list(manifest["files"]) == [checkpoint]
