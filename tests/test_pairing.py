"""Same-writer pairs (``hwkit.pairing``): both lines' ink kept exactly, the second to the right on the first's baseline."""

from __future__ import annotations

from collections import Counter

import numpy as np
from helpers import synthetic_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.page import baseline
from hwkit.pairing import joined, same_writer_pairs
from hwkit.store import Line
from hwkit.strokes import PEN_UP, offsets_to_points


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_a_pair_keeps_both_lines_ink_and_writes_the_second_after_the_first(seed):
    first, second = synthetic_lines(2, seed=seed, min_points=20, max_points=60)
    pair = joined(first, second)
    n = len(first.offsets)
    assert pair.text == f"{first.text} {second.text}" and pair.writer_id == first.writer_id
    assert len(pair.offsets) == n + len(second.offsets)
    np.testing.assert_allclose(pair.offsets[:n], first.offsets, atol=1e-4)  # the first line as it was
    np.testing.assert_allclose(pair.offsets[n + 1 :], second.offsets[1:], atol=1e-4)  # the second's shape too
    assert pair.offsets[n - 1, PEN_UP] == 1.0  # the pen is up between them
    points = offsets_to_points(pair.offsets)
    a, b = points[:n], points[n:]
    assert b[:, 0].min() > a[:, 0].max()  # to the right, a gap between
    (slope_a, level_a, _), (slope_b, level_b, _) = baseline(a), baseline(b)
    x = b[:, 0].min()  # where the second line starts, its baseline is the first's drawn on
    assert abs((level_b + slope_b * x) - (level_a + slope_a * x)) < 1e-6 * max(1.0, np.abs(points[:, :2]).max())


def test_pairs_are_one_writers_lines_each_used_once():
    lines = synthetic_lines(23, seed=1, min_points=20, max_points=40)
    pairs = same_writer_pairs(lines, seed=3)
    per_writer = Counter(line.writer_id for line in lines)
    assert len(pairs) == sum(n // 2 for n in per_writer.values())
    by_id = {line.line_id: line for line in lines}
    used = [part for pair in pairs for part in pair.line_id.split("+")]
    assert len(used) == len(set(used)) == 2 * len(pairs)
    for pair in pairs:
        one, two = (by_id[part] for part in pair.line_id.split("+"))
        assert one.writer_id == two.writer_id == pair.writer_id
    assert [p.line_id for p in same_writer_pairs(lines, seed=3)] == [p.line_id for p in pairs]  # the seed decides
    assert same_writer_pairs([Line(lines[0].offsets, "a", "x", 0)]) == []
