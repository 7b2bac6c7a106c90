"""Result files: what they record and where they go."""

from __future__ import annotations

import json

from course_utils import results


def test_save_records_profile_sources_metrics_and_time(isolated):
    path = results.save("01_demo", {"macro_f1": 0.91}, sources=["fashion_mnist train from X"], wall_seconds=12.345)
    assert path == isolated / "results" / "01_demo.json"
    record = json.loads(path.read_text())
    assert record["profile"] == "cpu" and record["metrics"] == {"macro_f1": 0.91}
    assert record["datasets"] == ["fashion_mnist train from X"] and record["wall_seconds"] == 12.3
    assert "cores" in record["hardware"]
    assert results.load("01_demo")["metrics"]["macro_f1"] == 0.91


def test_smoke_results_are_kept_apart_and_other_profiles_are_not_loaded(isolated, monkeypatch):
    results.save("01_demo", {"macro_f1": 0.5}, sources=[], wall_seconds=1)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert results.load("01_demo") is None, "a smoke run must not reuse cpu numbers"
    path = results.save("01_demo", {"macro_f1": 0.1}, sources=[], wall_seconds=1)
    assert path.parent.name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert results.load("01_demo")["metrics"]["macro_f1"] == 0.5
