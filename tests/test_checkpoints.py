"""Checkpoints: atomic, verified, refusing what they cannot store, and the cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from course_utils.checkpoints import CheckpointError, cached, load_checkpoint, save_checkpoint, weights_digest


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_round_trip_keeps_weights_settings_and_history(isolated):
    model = _model()
    path = isolated / "ck" / "toy.pt"
    save_checkpoint(path, model, {"lr": 0.05, "sizes": (1, 2)}, {"loss": [np.float32(0.5), 0.25]})
    record = load_checkpoint(path)
    assert record["settings"] == {"lr": 0.05, "sizes": [1, 2]}
    assert record["history"] == {"loss": [0.5, 0.25]} and type(record["history"]["loss"][0]) is float
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    fresh.load_state_dict(record["model"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert record["versions"]["torch"] == torch.__version__
    assert [p.name for p in path.parent.iterdir()] == ["toy.pt"], "no temporary file may be left behind"


def test_the_digest_sees_one_changed_byte():
    state = _model().state_dict()
    before = weights_digest(state)
    state["0.weight"].view(torch.uint8).view(-1)[5] ^= 1
    assert weights_digest(state) != before


def test_damaged_weights_are_refused_with_the_file_named(isolated):
    path = isolated / "toy.pt"
    save_checkpoint(path, _model(), {}, {})
    record = torch.load(path, weights_only=True)
    record["model"]["0.weight"][0, 0] += 1.0  # what a flipped bit in the stored weights does
    torch.save(record, path)
    with pytest.raises(CheckpointError, match=r"toy.pt: the stored weights do not match their digest"):
        load_checkpoint(path)


def test_a_file_that_is_no_checkpoint_is_a_clear_error(isolated):
    path = isolated / "bad.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt is not a readable checkpoint"):
        load_checkpoint(path)
    torch.save({"config": {}, "model": {}, "history": {}}, path)  # the old format
    with pytest.raises(CheckpointError, match="not a checkpoint of this course"):
        load_checkpoint(path)


class Payload:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_loading_refuses_arbitrary_pickled_objects(isolated):
    path = isolated / "evil.pt"
    torch.save({"format": 2, "settings": {}, "model": {}, "history": {}, "digest": "", "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def _trainer(model, calls):
    def fn():
        calls.append(1)
        with torch.no_grad():
            model[0].weight.fill_(len(calls))
        return {"loss": [float(len(calls))]}

    return fn


def test_cache_hit_miss_and_forced_retrain(isolated, monkeypatch):
    calls = []
    model = _model()
    assert cached("toy", {"epochs": 1}, model, _trainer(model, calls)) == {"loss": [1.0]}
    second = _model()
    assert cached("toy", {"epochs": 1}, second, _trainer(second, calls)) == {"loss": [1.0]}
    assert len(calls) == 1, "same settings: loaded, not trained"
    assert torch.all(second[0].weight == 1.0), "the saved weights must be loaded"
    cached("toy", {"epochs": 2}, _model(), _trainer(_model(), calls))
    assert len(calls) == 2, "other settings: trained again"
    cached("toy", {"epochs": 2}, _model(), _trainer(_model(), calls), retrain=True)
    assert len(calls) == 3
    monkeypatch.setenv("COURSE_RETRAIN", "yes")
    cached("toy", {"epochs": 2}, _model(), _trainer(_model(), calls))
    assert len(calls) == 4
    assert (isolated / "checkpoints" / "laptop" / "toy.pt").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"seed": np.int64(3)}, r"setting seed = .*is a numpy.int64"), ({"lr": float("nan")}, "setting lr is nan"),
     ({"sizes": [1, object()]}, r"setting sizes\[1\]")],
)  # fmt: skip
def test_settings_that_cannot_be_stored_fail_before_training(isolated, settings, message):
    calls = []
    with pytest.raises(TypeError, match=message):
        cached("toy", settings, _model(), _trainer(_model(), calls))
    assert calls == [], "nothing may be trained when it could not be saved"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_fails_before_training(isolated):
    folder = isolated / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    calls = []
    try:
        with pytest.raises(PermissionError, match="COURSE_CHECKPOINT_DIR"):
            cached("toy", {}, _model(), _trainer(_model(), calls), folder=folder)
    finally:
        folder.chmod(0o700)
    assert calls == []


def test_a_folder_that_is_a_file_fails_before_training(isolated):
    blocker = isolated / "not-a-folder"
    blocker.write_text("")
    calls = []
    with pytest.raises(PermissionError, match="cannot write checkpoints"):
        cached("toy", {}, _model(), _trainer(_model(), calls), folder=blocker / "sub")
    assert calls == []
