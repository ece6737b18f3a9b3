"""``hwkit train`` through click: end to end on the tiny preset, and the errors a user can fix."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from helpers import checkpoint_dict
from hwkit.cli import cli
from hwkit.cli._config_flags import Duration


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _invoke(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


@pytest.fixture
def tiny_run(make_store, in_tmp):
    """A finished tiny-preset run in models/t (2 epochs), and its store."""
    store = make_store(n_lines=24, max_points=60)
    result = _invoke(store, "--preset", "tiny", "--name", "t", "--log-every", "1")
    assert result.exit_code == 0, result.output
    return in_tmp / "models" / "t", store, result


def test_tiny_preset_writes_the_run_and_a_summary(tiny_run):
    run, _, result = tiny_run
    assert {"best.pt", "last.pt", "metrics.jsonl", "loss.png", "loss.svg"} <= {p.name for p in run.iterdir()}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "valid"}
    assert "best valid" in result.stdout and "hwkit sample models/t" in result.stdout
    ckpt = checkpoint_dict(run / "best.pt")
    assert ckpt["model_config"]["hidden"] == 32 and ckpt["train_config"]["crop"] == 64


@pytest.mark.parametrize("kind", ["prediction", "synthesis", "recognizer"])
def test_the_next_command_it_prints_works_as_printed(make_store, in_tmp, kind):
    store = make_store(n_lines=24, max_points=40, texts=["hello there", "oh hell", "the lot"] * 8)
    result = _invoke(store, "--model", kind, "--preset", "tiny", "--epochs", "1", "--batch-size", "8", "--name", "r")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("next")]
    command = shlex.split(line.split(None, 1)[1])
    assert command[0] == "hwkit" and "models/r" in command
    follow = CliRunner().invoke(cli, command[1:])
    assert follow.exit_code == 0, (command, follow.output)


def test_a_new_run_never_overwrites_one(tiny_run):
    _, store, _ = tiny_run
    again = _invoke(store, "--preset", "tiny", "--name", "t")
    assert again.exit_code == 1 and "already holds a run" in again.output


def test_resume_goes_on_with_more_epochs(tiny_run):
    run, _, _ = tiny_run
    resumed = _invoke("--resume", run, "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert checkpoint_dict(run / "last.pt")["epoch"] == 3


def test_resume_refuses_a_fixed_flag(tiny_run):
    run, _, _ = tiny_run
    refused = _invoke("--resume", run, "--batch-size", "4")
    assert refused.exit_code == 2 and "--batch-size: fixed by the checkpoint" in refused.output


def test_resume_with_a_new_learning_rate_switches_at_the_resume_point(tiny_run):
    run, _, _ = tiny_run
    slower = _invoke("--resume", run, "--epochs", "4", "--lr", "0.0005", "--log-every", "1")
    assert slower.exit_code == 0, slower.output
    assert "learning rate 0.003 -> 0.0005" in slower.stderr
    ckpt = checkpoint_dict(run / "last.pt")
    assert ckpt["train_config"]["lr"] == 0.0005 and ckpt["optimizer"]["param_groups"][0]["lr"] == 0.0005
    lrs = {r["step"]: r["lr"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"}
    before, after = [s for s, lr in lrs.items() if lr == 0.003], [s for s, lr in lrs.items() if lr == 0.0005]
    assert before and after and max(before) < min(after) and len(before) + len(after) == len(lrs)


def test_progress_goes_to_a_log_as_plain_lines(make_store, in_tmp, monkeypatch):
    """Not a terminal (click's runner, a batch job's log): a status line every LOG_EVERY_S seconds."""
    from hwkit.cli import _common

    store = make_store(n_lines=24, max_points=60)
    monkeypatch.setattr(_common, "LOG_EVERY_S", 0.0)
    result = _invoke(store, "--preset", "tiny", "--name", "t")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: ")]
    steps = checkpoint_dict(in_tmp / "models" / "t" / "last.pt")["step"]
    assert [line.split()[1] for line in lines] == [f"{n}/{steps}" for n in range(1, steps + 1)]
    assert "nats/pt" in lines[-1] and "pts/s" in lines[-1] and "time limit" not in lines[-1]
    limited = _invoke(store, "--preset", "tiny", "--name", "limited", "--time-limit", "2h")
    assert limited.exit_code == 0, limited.output
    assert "time limit in 1h 59m" in [line for line in limited.stderr.splitlines() if line.startswith("train: ")][0]


def test_the_time_left_shown_never_passes_the_time_limit():
    """A bar's estimate from the rate of steps says ~3m left when --time-limit 1m stops the run sooner."""
    import time
    from types import SimpleNamespace

    from hwkit.cli._common import time_left
    from hwkit.cli._train_report import reporter

    def task(eta, deadline):
        return SimpleNamespace(time_remaining=eta, fields={"deadline": deadline})

    now = time.monotonic()
    assert 55 <= time_left(task(216.0, now + 60)) <= 60
    assert time_left(task(30.0, now + 60)) == 30.0 and time_left(task(216.0, None)) == 216.0
    assert 55 <= time_left(task(None, now + 60)) <= 60 and time_left(task(5.0, now - 10)) == 0.0
    given = []
    start = {"event": "start", "total_steps": 90, "world": 1, "threads": 1, "device": "cpu", "kind": "synthesis",
             "params": 10, "train_lines": 5, "valid_lines": 1, "run_dir": "models/x"}  # fmt: skip
    reporter(lambda n=1, **kw: given.append(kw), SimpleNamespace(print=lambda *a: None), 60.0)(start)
    assert 55 <= given[0]["deadline"] - time.monotonic() <= 60  # the run's bar is told when it must stop
    reporter(lambda n=1, **kw: given.append(kw), SimpleNamespace(print=lambda *a: None), None)(start)
    assert given[1]["deadline"] is None


