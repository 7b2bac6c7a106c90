"""Profile selection, devices, precision and settings per profile."""

from __future__ import annotations

import contextlib

import pytest
import torch

import course_utils
from course_utils import runtime


@pytest.mark.parametrize(
    "value, expected", [("smoke", "smoke"), ("laptop", "laptop"), ("full", "full"), (" Laptop ", "laptop")]
)
def test_profile_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert course_utils.profile() == expected


@pytest.mark.parametrize("old, new", [("cpu", "laptop"), ("gpu", "full"), (" CPU ", "laptop")])
def test_the_old_profile_names_still_work_with_a_one_line_notice(monkeypatch, capsys, old, new):
    runtime._old_name_notice.cache_clear()
    monkeypatch.setenv("COURSE_PROFILE", old)
    assert course_utils.profile() == new and course_utils.profile() == new
    name = old.strip().lower()
    assert capsys.readouterr().err == (
        f"COURSE_PROFILE={name} is the old name of the {new} profile; set COURSE_PROFILE={new}\n"
    ), "said once, however often the profile is read"


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="'fast' is not a profile.*smoke, laptop, full"):
        course_utils.profile()


def test_pick_takes_the_new_names_only(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert course_utils.pick(smoke=1, laptop=2, full=3) == 1
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert course_utils.pick(smoke=1, laptop=2, full=3) == 3
    monkeypatch.setenv("COURSE_PROFILE", "cpu")  # an old profile name picks the new name's value
    assert course_utils.pick(smoke=1, laptop=2, full=3) == 2
    with pytest.raises(TypeError, match="cpu"):
        course_utils.pick(smoke=1, cpu=2, gpu=3)


@pytest.fixture
def machine(monkeypatch):
    """``machine(cuda=(major, minor) or None, mps=bool, cpu_bf16=bool)``: what torch reports."""

    def pretend(cuda: tuple[int, int] | None = None, mps: bool = False, cpu_bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda is not None)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16, raising=False)
        runtime.native_precision.cache_clear()

    monkeypatch.delenv("COURSE_PROFILE")
    for name in ("COURSE_DEVICE", "COURSE_PRECISION", "COURSE_BF16"):
        monkeypatch.delenv(name, raising=False)
    yield pretend
    runtime.native_precision.cache_clear()


@pytest.mark.parametrize(
    "cuda, mps, device, dtype",
    [
        ((7, 5), False, "cuda", torch.float16),  # T4: no native bfloat16, float16 with a scaler
        ((7, 0), True, "cuda", torch.float16),  # V100; CUDA comes before MPS
        ((8, 0), False, "cuda", torch.bfloat16),  # A100
        ((9, 0), False, "cuda", torch.bfloat16),  # H100
        ((6, 1), False, "cuda", torch.float32),  # Pascal: neither
        (None, True, "mps", torch.float32),
        (None, False, "cpu", torch.bfloat16),  # this CPU pretends to have AVX512-BF16
    ],
)
def test_the_laptop_profile_trains_on_the_best_device_in_its_native_precision(machine, cuda, mps, device, dtype):
    machine(cuda=cuda, mps=mps)
    assert course_utils.profile() == "laptop", "the profile is a budget: the same on every machine"
    assert course_utils.device() == torch.device(device)
    assert runtime.precision(course_utils.device()) == dtype
    assert runtime.grad_scaler(course_utils.device()).is_enabled() == (dtype == torch.float16)


def test_float16_on_cuda_7_5_and_bfloat16_on_8_0_are_described(machine):
    machine(cuda=(7, 5))
    assert runtime.describe_precision(torch.device("cuda")) == "float16 with a gradient scaler"
    machine(cuda=(8, 0))
    assert runtime.describe_precision(torch.device("cuda")) == "bfloat16 (CUDA)"
    machine(mps=True)
    assert runtime.describe_precision(torch.device("mps")) == "float32"
    assert isinstance(runtime.mixed_precision(torch.device("mps")), contextlib.nullcontext)


