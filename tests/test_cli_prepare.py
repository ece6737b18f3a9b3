"""``hwkit prepare`` through click: summary, errors, refusal, flags, the no-SOURCE defaults."""

from __future__ import annotations

import json
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwkit.cli import cli
from hwkit.config import DemoParams
from hwkit.config import PrepareParams
from hwkit.store import Store
from iamtree import BROKEN, write_tree


def run(*args: str):
    return CliRunner().invoke(cli, ["prepare", *args])


def test_prepares_and_summarises(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=6, broken=BROKEN)
    stray = tree.root / "lineStrokes" / "[b]x[i].txt"  # dataset names are data, not markup
    stray.write_text("x")
    out = tmp_path / "out.h5"
    result = run(str(tree.root), "-o", str(out), "--jobs", "1", "--min-points", "30", "--max-jump", "300")
    assert result.exit_code == 0, result.output
    store = Store(out)
    assert len(store) == len(tree.lines)
    assert store.prepare_params["min_points"] == 30 and store.prepare_params["max_jump"] == 300.0
    assert f"{len(tree.lines)} lines" in result.stdout
    for reason in set(tree.skipped.values()):
        assert reason in result.stdout
    assert "[b]x[i].txt" in result.stdout


def test_json_report(tmp_path):
    tree = write_tree(tmp_path / "iam", broken=["malformed xml"])
    result = run(str(tree.root), "-o", str(tmp_path / "out.h5"), "--jobs", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == {"malformed xml": 1} and report["source"] == "iam-ondb"
    assert sum(report["lines"].values()) == len(tree.lines)


def test_missing_layout_is_a_one_line_error(tmp_path):
    result = run(str(tmp_path), "-o", str(tmp_path / "out.h5"))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(tmp_path) in lines[0]
    assert "lineStrokes" in lines[0]


def test_a_file_for_source_says_so(tmp_path):
    for name in ("afile.txt", "x.tar.gz"):
        (tmp_path / name).write_bytes(b"x")
        result = run(str(tmp_path / name), "-o", str(tmp_path / "out.h5"))
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{name} is a file; give the folder that holds lineStrokes-all.tar.gz" in lines[0]
        assert "no such folder" not in lines[0]


def test_warnings_for_a_truncated_archive_and_an_empty_split(tmp_path):
    tree = write_tree(tmp_path / "tars", forms=12, archives=True, truncate=True)
    result = run(str(tree.root), "-o", str(tmp_path / "a.h5"), "--jobs", "1", "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # warnings never reach stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert re.fullmatch(r"warning: lineStrokes-all\.tar\.gz is truncated: \d+ files could not be read", warnings[0])
    tree = write_tree(tmp_path / "one", forms=1)
    result = run(str(tree.root), "-o", str(tmp_path / "b.h5"), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "warning: split 'valid' is empty; hwkit train needs train and valid lines\n" in result.stderr


def test_summary_names_the_form_hash_without_writers(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=6, originals=False)
    result = run(str(tree.root), "-o", str(tmp_path / "out.h5"), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "split by form hash" in result.stdout and "0 writers" in result.stdout


def test_refuses_a_store_name_that_is_not_hdf5_before_any_work(tmp_path):
    tree = write_tree(tmp_path / "iam")
    result = run(str(tree.root), "-o", str(tmp_path / "out.txt"), "--jobs", "1")
    assert result.exit_code == 2 and "out.txt: a store is an HDF5 file" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    assert run(str(tree.root), "-o", str(tmp_path / "out.HDF5"), "--jobs", "1").exit_code == 0


def test_refuses_to_replace_without_force(tmp_path):
    tree = write_tree(tmp_path / "iam")
    out = tmp_path / "out.h5"
    assert run(str(tree.root), "-o", str(out), "--jobs", "1").exit_code == 0
    before = out.stat().st_mtime_ns
    result = run(str(tree.root), "-o", str(out), "--jobs", "1")
    assert result.exit_code == 1 and "--force" in result.stderr and out.stat().st_mtime_ns == before
    assert run(str(tree.root), "-o", str(out), "--jobs", "1", "--force").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--jobs", "0"],
        ["--min-points", "0"],
        ["--max-jump", "-1"],
        ["--lines", "10"],  # demo options need --demo
        ["--demo", "some/source"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2, result.output


def test_no_source_uses_data_iamondb(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "data" / "iamondb")
    result = run("--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "data/iamondb" in result.stderr
    assert Store(tmp_path / "cache" / "iamondb.h5").source == "iam-ondb"


@dataclass
class FakeDemo:
    """Stands in for ``hwkit.demo`` so the wiring is tested without generating 3000 lines."""

    calls: list

    def module(self) -> types.ModuleType:
        fake = types.ModuleType("hwkit.demo")
        fake.DemoParams = DemoParams

        def ensure_demo_corpus(root, *, lines, writers, seed, capitals, numbers, jobs=None, progress=None):
            self.calls.append({"root": root, "lines": lines, "writers": writers, "seed": seed, "capitals": capitals,
                               "numbers": numbers})  # fmt: skip
            if not (root / "DEMO.json").exists():
                write_tree(root, demo=True)
            if progress is not None:
                progress({"event": "lines", "done": lines, "total": lines})
            return root

        fake.ensure_demo_corpus = ensure_demo_corpus
        return fake


def test_no_source_and_no_iamondb_prepares_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = FakeDemo([])
    monkeypatch.setitem(sys.modules, "hwkit.demo", demo.module())
    result = run("--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "demo" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    defaults = DemoParams()
    expected = {"root": Path("data/demo"), "lines": defaults.lines, "writers": defaults.writers, "seed": defaults.seed,
                "capitals": 0.0, "numbers": 0.0}
    assert demo.calls == [expected]
    assert Store(tmp_path / "cache" / "demo.h5").source == "demo"
    # asked for explicitly, with options; the existing store is refused before any generating
    result = run("--demo", "--lines", "7", "--writers", "2", "--seed", "3", "--jobs", "1")
    assert result.exit_code == 1 and "--force" in result.stderr and len(demo.calls) == 1
    result = run("--demo", "--lines", "7", "--writers", "2", "--seed", "3", "--capitals", "0.4", "--numbers", "0.2",
                 "--jobs", "1", "--force")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert demo.calls[-1] == {"root": Path("data/demo"), "lines": 7, "writers": 2, "seed": 3, "capitals": 0.4,
                              "numbers": 0.2}  # fmt: skip
    refused = run("--capitals", "0.4", "--numbers", "0.1")
    assert refused.exit_code == 2 and "--capitals, --numbers: only with --demo" in refused.stderr
    # a store that could not be written is refused before the corpus is generated, naming the store
    Path("blocker").write_text("a file where a folder should be")
    blocked = run("--demo", "--lines", "7", "--writers", "2", "--jobs", "1", "-o", "blocker/demo.h5")
    assert blocked.exit_code == 1 and blocked.stderr.startswith("error: blocker/demo.h5: cannot be written")
    assert len(demo.calls) == 2


def test_help_states_the_real_defaults():
    text = " ".join(run("--help").stdout.split("Options:")[1].split())
    for option, value in (
        ("--min-points", PrepareParams().min_points),
        ("--max-jump", PrepareParams().max_jump),
        ("--lines", DemoParams().lines),
        ("--writers", DemoParams().writers),
        ("--seed", DemoParams().seed),
        ("--capitals", DemoParams().capitals),
        ("--numbers", DemoParams().numbers),
    ):
        shown = re.search(rf"{option} .*?\[default: ([\d.]+)\]", text)
        assert shown and float(shown[1]) == value, option


def test_ctrl_c_to_the_whole_process_group_ends_a_parallel_prepare_cleanly(tmp_path):
    """A terminal's Ctrl-C reaches every worker too: the run must end (rc 130), quietly, with no store."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def at_a_terminal() -> None:  # a suite started in the background (`cmd &`) passes Ctrl-C on ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    made = subprocess.run([sys.executable, "-m", "hwkit", "prepare", "--demo", "--lines", "3000", "-o", "first.h5"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    pressed = 0
    for attempt in range(12):  # the hang this guards against came in about one Ctrl-C in eight
        if pressed == 6:
            break
        proc = subprocess.Popen([sys.executable, "-m", "hwkit", "prepare", "--demo", "--lines", "3000", "--jobs", "3",
                                 "-o", f"again{attempt}.h5"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=at_a_terminal)  # fmt: skip
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        deadline = time.monotonic() + 60
        while len(children.read_text().split()) < 2 and time.monotonic() < deadline:  # the two workers are up
            time.sleep(0.01)
        # a Ctrl-C while the pool starts is dropped (the workers are born ignoring it): wait until this
        # process takes SIGINT again (its SigIgn mask in /proc), then press once; a hang fails below
        while time.monotonic() < deadline and int(re.search(r"SigIgn:\s*([0-9a-f]+)", Path(
                f"/proc/{proc.pid}/status").read_text())[1], 16) & (1 << (signal.SIGINT - 1)):  # fmt: skip
            time.sleep(0.01)
        time.sleep(0.1 * (attempt % 6))  # from the pool just up to parsing
        if proc.poll() is not None:  # on a loaded machine the late presses can come after a whole run
            assert proc.returncode == 0, proc.stderr.read()[-3000:]
            proc.communicate()
            continue
        os.killpg(proc.pid, signal.SIGINT)
        pressed += 1
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
        assert "interrupted; no store written" in err and not (tmp_path / f"again{attempt}.h5").exists()
        assert not list(tmp_path.glob(f".again{attempt}.*"))  # no spool or temp file left behind
    # a loaded machine can finish a run before the press: those are tried again, up to 12 runs in all
    assert pressed >= 3, f"only {pressed} of {attempt + 1} runs were still going when Ctrl-C was pressed"
    # the same while the demo corpus is being generated (new parameters: the pool writes a new tree)
    for attempt in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "hwkit", "prepare", "--demo", "--lines", "3000", "--jobs", "3",
                                 "--seed", str(attempt + 1), "-o", f"gen{attempt}.h5"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=at_a_terminal)  # fmt: skip
        deadline = time.monotonic() + 60
        while not list((tmp_path / "data").glob(".demo-*.partial/*/*")) and time.monotonic() < deadline:
            time.sleep(0.01)  # forms are being written
        time.sleep(0.2 * attempt)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
        assert "interrupted; no store written" in err and not (tmp_path / f"gen{attempt}.h5").exists()
        assert not list((tmp_path / "data").glob(".demo-*"))  # the half-written tree is gone
        assert DemoParams.from_dict(json.loads((tmp_path / "data" / "demo" / "DEMO.json").read_text())) == DemoParams()  # kept
