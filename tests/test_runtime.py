"""Profile selection, devices and settings per profile."""

from __future__ import annotations

import contextlib

import pytest
import torch

import course_utils
from course_utils import runtime


@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("cpu", "cpu"), ("gpu", "gpu"), (" CPU ", "cpu")])
def test_profile_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert course_utils.profile() == expected


@pytest.mark.parametrize("accelerator, expected", [(None, "cpu"), ("cuda", "gpu"), ("mps", "gpu")])
def test_profile_default_follows_the_hardware(monkeypatch, accelerator, expected):
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.setattr(runtime, "_accelerator", lambda: accelerator)
    assert course_utils.profile() == expected


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="'fast' is not a profile.*smoke, cpu, gpu"):
        course_utils.profile()


def test_pick_and_device(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert course_utils.pick(smoke=1, cpu=2, gpu=3) == 1
    assert course_utils.device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    assert course_utils.pick(smoke=1, cpu=2, gpu=3) == 3
    monkeypatch.setattr(runtime, "_accelerator", lambda: None)
    with pytest.raises(RuntimeError, match="neither CUDA nor MPS"):
        course_utils.device()


def test_folders_follow_the_environment(isolated, monkeypatch):
    assert course_utils.data_dir() == isolated / "data"
    assert runtime.checkpoint_dir() == isolated / "checkpoints" / "cpu"
    assert runtime.results_dir() == isolated / "results"
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert runtime.results_dir() == isolated / "results" / "smoke", "smoke runs must not overwrite measured results"


def test_atomic_write_replaces_whole_or_not_at_all(isolated):
    path = isolated / "out" / "file.txt"
    with runtime.atomic_write(path, "w") as f:
        f.write("first")
    assert path.read_text() == "first" and oct(path.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(RuntimeError):
        with runtime.atomic_write(path, "w") as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "first", "a failed write must leave the old file"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"], "no temporary file may be left"


def test_no_bfloat16_on_a_torch_without_the_cpu_probes(monkeypatch):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    runtime._native_bfloat16.cache_clear()
    try:
        assert runtime._native_bfloat16("cpu") is False
        assert isinstance(runtime.mixed_precision(torch.device("cpu")), contextlib.nullcontext)
    finally:
        runtime._native_bfloat16.cache_clear()
