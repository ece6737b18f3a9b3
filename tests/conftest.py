"""Shared fixtures: tiny synthetic stroke stores written with ``write_store``.

The lines are loopy cursive-like scribbles (a few strokes of small loops drifting
right), so pictures drawn from them look like writing and every offset is
non-trivial; texts are random words from a small alphabet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """Build a store in the test's temp dir: ``make_store(name="tiny", n_lines=24, ...) -> path``.

    Splits default to 2/3 train, 1/6 valid, 1/6 test in index order; pass ``splits``
    to override (e.g. an empty valid split) and ``texts`` to control transcriptions.
    """

    def make(
        name: str = "tiny",
        *,
        n_lines: int = 24,
        seed: int = 0,
        min_points: int = 20,
        max_points: int = 120,
        texts: Sequence[str] | None = None,
        splits: Mapping[str, Sequence[int]] | None = None,
        skipped: Sequence[tuple[str, str]] = (),
        source: str = "demo",
        prepare_params: Mapping | None = None,
    ) -> Path:
        lines = synthetic_lines(n_lines, seed=seed, min_points=min_points, max_points=max_points, texts=texts)
        if splits is None:
            a, b = n_lines * 2 // 3, n_lines * 5 // 6
            splits = {"train": range(a), "valid": range(a, b), "test": range(b, n_lines)}
        return write_store(
            tmp_path / f"{name}.h5",
            lines,
            splits,
            skipped,
            source=source,
            prepare_params=prepare_params if prepare_params is not None else {"max_jump": 1000.0},
        )

    return make


@pytest.fixture
def tiny_store(make_store) -> Path:
    return make_store()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine more threads mostly wait for each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
