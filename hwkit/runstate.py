"""What a training run carries across a stop so that ``--resume`` continues exactly.

Batch order and crop windows are pure functions of ``(seed, epoch)``; every other
random generator (torch's, CUDA's, numpy's, ``random``'s) is captured here as
plain tensors and lists, which ``torch.load(weights_only=True)`` reads back. A Ctrl-C (or SIGTERM)
that lands while a step's counters or a checkpoint are being written is held
until they are consistent (``interrupts_deferred``).
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


# What stops a run cleanly: Ctrl-C, and the SIGTERM a batch scheduler sends before it kills a job
# (``hwkit train`` routes SIGTERM to ``KeyboardInterrupt`` with ``sigterm_interrupts``).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside the block SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, so it saves and stops the same way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def interrupts_deferred(reraise: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C (or a SIGTERM routed to it) until the block is done, then raise it (or drop it).

    Only signals whose handler is Python's default Ctrl-C one, and only on the
    main thread (elsewhere signals cannot be caught; a custom handler, or an
    ignored signal, is left alone).
    """
    ours = [
        s for s in STOP_SIGNALS
        if threading.current_thread() is threading.main_thread() and signal.getsignal(s) is signal.default_int_handler
    ]  # fmt: skip
    caught: list[int] = []
    for s in ours:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s in ours:
            signal.signal(s, signal.default_int_handler)
    if caught and reraise:
        raise KeyboardInterrupt