def test_default_run_name_and_synthesis(make_store, in_tmp):
    store = make_store(n_lines=24, max_points=40)
    result = _invoke(store, "--model", "synthesis", "--preset", "tiny", "--epochs", "1", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    (run,) = (in_tmp / "models").iterdir()
    assert run.name.startswith("synthesis-")
    assert checkpoint_dict(run / "best.pt")["model_config"]["alphabet_size"] > 2


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


@pytest.mark.parametrize(
    "args, says",
    [
        (["--model", "synthesis", "--crop", "100"], "--crop: prediction only"),
        (["--preset", "graves", "--max-norm", "5"], "--max-norm: applies to norm clipping only"),
        (["--clip", "graves", "--max-norm", "5"], "--max-norm: applies to norm clipping only"),
        (["--device", "cpu", "--bf16"], "--bf16: CUDA only"),
        (["--resume", "models", "--hidden", "64"], "--hidden: fixed by the checkpoint"),
        (["--resume", "models", "--model", "prediction"], "--model: fixed by the checkpoint"),
        (["--resume", "models", "--name", "other"], "--name: a resumed run stays in its folder"),
        (["--resume", "models", "--init-from", "models"], "Error: --init-from: a resumed run keeps its weights"),
        (["--resume", "models", "--extend-alphabet"], "Error: --extend-alphabet: a resumed run keeps its weights"),
        (["--model", "synthesis", "--jump-table"], "--jump-table: places the pen by the stroke context"),
        (["--model", "prediction", "--stroke-context", "--jump-table"], "--jump-table: synthesis only"),
        (["--name", "../elsewhere"], "--name '../elsewhere': a folder name under models/"),
        (["--name", "/tmp/run"], "--name '/tmp/run': a folder name under models/"),
    ],
)
def test_bad_flag_combinations_are_usage_errors_before_any_work(in_tmp, args, says):
    (in_tmp / "models").mkdir()  # an empty run folder: a check that came after loading would fail differently
    result = _invoke(*args)  # and there is no store in cache/ either
    assert result.exit_code == 2, result.output
    assert says in result.stderr


def test_help_shows_presets_defaults_and_the_default_store():
    from hwkit.config import PRESETS, preset_table

    text = CliRunner().invoke(cli, ["train", "-h"]).output
    table = preset_table()
    assert "\n".join("  " + row for row in table.splitlines()) in text
    assert [row.split()[0] for row in table.splitlines()[1:] if not row.startswith(" ")] == list(PRESETS)
    flat = " ".join(text.split())
    assert "Non-finite steps in a row before giving up. [default: 5; x>=1]" in flat
    inspect_help = " ".join(CliRunner().invoke(cli, ["inspect", "-h"]).output.split())
    rule = "STORE defaults to cache/iamondb.h5 when it exists, else cache/demo.h5, else the newest cache/*.h5"
    assert rule in flat and rule in inspect_help


def test_ctrl_c_saves_last_pt_and_exits_130(make_store, in_tmp, monkeypatch):
    from hwkit import train as lib

    store = make_store(n_lines=24, max_points=60)  # tiny: 16 train lines, 2 batches of 8 per epoch, 2 epochs
    real, calls = lib.clip_gradients, [0]

    def clip_gradients(model, config):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(model, config)

    with monkeypatch.context() as patch:
        patch.setattr(lib, "clip_gradients", clip_gradients)
        result = _invoke(store, "--preset", "tiny", "--name", "t", "--log-every", "1")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == "interrupted at step 1; resume with: hwkit train --resume models/t"
    assert "Aborted" not in result.output and result.stdout == ""
    run = in_tmp / "models" / "t"
    ckpt = checkpoint_dict(run / "last.pt")
    assert (ckpt["step"], ckpt["epoch"], ckpt["epoch_step"]) == (1, 0, 1) and not (run / "best.pt").exists()

    resumed = _invoke("--resume", "models/t")
    assert resumed.exit_code == 0, resumed.output
    assert "at step 1 (epoch 0.50)" in resumed.stderr
    assert checkpoint_dict(run / "last.pt")["step"] == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]

    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.iterdir()}
    done = _invoke("--resume", "models/t", "--max-steps", "3")
    assert done.exit_code == 0, done.output
    assert done.stderr.strip() == (
        "note: models/t is already at step 4 (>= --max-steps); pass a larger --max-steps to go on"
    )
    assert done.stdout == ""
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.iterdir()} == before  # nothing changed
    done = _invoke("--resume", "models/t")  # its 2 epochs are done
    assert done.exit_code == 0 and "has done its 2 epochs already" in done.stderr
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.iterdir()} == before


