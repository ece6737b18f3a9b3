"""Where a line's words and deferred marks fall along it, read through the synthesis window.

A joined-up hand writes an i's dot or a t's bar after its word, then jumps on to
the next word. Teacher-forced loss cannot see where a model's pen lands when it
writes on a history of its own, so these measure sampled lines (and real ones,
teacher-forced for their window) by where their ink lies. ``phi[i]`` is the
window when row ``i`` of ``offsets`` was drawn (``SampledLine.phi``); a row
belongs to the character the window peaks on. Distances are along the line, in
the line's median letter width, so that hands of any size compare.

- **Marks** (``landing_errors``): a stroke of at most ``MARK_POINTS`` points
  reached by a move to the left while the window is on a space or past the text.
  Its error is the distance from its centre to the centre of the nearest letter
  of the word before that owns a mark (``MARKED``; a letter's centre is the mean
  x of its points); NaN when that word owes none.
- **Word gaps** (``word_gaps``): from the rightmost point of one word to the
  leftmost of the next (marks drawn on the space between belong to neither).
  Below ``RUN_ON`` letters the words run together: a recognizer then often reads
  one word.
"""

from __future__ import annotations

import numpy as np

MARKED = frozenset("ijtfxFET")  # letters whose demo glyphs have a dot or bar a joined-up writer defers
MARK_POINTS = 12
RUN_ON = 0.3


def _letters(pen: np.ndarray, pos: np.ndarray, text: str) -> tuple[dict[int, float], float]:
    """Each letter's centre (mean x of its points) and the line's median letter width."""
    centre, widths = {}, []
    for u, ch in enumerate(text):
        rows = np.flatnonzero(pos == u)
        if ch != " " and len(rows):
            centre[u] = pen[rows, 0].mean()
            widths.append(np.ptp(pen[rows, 0]))
    return centre, float(np.median([w for w in widths if w > 0] or [1.0]))


def landing_errors(offsets: np.ndarray, phi: np.ndarray, text: str) -> list[float]:
    """Each deferred mark's landing error in letter widths (NaN: its word owes no mark)."""
    pen, pos = np.cumsum(offsets[:, :2], 0), phi.argmax(1)
    centre, width = _letters(pen, pos, text)
    lifts = np.flatnonzero(offsets[:, 2] > 0.5)
    errors = []
    for start, end in zip(lifts[:-1] + 1, lifts[1:]):
        u = pos[start - 1]
        if end - start + 1 > MARK_POINTS or offsets[start, 0] >= 0 or (u < len(text) and text[u] != " "):
            continue
        first = text.rfind(" ", 0, min(u, len(text))) + 1  # the word before the space (or the text's end)
        owners = [v for v in range(first, min(u, len(text))) if text[v] in MARKED and v in centre]
        x = pen[start : end + 1, 0].mean()
        errors.append(min(abs(x - centre[v]) for v in owners) / width if owners else float("nan"))
    return errors


def word_gaps(offsets: np.ndarray, phi: np.ndarray, text: str) -> list[float]:
    """Each gap between two words in letter widths (NaN where the window never peaked on one of them)."""
    pen, pos = np.cumsum(offsets[:, :2], 0), phi.argmax(1)
    _, width = _letters(pen, pos, text)
    bounds = [0] + [u for u, ch in enumerate(text) if ch == " "] + [len(text)]
    words = [(a + (a > 0), z) for a, z in zip(bounds, bounds[1:])]
    gaps = []
    for (a, b), (c, d) in zip(words, words[1:]):
        left, right = pen[(pos >= a) & (pos < b), 0], pen[(pos >= c) & (pos < d), 0]
        gaps.append((right.min() - left.max()) / width if len(left) and len(right) else float("nan"))
    return gaps
