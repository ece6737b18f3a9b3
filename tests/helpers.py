"""Plain helpers for tests (fixtures live in conftest.py; test modules import these directly).

Synthetic lines are loopy cursive-like scribbles (a few strokes of small loops
drifting right), so pictures drawn from them look like writing and every offset
is non-trivial; texts are random words from a small alphabet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from hwkit.checkpoint import Checkpoint
from hwkit.store import Line, write_store
from hwkit.strokes import points_to_offsets, strokes_to_points

WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "A", "B.", "42,", "ok?")


def scribble(rng: np.random.Generator, n_points: int) -> np.ndarray:
    """Offsets ``(n_points, 3)`` in raw units: loops of radius ~20 along a slowly drifting
    baseline, in a few strokes with pen-up gaps between them."""
    t = np.arange(n_points, dtype=np.float64)
    phase = t * rng.uniform(0.35, 0.5)
    x = t * rng.uniform(2.5, 4.0) + 18 * np.cos(phase)
    y = 25 * np.sin(phase) + np.cumsum(rng.normal(0, 0.3, n_points))
    xy = np.column_stack([x, y])
    cuts = np.sort(rng.choice(np.arange(3, n_points - 2), size=min(4, max(0, n_points // 25)), replace=False))
    gaps = np.zeros(n_points)
    gaps[cuts] = rng.uniform(10, 30, len(cuts))  # the pen moves on while lifted
    xy[:, 0] += np.cumsum(gaps)
    strokes = np.split(xy, cuts) if n_points > 6 else [xy]
    points = strokes_to_points(strokes)
    return points_to_offsets(points).astype(np.float32)


def synthetic_lines(
    n: int,
    *,
    seed: int = 0,
    min_points: int = 20,
    max_points: int = 120,
    texts: Sequence[str] | None = None,
) -> list[Line]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        text = texts[i] if texts is not None else " ".join(rng.choice(WORDS, size=rng.integers(1, 4)))
        n_points = int(rng.integers(min_points, max_points + 1))
        lines.append(Line(scribble(rng, n_points), text, f"x{i // 10:02d}-{i:03d}", int(i % 5) - 1))
    return lines


def checkpoint_dict(path: str | os.PathLike) -> dict:
    """A checkpoint file's keys, read through ``Checkpoint`` (so the class must read back what was saved)."""
    return Checkpoint.load(path).to_dict()


LETTERS = "acelnostx"


def letter_store(path: str | os.PathLike, n_lines: int = 96, seed: int = 0, source: str = "demo"):
    """Short random strings of ``LETTERS`` in one printing writer's demo-font hand; the last quarter held out.

    Real glyphs, so a recognizer trained for seconds reads them far better than chance.
    """
    from dataclasses import replace

    from hwkit.demo_style import random_style, render_line

    rng = np.random.default_rng(seed)
    style = random_style(np.random.default_rng(1))
    style = replace(style, font="rowmans", join=1.0, letter_space=-2.0, defer_marks=False)
    lines = []
    for i in range(n_lines):
        text = "".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 6))))
        offsets = points_to_offsets(render_line(text, style, rng).points).astype(np.float32)
        lines.append(Line(offsets, text, f"r{i:03d}", 0))
    cut = n_lines * 3 // 4
    held_out = range(cut, n_lines)
    return write_store(path, lines, {"train": range(cut), "valid": held_out, "test": held_out}, source=source)
