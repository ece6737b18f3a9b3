"""Two lines of one writer as one training line: what a primed line looks like to the network.

A primed line is the prime's strokes followed by new writing, conditioned on
``prime.text + " " + text`` (``sample.sample_text``): twice the length of any
line the network trained on, and it must keep the prime's hand through the
second half. Measured on the bundled model, it drifts toward its corpus's
common slant in about a third of such lines (BENCHMARKS.md, quality). A store
of pairs trains exactly that situation: line B of a writer goes on to the
right of line A of the same writer, a word space after A's ink, its baseline
on A's, and the text is ``A.text + " " + B.text``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwkit.page import baseline
from hwkit.store import Line
from hwkit.strokes import offsets_to_points, points_to_offsets

SPACE = 0.8  # the gap between the two lines' ink, in x-heights of the first: a demo writer's word space


def joined(first: Line, second: Line) -> Line:
    """``second`` written on after ``first``, a word space to the right, on its baseline."""
    a = offsets_to_points(np.asarray(first.offsets, np.float64))
    b = offsets_to_points(np.asarray(second.offsets, np.float64))
    slope_a, level_a, height = baseline(a)
    slope_b, level_b, _ = baseline(b)
    start = a[:, 0].max() + SPACE * height  # where b's ink begins
    b[:, 1] += (level_a + slope_a * start) - (level_b + slope_b * b[:, 0].min())  # on a's baseline, drawn on
    b[:, 0] += start - b[:, 0].min()
    offsets = points_to_offsets(np.concatenate([a, b]))  # a's last row already lifts the pen
    return Line(offsets.astype(np.float32), f"{first.text} {second.text}",
                f"{first.line_id}+{second.line_id}", first.writer_id)  # fmt: skip


def same_writer_pairs(lines: Sequence[Line], seed: int = 0) -> list[Line]:
    """Each writer's lines joined two at a time, in an order drawn by ``seed``; each line used once (a
    writer's odd line out is left out), so a store of pairs holds as much ink as the lines it came from."""
    rng = np.random.default_rng(seed)
    by_writer: dict[int, list[Line]] = {}
    for line in lines:
        by_writer.setdefault(line.writer_id, []).append(line)
    pairs = []
    for writer in sorted(by_writer):
        own = by_writer[writer]
        order = rng.permutation(len(own))
        pairs += [joined(own[order[k]], own[order[k + 1]]) for k in range(0, len(own) - 1, 2)]
    return pairs