def test_sigterm_saves_last_pt_like_ctrl_c(make_store, in_tmp):
    """A batch scheduler stops a job with SIGTERM: the run saves where it stood and can be resumed."""
    store = make_store(n_lines=24, max_points=60)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hwkit", "train", str(store), "--preset", "tiny", "--epochs", "500",
               "--name", "t", "--log-every", "1"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=in_tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = in_tmp / "models" / "t" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    step = checkpoint_dict(in_tmp / "models" / "t" / "last.pt")["step"]
    assert step >= 3 and err.strip().splitlines()[-1] == f"interrupted at step {step}; resume with: hwkit train --resume models/t"
    assert out == ""


def test_duration():
    duration = Duration().convert
    assert duration("900", None, None) == 900 and duration("15m", None, None) == 900
    assert duration("1h30m", None, None) == 5400 and duration("2.5s", None, None) == 2.5
    with pytest.raises(click.BadParameter):
        duration("15 minutes", None, None)


def test_resume_falls_back_to_best_pt_when_a_kill_left_no_last_pt(tiny_run):
    run, _, _ = tiny_run
    (run / "last.pt").unlink()  # killed between writing best.pt and last.pt
    resumed = _invoke("--resume", run, "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert "holds no last.pt: resuming from best.pt" in resumed.stderr and checkpoint_dict(run / "last.pt")["epoch"] == 3


def test_threads_are_set_and_shown(make_store, in_tmp):
    store = make_store(n_lines=24, max_points=60)
    result = _invoke(store, "--preset", "tiny", "--name", "t", "--max-steps", "1", "--threads", "1", "--log-every", "1")
    assert result.exit_code == 0, result.output
    assert "on cpu (1 thread):" in result.stderr and checkpoint_dict(in_tmp / "models" / "t" / "last.pt")["train_config"]["threads"] == 1
    records = [json.loads(line) for line in (in_tmp / "models" / "t" / "metrics.jsonl").read_text().splitlines()]
    assert [r["threads"] for r in records if r["kind"] == "train"] == [1]
