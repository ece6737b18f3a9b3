"""What a training run carries across a stop so that ``--resume`` continues exactly.

Batch order and crop windows are pure functions of ``(seed, epoch)``; every other
random generator (torch's, CUDA's, numpy's, ``random``'s) is captured here as
plain tensors and lists, which ``torch.load(weights_only=True)`` reads back. A Ctrl-C that lands
while a step's counters or a checkpoint are being written is held until they are
consistent (``sigint_deferred``); a SIGTERM asks the loop to stop after its
current step (``sigterm_requests_stop``), then the run saves as on Ctrl-C.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every generator's state as weights_only-safe values (tensors and lists)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(rng: dict) -> None:
    """Undo ``rng_state``; CUDA generators only when the machine has as many GPUs as the one that saved them."""
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


_STOP = threading.Event()  # set by SIGTERM inside ``sigterm_requests_stop``


@contextmanager
def sigterm_requests_stop() -> Iterator[None]:
    """Inside the block SIGTERM (a batch scheduler's stop) asks the run to stop after its current step.

    A flag, not an exception: the training loop reads it (``stop_requested``) at
    the point in each step where all ranks already agree on their decisions, so
    every rank stops at the same step and none is left waiting in a collective.
    Only where SIGTERM has its default action; a handler someone else installed,
    or an ignored SIGTERM, is left alone.
    """
    _STOP.clear()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: _STOP.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _STOP.clear()


def stop_requested() -> bool:
    return _STOP.is_set()


@contextmanager
def sigint_deferred(reraise: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block is done, then raise it (or drop it).

    Only where Python's default handler is in place and only on the main thread
    (elsewhere signals cannot be caught, and a custom handler is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught and reraise:
        raise KeyboardInterrupt
