"""Word gaps and mark landing (``hwkit.placement``) on lines built to known measures."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.placement import MARKED, landing_errors, word_gaps

POINTS = 5  # per letter, evenly from its left edge to its right


def build(words: list[str], gaps: list[float], width: float, origin: tuple[float, float],
          marks: dict[int, float]) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
    """A line of ``words`` (letters ``width`` wide, a quarter apart, each a stroke), ``gaps[k]`` letter widths
    between word k and k + 1, and after word k a two-point mark ``marks[k]`` letter widths right of its first
    marked letter's centre (its last letter's in a word without one); with its window (one-hot) and text."""
    text = " ".join(words)
    rows, at = [], []  # absolute points (x, y, lift) and the character each belongs to
    x, u = origin[0], 0
    for k, word in enumerate(words):
        for ch in word:
            rows += [(x + width * i / (POINTS - 1), origin[1], float(i == POINTS - 1)) for i in range(POINTS)]
            at += [u] * POINTS
            x, u = x + 1.25 * width, u + 1
        x -= 0.25 * width  # x: the word's right edge
        if k in marks:  # the lift row of the word's last stroke is where the window has reached the space
            rows.append((x, origin[1], 1.0))
            at.append(u)
            owner = next((v for v, ch in enumerate(word) if ch in MARKED), len(word) - 1)
            centre = x - (len(word) - owner) * 1.25 * width + 0.25 * width + width / 2
            mark = centre + marks[k] * width
            rows += [(mark - 0.1 * width, origin[1] + 3 * width, 0.0), (mark + 0.1 * width, origin[1] + 3 * width, 1.0)]
            at += [u, u]
        if k < len(gaps):
            x, u = x + gaps[k] * width, u + 1
    points = np.array(rows, np.float64)
    offsets = points.copy()
    offsets[1:, :2] = np.diff(points[:, :2], axis=0)
    phi = np.eye(len(text) + 1)[at]
    return offsets, phi, text


words = st.lists(st.text("abcdeo", min_size=1, max_size=6), min_size=2, max_size=5)


@settings(max_examples=60, deadline=None)
@given(words=words, data=st.data(), width=st.floats(0.2, 50), x0=st.floats(-100, 100), y0=st.floats(-100, 100))
def test_word_gaps_are_the_gaps_built_in_letter_widths_at_any_size_and_place(words, data, width, x0, y0):
    gaps = data.draw(st.lists(st.floats(-0.5, 4), min_size=len(words) - 1, max_size=len(words) - 1))
    offsets, phi, text = build(words, gaps, width, (x0, y0), {})
    assert np.allclose(word_gaps(offsets, phi, text), gaps, atol=1e-6)
    assert landing_errors(offsets, phi, text) == []  # no word owes a mark, and none was drawn


@settings(max_examples=60, deadline=None)
@given(stem=st.text("abco", max_size=3), tail=st.text("abco", max_size=3), shift=st.floats(-3, 0.35),
       width=st.floats(0.2, 50))  # fmt: skip
def test_a_deferred_mark_lands_as_far_from_its_letter_as_it_was_put(stem, tail, shift, width):
    # a mark is reached by a move to the left: it starts left of its word's end (shift < 0.4 from its t)
    words = [stem + "t" + tail, "on", "ace", "do"]
    offsets, phi, text = build(words, [1.0, 1.5, 0.2], width, (3.0, -2.0), {0: shift, 1: 0.5})
    errors = landing_errors(offsets, phi, text)
    assert len(errors) == 2
    assert math.isclose(errors[0], abs(shift), abs_tol=1e-6)
    assert math.isnan(errors[1])  # "on" owes no mark: a stray stroke
    # the marks sit on the spaces, so the words' gaps are as built
    assert np.allclose(word_gaps(offsets, phi, text), [1.0, 1.5, 0.2], atol=1e-6)
