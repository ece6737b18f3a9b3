"""Checkpoint files: safe round trip, refusal of foreign files, finding the right one."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from hwkit import checkpoint
from hwkit.checkpoint import FORMAT, FORMAT_VERSION, Checkpoint, find_checkpoint, find_store
from hwkit.config import ModelConfig
from hwkit.errors import CheckpointError, StoreError
from hwkit.models import build_model


def save_checkpoint(path, payload: dict):
    """Write ``payload`` (the file's keys, without the format tags) through ``Checkpoint``."""
    return Checkpoint.from_dict({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}).save(path)


def _payload() -> dict:
    """A synthesis model after one optimiser step, with every key a training run writes."""
    config = ModelConfig("synthesis", hidden=8, layers=2, mixtures=2, window_mixtures=2, alphabet_size=5)
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 3, 3), torch.tensor([[1, 2]]), torch.tensor([[True, True]]))[0].sum().backward()
    optimizer.step()
    return {
        "model_config": config.to_dict(),
        "train_config": {"lr": 1e-3, "max_steps": None},
        "alphabet": "abcd",
        "stats": {"mean": [1.0, 0.0], "std": [2.0, 3.0]},
        "store": {"path": "cache/demo.h5", "fingerprint": "f" * 64, "source": "demo"},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None,
        "step": 7,
        "epoch": 1,
        "epoch_step": 0,
        "stale_epochs": 0,
        "rng": {"torch": torch.get_rng_state(), "numpy": ["MT19937", [1, 2, 3], 2, 0, 0.0]},
        "metrics": [{"kind": "valid", "step": 7, "nats_per_line": -12.5}],
        "best_valid": -12.5,
    }


def test_round_trip_is_weights_only_and_keeps_every_key(tmp_path):
    payload = _payload()
    path = save_checkpoint(tmp_path / "run" / "best.pt", payload)
    raw = torch.load(path, weights_only=True)  # the plain safe loader accepts it
    assert raw["format"] == FORMAT and raw["format_version"] == FORMAT_VERSION
    assert "scheduler" not in raw  # the dead key old files carry is read and dropped
    for key, value in payload.items():
        if key in ("model", "optimizer", "rng", "scheduler", "train_config"):
            continue
        assert raw[key] == value, key
    assert {k: raw["train_config"][k] for k in payload["train_config"]} == payload["train_config"]
    ckpt = Checkpoint.load(path)
    assert (ckpt.kind, ckpt.alphabet.chars, ckpt.step, ckpt.epoch, ckpt.best_valid) == ("synthesis", "abcd", 7, 1, -12.5)
    assert ckpt.train_config.lr == 1e-3 and ckpt.store == payload["store"] and ckpt.path == path
    for name, tensor in payload["model"].items():
        assert torch.equal(ckpt.weights[name], tensor)
    assert torch.equal(ckpt.resume.rng["torch"], payload["rng"]["torch"])
    assert ckpt.resume.optimizer["state"][0]["step"] == payload["optimizer"]["state"][0]["step"]
    assert not [p for p in path.parent.iterdir() if p.name != "best.pt"]  # no temp file left behind
    slim = Checkpoint.load(ckpt.weights_only().save(tmp_path / "slim.pt"))
    assert slim.resume is None and slim.metrics == payload["metrics"] and slim.step == 7


