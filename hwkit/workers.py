"""Work shared between this process and a pool of spawned workers, results in order.

``hwkit prepare`` parses stroke files this way, and generates the demo corpus
this way: both are many independent pieces of CPU work whose results are wanted
in order, on machines from 2 cores up.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def worker_pool(jobs: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """Helpers for this process, which works too: ``jobs - 1`` workers, or None.

    Workers are spawned, not forked: the caller may be running threads (a
    progress bar, say), and a spawned worker boots while this process goes on.
    Workers ignore SIGINT: a terminal's Ctrl-C reaches the whole process group,
    and a worker interrupted while sending a result would leave the pool's
    shutdown waiting for it forever. This process takes the Ctrl-C and ends them.
    """
    if jobs <= 1:
        yield None
        return
    # ignored while the workers start, so they are born ignoring it (a booting worker would print a
    # traceback); a Ctrl-C in that fraction of a second is lost, and the next one is taken
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        pool = multiprocessing.get_context("spawn").Pool(jobs - 1, initializer=_ignore_sigint)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    try:
        yield pool
    except BaseException:
        _abandon(pool)
        raise
    pool.terminate()  # every result is in: nothing is left to wait for


def _abandon(pool: multiprocessing.pool.Pool) -> None:
    """End the workers now, on Ctrl-C or an error. ``Pool.terminate`` joins the pool's task thread,
    which can wait forever for a queue lock after an interrupt (one Ctrl-C in eight hung so); the
    workers only compute and write files of their own that the caller discards on failure, so killing them loses nothing. The pool's worker handler is
    stopped first (it would start new ones), and cancelling its finaliser keeps the interpreter's
    exit from making that same join. (These are ``multiprocessing.pool`` internals, read with
    ``getattr`` so that a Python without them still ends, by the slower way.)"""
    handler = getattr(pool, "_worker_handler", None)  # it would replace the killed workers
    if handler is not None:
        handler._state = multiprocessing.pool.TERMINATE
        handler.join(1)
    for worker in getattr(pool, "_pool", ()):
        worker.kill()
        worker.join(5)
    finaliser = getattr(pool, "_terminate", None)
    if finaliser is not None:
        finaliser.cancel()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Here:
    """A result computed in this process (beside the pool's ``AsyncResult``)."""

    def __init__(self, value: Any):
        self.value = value

    def ready(self) -> bool:
        return True

    def get(self) -> Any:
        return self.value


def in_order(
    fn: Callable[..., R],
    items: Iterable[T],
    args: Callable[[T], tuple],
    pool: multiprocessing.pool.Pool | None,
    ahead: int,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(*args(item)))`` for each item, in order.

    Up to ``ahead`` items wait in the pool; while it is that full, this process
    works on the next item itself instead of waiting. So no process idles (not
    while workers boot, nor on a busy machine where workers gain nothing), and
    items are drawn from ``items`` no faster than they are done. ``fn`` must be
    a module-level function (workers are spawned).
    """
    pending: deque = deque()  # (item, AsyncResult in the pool | _Here)
    in_pool = 0
    for item in items:
        if pool is not None and in_pool < ahead:
            pending.append((item, pool.apply_async(fn, args(item))))
            in_pool += 1
        else:
            pending.append((item, _Here(fn(*args(item)))))
        while pending and pending[0][1].ready():
            done, result = pending.popleft()
            if not isinstance(result, _Here):
                in_pool -= 1
            yield done, result.get()
    for done, result in pending:
        yield done, result.get()
