"""Result files: what they record and where they go."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from course_utils import results


def test_save_records_profile_sources_metrics_and_time(isolated):
    path = results.save("01_demo", {"macro_f1": 0.91}, sources=["fashion_mnist train from X"], wall_seconds=12.345)
    assert path == isolated / "results" / "01_demo.json"
    record = json.loads(path.read_text())
    assert record["profile"] == "laptop" and record["metrics"] == {"macro_f1": 0.91}
    assert record["datasets"] == ["fashion_mnist train from X"] and record["wall_seconds"] == 12.3
    assert record["hardware"]["cores_used"] == torch.get_num_threads()
    assert results.load("01_demo")["metrics"]["macro_f1"] == 0.91


def test_smoke_results_are_kept_apart_and_other_profiles_are_not_loaded(isolated, monkeypatch):
    results.save("01_demo", {"macro_f1": 0.5}, sources=[], wall_seconds=1)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert results.load("01_demo") is None, "a smoke run must not reuse laptop numbers"
    path = results.save("01_demo", {"macro_f1": 0.1}, sources=[], wall_seconds=1)
    assert path.parent.name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    assert results.load("01_demo")["metrics"]["macro_f1"] == 0.5


def test_nan_and_infinite_metrics_are_saved_as_null_with_the_reason(isolated):
    metrics = {"f1": float("nan"), "per_class": [0.5, float("inf")], "knn": {"k=20": np.float32(0.25)}}
    path = results.save("01_demo", metrics, sources=[], wall_seconds=1, config={"lr": np.float64(-np.inf)})
    record = json.loads(path.read_text())  # the standard parser accepts NaN; strict JSON must not contain it
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert record["metrics"] == {"f1": None, "per_class": [0.5, None], "knn": {"k=20": 0.25}}
    assert record["config"] == {"lr": None}
    assert record["nulls"] == {"metrics.f1": "was nan", "metrics.per_class[1]": "was inf", "config.lr": "was -inf"}


def test_numpy_and_tensor_numbers_are_saved_as_plain_numbers_and_objects_refused(isolated):
    metrics = {"acc": torch.tensor(0.75), "n": np.int64(3), "flag": True}
    record = json.loads(results.save("01_demo", metrics, sources=[], wall_seconds=1).read_text())
    assert record["metrics"] == {"acc": 0.75, "n": 3, "flag": True} and "nulls" not in record
    with pytest.raises(TypeError, match=r"metrics.model = .*cannot be saved"):
        results.save("01_demo", {"model": object()}, sources=[], wall_seconds=1)


@pytest.mark.parametrize("name", ["../escape", "sub/01_demo", "/tmp/x", "..", "", ".hidden", "01 demo", 1])
def test_unsafe_notebook_names_are_refused_and_nothing_is_written(isolated, name):
    with pytest.raises(ValueError, match=r"is not a results name.*file stem"):
        results.save(name, {"f1": 0.5}, sources=[], wall_seconds=1)
    with pytest.raises(ValueError, match=r"is not a results name"):
        results.load(name)
    assert sorted(p.name for p in isolated.rglob("*.json")) == []


def test_a_damaged_results_file_is_an_error_naming_it(isolated):
    path = isolated / "results" / "01_demo.json"
    path.parent.mkdir(parents=True)
    for damaged in ['{"metrics": {"f1": 0.5', "\xff\xfe not text", "[1, 2]"]:
        path.write_bytes(damaged.encode("latin-1"))
        with pytest.raises(ValueError, match=f"{path}.*run its notebook again"):
            results.load("01_demo")


def test_hardware_records_cpu_model_cores_the_bfloat16_path_and_the_precision(isolated, monkeypatch):
    monkeypatch.setattr(results, "cpu_model", lambda: "AMD EPYC")
    monkeypatch.setattr(results, "bfloat16_path", lambda device_type: "AVX512-BF16")
    monkeypatch.setattr(results, "precision", lambda device: torch.bfloat16)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    record = json.loads(results.save("01_demo", {}, sources=[], wall_seconds=1).read_text())
    available = len(os.sched_getaffinity(0))
    expected = {"cpu": "AMD EPYC", "cores_used": 1, "cores_available": available, "bfloat16": "AVX512-BF16"}
    assert record["hardware"] == {**expected, "precision": "bfloat16", "gpu": None, "torch": torch.__version__}
    assert results.describe_hardware(record["hardware"]) == f"AMD EPYC, 1 of {available} cores, bfloat16 AVX512-BF16"
    monkeypatch.setattr(results, "precision", lambda device: torch.float32)
    assert results.hardware()["bfloat16"] == "off", "bfloat16 switched off is not the hardware's path"
    monkeypatch.setattr(results, "bfloat16_path", lambda device_type: None)
    assert results.hardware()["bfloat16"] == "none"
    monkeypatch.setattr(results, "precision", lambda device: torch.float16)
    assert results.describe_hardware(results.hardware()).endswith("cores, bfloat16 none, float16")


def test_a_results_file_of_the_old_cpu_profile_is_read_as_laptop(isolated):
    (isolated / "results").mkdir()
    (isolated / "results" / "01_demo.json").write_text('{"profile": "cpu", "metrics": {"f1": 0.5}}')
    assert results.load("01_demo") == {"profile": "laptop", "metrics": {"f1": 0.5}}


def test_cpu_model_comes_from_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t: avx512_bf16\n")
    assert results.cpu_model(cpuinfo) == "AMD EPYC 9R14"
    monkeypatch.setattr(results.platform, "processor", lambda: "arm")
    assert results.cpu_model(tmp_path / "absent") == "arm"