@pytest.mark.parametrize(
    "change, says",
    [
        ({"stats": {}}, "stats must hold mean and std"),
        ({"stats": {"mean": [0, 0], "std": [1, 0]}}, "positive std devs"),
        ({"alphabet": "aab"}, "unique"),
        ({"model_config": {"kind": "synthesis", "hidden": "8"}}, "hidden must be an integer"),
        ({"model_config": {"kind": "wizard"}}, "unknown model kind"),
        ({"train_config": {"lr": 1e-3, "warmup": 5}}, "unknown keys warmup"),
        ({"extra": 1}, "unknown checkpoint keys extra"),
        ({"epoch": "1"}, "epoch must be a whole number"),
        ({"store": "x"}, "store must be a dict"),
        ({"metrics": [1, 2]}, "metrics must be records"),
        ({"best_valid": "low"}, "best_valid must be a number"),
        ({"init_from": [1]}, "init_from must be a dict"),
        ({"model": {"cell.weight_ih": torch.tensor([1.0, float("nan")])}}, "damaged weights .* in cell.weight_ih"),
        ({"model": {"head.bias": "zeros"}}, "damaged weights"),
    ],
)
def test_hand_edited_checkpoints_are_one_line_errors(tmp_path, change, says):
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **_payload(), **change}, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match=says) as info:
        Checkpoint.load(tmp_path / "e.pt")
    assert str(info.value).startswith(f"{tmp_path / 'e.pt'}: ") and "\n" not in str(info.value)


def test_find_store_prefers_the_hint_then_the_recorded_path_then_folders_above(tmp_path, make_store, monkeypatch):
    store = make_store()
    from hwkit.store import Store

    payload = {**_payload(), "store": {**Store(store).reference(), "path": "cache/s.h5"}}
    ckpt = Checkpoint.load(save_checkpoint(tmp_path / "proj" / "models" / "r" / "best.pt", payload))
    (tmp_path / "proj" / "cache").mkdir()
    (tmp_path / "proj" / "cache" / "s.h5").write_bytes(store.read_bytes())
    (tmp_path / "elsewhere" / "cache").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert find_store(ckpt) == tmp_path / "proj" / "cache" / "s.h5"  # under a folder above the checkpoint
    (tmp_path / "elsewhere" / "cache" / "s.h5").write_bytes(store.read_bytes())
    assert find_store(ckpt) == Path("cache/s.h5")  # the recorded path, from here
    assert find_store(ckpt, store) == store
    with pytest.raises(StoreError, match="nope.h5: no such file"):
        find_store(ckpt, "nope.h5")
    (tmp_path / "elsewhere" / "cache" / "s.h5").unlink()
    (tmp_path / "proj" / "cache" / "s.h5").unlink()
    with pytest.raises(StoreError, match="its store cache/s.h5 is not found"):
        find_store(ckpt)


def test_model_from_checkpoint_rebuilds_the_same_network(tmp_path):
    payload = _payload()
    payload["model_config"] = ModelConfig("prediction", hidden=8, layers=2, mixtures=2).to_dict()
    torch.manual_seed(1)
    original = build_model(ModelConfig.from_dict(payload["model_config"]))
    payload["model"] = original.state_dict()
    model = Checkpoint.load(save_checkpoint(tmp_path / "a.pt", payload)).build_model()
    assert not model.training
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        assert torch.equal(model(x)[0], original(x)[0])


def test_weights_that_do_not_fit_raise_checkpoint_error(tmp_path):
    payload = _payload()
    payload["model_config"]["hidden"] = 16
    ckpt = Checkpoint.load(save_checkpoint(tmp_path / "bad.pt", payload))
    with pytest.raises(CheckpointError, match="bad.pt: weights do not fit"):
        ckpt.build_model()


class Foreign:
    pass


