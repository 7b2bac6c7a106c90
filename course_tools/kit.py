"""Trained checkpoints handed to a class: ``python -m course_tools pack|unpack``.

``pack`` puts one profile's checkpoint cache into a single ``.tar.gz``: the ``<name>.pt``
files and a manifest (``course-checkpoints.json``) holding each file's SHA-256 digest,
size and recipe (the settings it was trained with), the course version and the profile.
``unpack`` checks every member against that manifest in a temporary folder next to the
cache and moves the files into the cache only when all of them passed, so a damaged or
foreign archive leaves nothing behind. The notebooks then load the checkpoints instead
of training, because their recipes hash to the same file names.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zlib
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

from course_tools.common import CourseError
from course_utils.checkpoints import CheckpointError, load_checkpoint
from course_utils.runtime import PROFILES, atomic_write, checkpoint_folders, checkpoint_root

MANIFEST = "course-checkpoints.json"
KIND = "course_utils checkpoints"
FORMAT = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.pt")  # a plain file name: no folder, no "..", no absolute path


def _sha256(stream: IO[bytes], copy_to: IO[bytes] | None = None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return digest.hexdigest(), size


def pack(output: Path, profile: str) -> dict[str, Any]:
    """Write ``profile``'s checkpoints (every ``*.pt`` of its :func:`~course_utils.runtime.checkpoint_folders`),
    each read and verified first, with their manifest into the archive ``output``; returns the manifest."""
    folders = checkpoint_folders(profile)
    found = {path.name: path for folder in reversed(folders) for path in folder.glob("*.pt")}  # the profile's own wins
    paths = [found[name] for name in sorted(found)]
    if not paths:
        raise CourseError(f"no checkpoints in {folders[0]}; run the notebooks with COURSE_PROFILE={profile} first")
    files = {}
    for path in paths:
        try:
            record = load_checkpoint(path)
        except CheckpointError as error:
            raise CourseError(str(error)) from None
        with path.open("rb") as f:
            digest, size = _sha256(f)
        files[path.name] = {"sha256": digest, "bytes": size, "recipe": record["settings"],
                            "versions": record.get("versions", {})}  # fmt: skip
    manifest = {"kind": KIND, "format": FORMAT, "course_version": version("course_utils"), "profile": profile,
                "files": files}  # fmt: skip
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    with atomic_write(Path(output)) as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(text), int(time.time())
        tar.addfile(info, io.BytesIO(text))
        for path in paths:
            tar.add(path, arcname=path.name, recursive=False)
    return manifest


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    member = next((m for m in tar.getmembers() if m.name == MANIFEST), None)
    if member is None or not member.isfile():
        raise CourseError(f"{archive} is not a course checkpoint archive: it has no {MANIFEST}")
    try:
        manifest = json.loads(tar.extractfile(member).read())
    except ValueError as error:
        raise CourseError(f"{archive}: its {MANIFEST} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND or manifest.get("format") != FORMAT:
        raise CourseError(
            f"{archive} is not a course checkpoint archive (format {FORMAT}): its {MANIFEST} says otherwise"
        )
    if manifest.get("profile") not in PROFILES or not isinstance(manifest.get("files"), dict):
        raise CourseError(f"{archive}: its {MANIFEST} names no known profile ({', '.join(PROFILES)}) or no files")
    return manifest


def _check_members(tar: tarfile.TarFile, manifest: dict[str, Any], archive: Path) -> list[tarfile.TarInfo]:
    """The checkpoint members, after refusing any name, type, duplicate or file the manifest does not list."""
    names = [m.name for m in tar.getmembers()]
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise CourseError(f"{archive}: member {duplicated[0]!r} appears more than once")
    members = [m for m in tar.getmembers() if m.name != MANIFEST]
    for member in members:
        if not NAME.fullmatch(member.name):
            raise CourseError(f"{archive}: unexpected member {member.name!r} (only plain <name>.pt files belong here)")
        if not member.isfile():
            raise CourseError(f"{archive}: member {member.name!r} is not a regular file")
        if member.name not in manifest["files"]:
            raise CourseError(f"{archive}: member {member.name!r} is not in its manifest")
    if missing := sorted(set(manifest["files"]) - {m.name for m in members}):
        raise CourseError(f"{archive}: {missing[0]} is in the manifest but not in the archive (truncated?)")
    return members


def unpack(archive: Path) -> tuple[dict[str, Any], Path]:
    """Verify ``archive`` whole and move its checkpoints into ``checkpoint_root()/<profile>``;
    returns the manifest and that folder. Raises :class:`CourseError` naming the archive and
    the fault; then nothing was written to the cache."""
    archive = Path(archive)
    if not archive.is_file():
        raise CourseError(f"no archive file {archive}")
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.ReadError:
        raise CourseError(
            f"{archive} is not a course checkpoint archive: not a tar file (plain or compressed)"
        ) from None
    try:
        with tar:
            manifest = _read_manifest(tar, archive)
            members = _check_members(tar, manifest, archive)
            root = checkpoint_root()
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".unpack-", dir=root) as temporary:
                staged = [_stage(tar, member, manifest["files"][member.name], Path(temporary), archive)
                          for member in members]  # fmt: skip
                target = root / manifest["profile"]
                target.mkdir(parents=True, exist_ok=True)
                for path in staged:
                    os.replace(path, target / path.name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        reason = " ".join(str(error).split())
        raise CourseError(f"{archive} is damaged ({type(error).__name__}: {reason}); ask for a new copy") from None
    return manifest, target


def _stage(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict[str, Any], folder: Path, archive: Path) -> Path:
    """Copy one member into ``folder`` and check its size, digest and recipe against the manifest."""
    path = folder / member.name
    with tar.extractfile(member) as source, path.open("wb") as f:
        digest, size = _sha256(source, copy_to=f)
    if size != entry.get("bytes") or digest != entry.get("sha256"):
        raise CourseError(f"{archive}: {member.name} does not match its SHA-256 digest in the manifest (damaged)")
    try:
        record = load_checkpoint(path)
    except CheckpointError:
        raise CourseError(f"{archive}: {member.name} is not a readable checkpoint of this course") from None
    if record["settings"] != entry.get("recipe"):
        raise CourseError(f"{archive}: {member.name} was trained with other settings than its manifest's recipe")
    return path


def describe(manifest: dict[str, Any]) -> str:
    """One line: how many checkpoints, which profile, which course version."""
    return f"{len(manifest['files'])} checkpoints, profile {manifest['profile']}, course {manifest['course_version']}"
