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


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "Yes", "on", " On "])
def test_env_flag_on(monkeypatch, value):
    monkeypatch.setenv("COURSE_RETRAIN", value)
    assert runtime.env_flag("COURSE_RETRAIN", False) is True
    assert runtime.retrain_requested() is True


@pytest.mark.parametrize("value", ["0", "false", "False", "NO", "off", "OFF "])
def test_env_flag_off(monkeypatch, value):
    monkeypatch.setenv("COURSE_BF16", value)
    assert runtime.env_flag("COURSE_BF16", True) is False
    assert isinstance(runtime.mixed_precision(torch.device("cpu")), contextlib.nullcontext), "bfloat16 must be off"


@pytest.mark.parametrize("value, default", [(None, True), ("", False), ("  ", True)])
def test_env_flag_unset_or_empty_gives_the_default(monkeypatch, value, default):
    monkeypatch.delenv("COURSE_BF16", raising=False)
    if value is not None:
        monkeypatch.setenv("COURSE_BF16", value)
    assert runtime.env_flag("COURSE_BF16", default) is default


@pytest.mark.parametrize("value", ["2", "enable", "nein", "truee", "-1"])
def test_env_flag_anything_else_is_an_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("COURSE_BF16", value)
    with pytest.raises(ValueError, match=rf"COURSE_BF16='{value}' is neither on nor off; use one of 1/true/yes/on"):
        runtime.env_flag("COURSE_BF16", True)


def test_unknown_profile_error_quotes_what_was_set(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", " Fast ")
    with pytest.raises(ValueError, match=r"COURSE_PROFILE=' Fast ' is not a profile; choose one of smoke, cpu, gpu"):
        course_utils.profile()


@pytest.mark.parametrize(
    "amx, avx512, expected",
    [(True, True, "AMX"), (False, True, "AVX512-BF16"), (True, False, "AMX"), (False, False, None)],
)
def test_bfloat16_path_names_what_the_cpu_has(monkeypatch, amx, avx512, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512, raising=False)
    assert runtime.bfloat16_path("cpu") == expected
    assert runtime.bfloat16_path("mps") is None


def test_ensure_writable_creates_the_folder_or_raises(isolated):
    runtime.ensure_writable(isolated / "new" / "folder")
    assert (isolated / "new" / "folder").is_dir() and list((isolated / "new" / "folder").iterdir()) == []
    (isolated / "a-file").write_text("")
    with pytest.raises(NotADirectoryError):
        runtime.ensure_writable(isolated / "a-file" / "sub")