@pytest.mark.parametrize(
    "write, reason",
    [
        (lambda p: p.write_text("not a checkpoint"), "not a checkpoint file (it holds text)"),
        (lambda p: p.write_text('{"kind": "train", "step": 1}\n'), "not a checkpoint file (it holds text)"),
        (lambda p: p.write_text("idle thoughts\n"), "not a checkpoint file (it holds text)"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "not a torch checkpoint file"),
        (lambda p: torch.save({"weights": torch.zeros(2)}, p), "a torch file, but not an hwkit checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "a torch file, but not an hwkit checkpoint"),
        (lambda p: torch.save({"x": Foreign()}, p), "holds objects a safe load refuses"),
        (lambda p: p.write_bytes(pickle.dumps({"format": FORMAT}, protocol=2)), "not a torch checkpoint file"),
    ],
    ids=["text", "jsonl", "text-i", "empty", "binary", "foreign-dict", "list", "pickled-object", "plain-pickle"],
)
def test_foreign_files_raise_one_line_checkpoint_error(tmp_path, write, reason):
    path = tmp_path / "foreign.pt"
    write(path)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    assert "weights_only" not in message and "miniz" not in message  # torch's words are not the reason


def test_unknown_version_and_truncated_file_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "v.pt", _payload())
    data = path.read_bytes()
    torch.save({**torch.load(path, weights_only=True), "format_version": 99}, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match=r"v99.pt: made by a newer hwkit \(format_version 99"):
        Checkpoint.load(tmp_path / "v99.pt")
    torch.save({**torch.load(path, weights_only=True), "format_version": "1"}, tmp_path / "vs.pt")
    with pytest.raises(CheckpointError, match="format_version must be a whole number, got '1'"):
        Checkpoint.load(tmp_path / "vs.pt")
    for cut in (len(data) // 2, len(data) - 20, 10):
        (tmp_path / "half.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"half.pt: truncated"):
            Checkpoint.load(tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Checkpoint.load(tmp_path / "missing.pt")


def test_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", _payload())
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {**_payload(), "step": 8})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_find_checkpoint(tmp_path, monkeypatch):
    models = tmp_path / "models"
    assert find_checkpoint(None, models) == checkpoint.BUNDLED  # nothing trained yet: the bundled demo model
    monkeypatch.setattr(checkpoint, "BUNDLED", tmp_path / "not-installed.pt")
    with pytest.raises(CheckpointError, match="no checkpoint under .*models/; run `hwkit train` first"):
        find_checkpoint(None, models)
    old = save_checkpoint(models / "old" / "best.pt", _payload())
    new = save_checkpoint(models / "new" / "best.pt", _payload())
    os.utime(old, (1_000_000, 1_000_000))
    assert find_checkpoint(None, models) == new
    last_only = save_checkpoint(models / "partial" / "last.pt", _payload())
    os.utime(last_only, (2_000_000_000, 2_000_000_000))
    assert find_checkpoint(None, models) == new  # only best.pt counts as a finished model
    assert find_checkpoint(None, models, kind="synthesis") == new  # _payload() is a synthesis model
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"no prediction checkpoint under .*run `hwkit train --model prediction`"):
        find_checkpoint(None, models, kind="prediction")  # the bundled model writes text: never a fallback here
    assert find_checkpoint(models / "partial") == last_only
    save_checkpoint(models / "partial" / "best.pt", _payload())
    assert find_checkpoint(models / "partial") == models / "partial" / "best.pt"
    assert find_checkpoint(old) == old
    (models / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither best.pt nor last.pt"):
        find_checkpoint(models / "empty")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        find_checkpoint(models / "nope.pt")


def test_find_checkpoint_by_kind_skips_readers_when_writing_and_falls_back_to_the_bundled_reader(tmp_path):
    models = tmp_path / "models"
    assert find_checkpoint(None, models, kind="recognizer") == checkpoint.BUNDLED_READER
    assert Checkpoint.load(checkpoint.BUNDLED_READER).kind == "recognizer"
    writer = save_checkpoint(models / "writer" / "best.pt", _payload())
    reader_payload = {**_payload(), "model_config": ModelConfig("recognizer", hidden=8, layers=1, alphabet_size=5).to_dict()}
    reader = save_checkpoint(models / "reader" / "best.pt", reader_payload)
    os.utime(writer, (1_000_000, 1_000_000))  # the reader is newer
    assert find_checkpoint(None, models, kind=("prediction", "synthesis")) == writer
    assert find_checkpoint(None, models, kind="recognizer") == reader
    assert find_checkpoint(None, models) == reader  # any kind: the newest


def test_bundled_names_the_bundled_model_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_checkpoint("bundled") == checkpoint.BUNDLED
    (tmp_path / "bundled").mkdir()  # a run folder of that name is what the user means here
    (tmp_path / "bundled" / "best.pt").write_bytes(b"x")
    assert find_checkpoint("bundled") == Path("bundled") / "best.pt"
