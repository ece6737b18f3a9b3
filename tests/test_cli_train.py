"""``hwkit train`` through click: end to end on the tiny preset, and the errors a user can fix."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from hwkit.checkpoint import load_checkpoint
from hwkit.cli import cli
from hwkit.cli.train import _duration


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _invoke(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


def test_tiny_preset_end_to_end(make_store, in_tmp):
    store = make_store(n_lines=24, max_points=60)
    result = _invoke(store, "--preset", "tiny", "--name", "t", "--log-every", "1")
    assert result.exit_code == 0, result.output
    run = in_tmp / "models" / "t"
    assert {"best.pt", "last.pt", "metrics.jsonl", "loss.png", "loss.svg"} <= {p.name for p in run.iterdir()}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "valid"}
    assert "best valid" in result.stdout and "hwkit sample models/t" in result.stdout
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_config"]["hidden"] == 32 and ckpt["train_config"]["crop"] == 64

    again = _invoke(store, "--preset", "tiny", "--name", "t")
    assert again.exit_code == 1 and "already holds a run" in again.output

    resumed = _invoke("--resume", run, "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    refused = _invoke("--resume", run, "--lr", "0.1")
    assert refused.exit_code == 2 and "--lr" in refused.output


def test_default_run_name_and_synthesis(make_store, in_tmp):
    store = make_store(n_lines=24, max_points=40)
    result = _invoke(store, "--model", "synthesis", "--preset", "tiny", "--epochs", "1", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    (run,) = (in_tmp / "models").iterdir()
    assert run.name.startswith("synthesis-")
    assert load_checkpoint(run / "best.pt")["model_config"]["alphabet_size"] > 2


def test_missing_store_is_one_line_exit_1(in_tmp):
    result = _invoke("nowhere.h5", "--preset", "tiny")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: nowhere.h5")
    result = _invoke("--preset", "tiny")  # no STORE and nothing in cache/
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0 and "hwkit prepare" in result.output


def test_bad_flags_exit_2(in_tmp):
    assert _invoke("--preset", "huge").exit_code == 2
    assert _invoke("--optimizer", "sgd").exit_code == 2
    assert _invoke("--time-limit", "soon").exit_code == 2


def test_duration():
    assert _duration("900") == 900 and _duration("15m") == 900 and _duration("1h30m") == 5400
    assert _duration("2.5s") == 2.5 and _duration(None) is None
    with pytest.raises(click.BadParameter):
        _duration("15 minutes")
