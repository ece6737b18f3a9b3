"""Writing files so that a crash, a full disk or Ctrl-C never leaves half a file under a real name,
and so that two processes never share one: atomic replacement, no-clobber creation, folder locks."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwkit.errors import HwkitError

LOCK = ".lock"


def process_alive(pid: int) -> bool:  # a pid of another user's process raises PermissionError: alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _pid_of(name: str, marker: str) -> int | None:
    """The pid in a temp name ``.<stem>.tmp-<pid>-<thread><suffix>``."""
    head = name.split(marker, 1)[-1].split("-", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else None


def make_folder(folder: Path) -> None:
    """``mkdir -p``, with a file in the way reported as what it is (mkdir says "file exists")."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of that folder", str(blocker)) from None


def check_can_write(path: str | os.PathLike) -> None:
    """Make ``path``'s folder and create a file in it, then take both away again: a path that cannot be
    written fails here, before the work that was to fill it, and not after, and a path that can is left
    as it was. Permissions alone do not tell (root may write anywhere that is not a read-only or virtual
    file system), so this tries."""
    path = Path(path)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]  # deepest first
    try:
        make_folder(path.parent)
        fd, probe = tempfile.mkstemp(prefix=f".{path.stem}.probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HwkitError(f"{path}: cannot be written ({exc.filename or path.parent}: {exc.strerror or exc})") from None
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files of ``path`` left by processes that died mid-write (never a live one's)."""
    for tmp in path.parent.glob(f".{path.stem}.tmp-*{path.suffix}"):
        pid = _pid_of(tmp.name, ".tmp-")
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, rename it onto ``path``.

    The temporary name keeps the target's suffix (some writers pick the format by
    it) and carries the process and thread ids, so two writers never share it,
    and temp files of dead processes are cleared first. On any error the temporary file is
    removed and the previous ``path``, if any, is untouched. With ``replace``
    False the last step refuses (``FileExistsError``) a ``path`` that appeared
    meanwhile, instead of overwriting what another process just wrote.
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        yield tmp
        if replace:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that name exists: a hard link is atomic about it; on a file
    system without hard links (vfat, some network mounts) check, then rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.replace(tmp, path)


@contextmanager
def owned(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold ``folder`` for this process for the length of the block.

    An exclusive ``flock`` on ``folder/.lock`` (which holds the owner's pid, for
    the message): the kernel drops it when its process ends, however it ends, so
    a lock left by a killed run never blocks the next one, and two processes can
    never both hold it. A second process is refused with an ``HwkitError`` naming
    the owner. A folder made only to hold the lock is removed again when nothing
    else was written into it.
    """
    import fcntl

    folder = Path(folder)
    created = not folder.exists()
    make_folder(folder)
    lock = folder / LOCK
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            raise HwkitError(f"{folder}: in use by process {owner} (another {what}); wait for it, or pick another")
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield lock
        finally:
            f.truncate(0)
            if created and [p.name for p in folder.iterdir()] == [LOCK]:  # made only to hold the lock
                lock.unlink(missing_ok=True)
                folder.rmdir()