def test_without_cuda_or_mps_the_laptop_profile_runs_as_before(machine):
    # What the measured laptop runs did (before profiles were budgets): the CPU, and
    # bfloat16 autocast on a CPU with AVX512-BF16 (as this course's measuring machine has).
    machine(cuda=None, mps=False, cpu_bf16=True)
    assert course_utils.profile() == "laptop" and course_utils.device() == torch.device("cpu")
    autocast = runtime.mixed_precision(torch.device("cpu"))
    assert isinstance(autocast, torch.autocast)
    assert (autocast.device, autocast.fast_dtype) == ("cpu", torch.bfloat16)
    assert not runtime.grad_scaler(torch.device("cpu")).is_enabled()
    machine(cuda=None, mps=False, cpu_bf16=False)
    assert isinstance(runtime.mixed_precision(torch.device("cpu")), contextlib.nullcontext), "float32 without it"


def test_course_device_forces_a_device_and_names_a_missing_one(machine, monkeypatch):
    machine(cuda=(8, 0))
    monkeypatch.setenv("COURSE_DEVICE", "CPU")
    assert course_utils.device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "mps")
    with pytest.raises(RuntimeError, match="COURSE_DEVICE=mps but PyTorch finds no MPS device.*train on cuda"):
        course_utils.device()
    machine()
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="COURSE_DEVICE=cuda but PyTorch finds no CUDA device.*train on cpu"):
        course_utils.device()
    monkeypatch.setenv("COURSE_DEVICE", "gpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE='gpu' is not a device; choose one of cpu, cuda, mps"):
        course_utils.device()


@pytest.mark.parametrize(
    "precision, bf16, expected",
    [
        ("", "", torch.bfloat16),
        ("auto", "", torch.bfloat16),
        ("", "0", torch.float32),  # the older switch
        ("auto", "off", torch.float32),
        ("fp32", "", torch.float32),
        ("FP16", "", torch.float16),
        ("bf16", "0", torch.bfloat16),  # the general switch wins
    ],
)
def test_course_precision_chooses_and_course_bf16_still_turns_bfloat16_off(machine, monkeypatch, precision, bf16,
                                                                           expected):  # fmt: skip
    machine(cuda=None, cpu_bf16=True)
    monkeypatch.setenv("COURSE_PRECISION", precision)
    monkeypatch.setenv("COURSE_BF16", bf16)
    assert runtime.precision(torch.device("cpu")) == expected


def test_an_unknown_precision_is_named(machine, monkeypatch):
    machine()
    monkeypatch.setenv("COURSE_PRECISION", "half")
    with pytest.raises(ValueError, match="COURSE_PRECISION='half' is not a precision; choose one of auto, bf16, fp16"):
        runtime.precision(torch.device("cpu"))


def test_folders_follow_the_environment(isolated, monkeypatch):
    assert course_utils.data_dir() == isolated / "data"
    assert runtime.checkpoint_dir() == isolated / "checkpoints" / "laptop"
    assert runtime.results_dir() == isolated / "results"
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert runtime.results_dir() == isolated / "results" / "smoke", "smoke runs must not overwrite measured results"


def test_checkpoint_folders_put_the_profile_first_then_its_old_names(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(isolated / "cache"))
    cache = isolated / "cache"
    assert runtime.checkpoint_folders("laptop") == [cache / "laptop", cache / "cpu"]
    assert runtime.checkpoint_folders("full") == [cache / "full", cache / "gpu"]
    assert runtime.checkpoint_folders("smoke") == [cache / "smoke"]
    for name in ("cpu/a.pt", "cpu/b.pt", "laptop/b.pt", "gpu/c.pt"):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"")
    assert runtime.checkpoint_file("a") == cache / "cpu" / "a.pt"  # only an earlier run's
    assert runtime.checkpoint_file("b") == cache / "laptop" / "b.pt"  # the profile's own wins
    assert runtime.checkpoint_file("c") == cache / "laptop" / "c.pt"  # gpu/ is full's: where training saves


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
    runtime.native_precision.cache_clear()
    try:
        assert runtime.native_precision("cpu") == torch.float32
        assert isinstance(runtime.mixed_precision(torch.device("cpu")), contextlib.nullcontext)
    finally:
        runtime.native_precision.cache_clear()


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
    with pytest.raises(
        ValueError, match=r"COURSE_PROFILE=' Fast ' is not a profile; choose one of smoke, laptop, full"
    ):
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
