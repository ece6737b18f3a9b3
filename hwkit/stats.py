"""What a store holds, as plain JSON-ready values (``hwkit inspect`` and its ``--json``).

Counts come from the store's metadata alone; only ``step_lengths`` reads the points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwkit.store import SPLITS, Store
from hwkit import strokes


def _summary(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"min": None, "median": None, "p95": None, "max": None}
    return {
        "min": float(values.min()),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
    }


def _writers(writer_ids: np.ndarray) -> int:
    """Distinct known writers (-1 marks an unknown writer and is not counted)."""
    return int(len(np.unique(writer_ids[writer_ids >= 0])))


def store_stats(store: Store, examples: int = 3) -> dict:
    """Provenance, sizes per split, length distributions, normalisation, alphabet, skips."""
    lengths = np.diff(store.line_offsets)
    chars = np.array([len(t) for t in store.texts], dtype=np.int64)
    splits = {
        name: {
            "lines": int(len(idx)),
            "points": int(lengths[idx].sum()),
            "characters": int(chars[idx].sum()),
            "writers": _writers(store.writer_ids[idx]),
        }
        for name, idx in ((name, store.splits[name]) for name in SPLITS)
    }
    written = chars > 0
    skipped: dict[str, dict] = {}
    for line_id, reason in store.skipped:
        entry = skipped.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < examples:
            entry["examples"].append(line_id)
    return {
        "path": str(store.path),
        "source": store.source,
        "format": store.attrs.get("format"),
        "format_version": store.attrs.get("format_version"),
        "created_utc": store.attrs.get("created_utc"),
        "hwkit_version": store.attrs.get("hwkit_version"),
        "source_fingerprint": store.attrs.get("source_fingerprint"),
        "content_sha256": store.fingerprint,
        "prepare_params": store.prepare_params,
        "lines": len(store),
        "points": store.n_points,
        "characters": int(chars.sum()),
        "writers": _writers(store.writer_ids),
        "splits": splits,
        "points_per_line": _summary(lengths),
        "points_per_char": {
            "overall": float(lengths.sum() / chars.sum()) if chars.sum() else None,
            "median": float(np.median(lengths[written] / chars[written])) if written.any() else None,
        },
        "offset_mean": dict(zip(("dx", "dy"), store.mean.tolist())),
        "offset_std": dict(zip(("dx", "dy"), store.std.tolist())),
        "alphabet": {"size": len(store.alphabet.chars), "counts": store.alphabet.counts(store.texts)},
        "skipped": {
            "total": len(store.skipped),
            "by_reason": dict(sorted(skipped.items(), key=lambda kv: -kv[1]["count"])),
        },
    }


def step_lengths(store: Store, lines: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of every step of ``lines`` (default: all; row 0 of each line excluded), split into
    pen-down and pen-up moves.

    A row's move is made in the air when the row before it has ``pen_up`` set.
    """
    down, up = [], []
    for i in range(len(store)) if lines is None else lines:
        d, u = strokes.step_lengths(store.offsets(i))
        down.append(d)
        up.append(u)
    return np.concatenate(down or [np.zeros(0)]), np.concatenate(up or [np.zeros(0)])
