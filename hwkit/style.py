"""Style files: one real line (strokes + text) kept to prime sampling with later.

A style is what Graves' priming (sec. 5.5) needs and nothing else: the line's
offsets in raw pen units and its transcription, plus where it came from. It is
JSON (format ``hwkit-style``, version 1) rather than a pickle or HDF5, so it is
safe to load from anyone, readable, and small (a line is a few thousand numbers).
float32 offsets survive the trip exactly: each becomes a double whose shortest
repr reads back to the same float32.

    {"format": "hwkit-style", "format_version": 1,
     "text": "...", "line_id": "...", "writer_id": 12,
     "store": {"path": "...", "fingerprint": "...", "source": "iam-ondb"},
     "units": "raw pen units, y down",
     "offsets": [[dx, dy, pen_up], ...]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hwkit.errors import StyleError
from hwkit.files import atomic_path
from hwkit.sample import Prime
from hwkit.store import Store

FORMAT = "hwkit-style"
FORMAT_VERSION = 1


def style_from_store(store: Store | str | os.PathLike, line_id: str) -> tuple[Prime, dict]:
    """The line ``line_id`` of a store as a prime, and its provenance (for ``save_style``)."""
    store = store if isinstance(store, Store) else Store(store)
    line = store.line(store.index_of(line_id))
    about = {
        "line_id": line.line_id,
        "writer_id": line.writer_id,
        "store": store.reference(),
    }
    return Prime(line.offsets, line.text), about


def save_style(path: str | os.PathLike, prime: Prime, about: dict | None = None, *, force: bool = False) -> Path:
    """Write ``prime`` (and its provenance from ``style_from_store``) as a style file, atomically;
    an existing file is replaced only with ``force`` (a style may be someone's only copy of a hand)."""
    path = Path(path)
    if path.exists() and not force:
        raise StyleError(f"{path}: already exists (use --force to replace it)")
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "text": prime.text,
        **(about or {}),
        "units": "raw pen units, y down",
        "offsets": np.asarray(prime.offsets, np.float32).tolist(),
    }
    try:
        with atomic_path(path, replace=force) as tmp:
            tmp.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    except FileExistsError:
        raise StyleError(f"{path}: appeared while it was written (use --force to replace it)") from None
    return path


def load_style(path: str | os.PathLike) -> Prime:
    """Read a style file; ``StyleError`` (one line) when it is not one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StyleError(f"{path}: no such style file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # the last: absurd nesting
        raise StyleError(f"{path}: not a readable style file ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StyleError(f"{path}: not an hwkit style file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise StyleError(
            f"{path}: style format version {doc.get('format_version')!r} is not supported "
            f"(this hwkit reads version {FORMAT_VERSION})"
        )
    try:
        offsets = np.asarray(doc["offsets"], dtype=np.float32)
        text = doc["text"]
    except (KeyError, TypeError, ValueError):
        raise StyleError(f"{path}: style file lacks text or offsets") from None
    if offsets.ndim != 2 or offsets.shape[1] != 3 or len(offsets) < 2 or not np.isfinite(offsets).all():
        raise StyleError(f"{path}: style offsets must be at least 2 finite rows of (dx, dy, pen_up)")
    if not isinstance(text, str):
        raise StyleError(f"{path}: style text must be a string")
    return Prime(offsets, text)

