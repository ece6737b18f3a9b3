"""Files hwkit writes: atomic, no-clobber when asked, temp files of dead processes cleared, one owner per run folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hwkit.errors import HwkitError, StoreError
from hwkit.files import atomic_path, check_can_write, owned


def dead_pid() -> int:
    """A process id that just ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_no_clobber_refuses_a_file_that_appeared_during_the_write(tmp_path):
    target = tmp_path / "store.h5"
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")  # another process finished first
    assert target.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["store.h5"]
    with atomic_path(target) as tmp:  # replace=True: the last writer wins, atomically
        tmp.write_text("mine")
    assert target.read_text() == "mine"


def test_temp_files_of_dead_processes_are_cleared_and_live_ones_kept(tmp_path):
    target = tmp_path / "best.pt"
    stale = tmp_path / f".best.tmp-{dead_pid()}-1.pt"
    live = tmp_path / f".best.tmp-{os.getppid()}-1.pt"  # a live process mid-write
    stale.write_bytes(b"x" * 100)
    live.write_bytes(b"y")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "best.pt"])


def test_a_store_that_appears_while_prepare_writes_is_not_overwritten(tmp_path, monkeypatch):
    from helpers import synthetic_lines
    from hwkit import store as store_module

    lines, target = synthetic_lines(6), tmp_path / "s.h5"
    real = store_module.atomic_path

    def racing(path, *, replace=True):  # a concurrent prepare finishes between the check and the rename
        ctx = real(path, replace=replace)
        tmp = ctx.__enter__()

        class Racer:
            def __enter__(self):
                return tmp

            def __exit__(self, *exc):
                target.write_text("the other store")
                return ctx.__exit__(*exc)

        return Racer()

    monkeypatch.setattr(store_module, "atomic_path", racing)
    with pytest.raises(StoreError, match="appeared while this store was written"):
        store_module.write_store(target, lines, {"train": range(4), "valid": [4], "test": [5]}, source="demo")
    assert target.read_text() == "the other store"


HOLDER = """
import sys, time
from hwkit.files import owned
with owned(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(folder, seconds: float) -> subprocess.Popen:
    """Another process holding ``folder`` for ``seconds`` (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_has_one_owner_and_a_killed_owner_frees_it(tmp_path):
    folder = tmp_path / "run"
    holder = hold(folder, 60)
    with pytest.raises(HwkitError, match=f"in use by process {holder.pid}"):
        with owned(folder, "hwkit train"):
            pass
    holder.kill()  # kill -9: no clean-up ran, the kernel dropped the lock
    holder.wait()
    with owned(folder) as lock:
        assert lock.read_text() == f"{os.getpid()}\n"


def test_processes_racing_for_one_folder_never_share_it(tmp_path):
    racer = """
import sys, time
from hwkit.errors import HwkitError
from hwkit.files import owned
time.sleep(float(sys.argv[2]) - time.time())
try:
    with owned(sys.argv[1]):
        print("won", flush=True)
        time.sleep(3.0)  # longer than any start-up skew between the racers
except HwkitError:
    print("refused", flush=True)
"""
    import time

    start_at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", racer, str(tmp_path / "run"), str(start_at)],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]  # fmt: skip
    results = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert results.count("won") == 1 and results.count("refused") == 5, results


def test_a_second_training_into_a_busy_run_folder_is_refused(make_store, tmp_path):
    from hwkit.train import start

    store = make_store()
    holder = hold(tmp_path / "run", 60)
    try:
        with pytest.raises(HwkitError, match="in use by process"):
            start(store, "prediction", "tiny", run_dir=tmp_path / "run", max_steps=1)
        assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_style_export_never_overwrites_without_force(tiny_store, tmp_path):
    from click.testing import CliRunner

    from hwkit.cli import cli
    from hwkit.store import Store

    line_id, out = Store(tiny_store).line_ids[0], tmp_path / "mine.json"
    out.write_text("my only copy")
    refused = CliRunner().invoke(cli, ["style", "export", line_id, str(tiny_store), "-o", str(out)])
    assert refused.exit_code == 1 and "already exists" in refused.stderr and out.read_text() == "my only copy"
    forced = CliRunner().invoke(cli, ["style", "export", line_id, str(tiny_store), "-o", str(out), "--force"])
    assert forced.exit_code == 0 and out.read_text().startswith('{"format": "hwkit-style"')


def test_check_can_write_leaves_the_disk_as_it_was(tmp_path):
    check_can_write(tmp_path / "a" / "b" / "page.png")
    assert not (tmp_path / "a").exists()  # the folders it made to try are gone again
    (tmp_path / "here").mkdir()
    check_can_write(tmp_path / "here" / "page.png")
    assert (tmp_path / "here").is_dir() and not list((tmp_path / "here").iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(HwkitError, match="cannot be written"):
        check_can_write(tmp_path / "file" / "page.png")
    if os.geteuid() != 0:  # root may write into a folder without write permission
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(HwkitError, match="Permission denied"):
            check_can_write(locked / "page.png")
