"""Writing files so that a crash, a full disk or Ctrl-C never leaves half a file under a real name,
and so that two processes never share one: atomic replacement, no-clobber creation, folder locks."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwkit.errors import HwkitError

LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _pid_of(name: str, marker: str) -> int | None:
    tail = name.split(marker, 1)[-1]
    digits = "".join(c for c in tail.split(".", 1)[0] if c.isdigit())
    return int(digits) if digits else None


def make_folder(folder: Path) -> None:
    """``mkdir -p``, with a file in the way reported as what it is (mkdir says "file exists")."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of that folder", str(blocker)) from None


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files of ``path`` left by processes that died mid-write (never a live one's)."""
    for tmp in path.parent.glob(f".{path.stem}.tmp-*{path.suffix}"):
        pid = _pid_of(tmp.name, ".tmp-")
        if pid is not None and pid != os.getpid() and not _alive(pid):
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, rename it onto ``path``.

    The temporary name keeps the target's suffix (some writers pick the format by
    it) and carries the process id, so two writers never share it, and temp files
    of dead processes are cleared first. On any error the temporary file is
    removed and the previous ``path``, if any, is untouched. With ``replace``
    False the last step refuses (``FileExistsError``) a ``path`` that appeared
    meanwhile, instead of overwriting what another process just wrote.
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic and refuses an existing name, unlike a rename
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def owned(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold ``folder`` for this process (a ``.lock`` file with its pid) for the length of the block.

    A second process is refused with an ``HwkitError`` naming the owner; a lock
    left by a process that died (kill -9) is taken over. A folder made only to
    hold the lock is removed again when nothing else was written into it.
    """
    folder = Path(folder)
    created = not folder.exists()
    make_folder(folder)
    lock = folder / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise HwkitError(f"{folder}: in use by process {pid} (another {what}); wait for it, or pick another")
            lock.unlink(missing_ok=True)  # its owner is gone
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):  # made only to hold the lock: leave no trace
            folder.rmdir()
