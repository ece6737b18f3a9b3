"""Pure numpy converters between the stroke formats hwkit uses.

Three formats, all ``float`` arrays, all with y growing downward (IAM-OnDB and SVG):

``strokes``
    A list of ``(n_i, 2)`` arrays of absolute pen positions, one per pen-down stroke.
``points``
    One ``(N, 3)`` array ``x, y, pen_up`` of absolute positions, where ``pen_up = 1``
    marks the last point of each stroke (so the last row of a line always has it).
``offsets``
    One ``(N, 3)`` array ``dx, dy, pen_up``: row ``i`` holds ``points[i] - points[i-1]``
    and row 0 holds ``(0, 0)``, so a line starts at its origin. This is what the
    store keeps and what the networks read; ``pen_up`` on row ``i`` means the pen
    lifts *after* point ``i``, so the move in row ``i + 1`` is made in the air.

Every function returns a new array and never modifies its input. Normalisation
statistics are computed on the train split only and travel with the store and
with every checkpoint, so models and data always agree on the scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PEN_UP = 2  # column index of the pen_up flag in points and offsets


def strokes_to_points(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """Join strokes into one ``points`` array with pen_up on each stroke's last point."""
    strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        return np.zeros((0, 3))
    return points_from_lengths(np.concatenate(strokes), [len(s) for s in strokes])


def points_to_strokes(points: np.ndarray) -> list[np.ndarray]:
    """Split a ``points`` array back into strokes (the inverse of ``strokes_to_points``)."""
    points = np.asarray(points, dtype=np.float64)
    ends = np.cumsum(stroke_lengths(points))
    starts = np.concatenate([[0], ends[:-1]])
    return [points[a:b, :2].copy() for a, b in zip(starts, ends)]


def stroke_lengths(points: np.ndarray) -> np.ndarray:
    """The number of points in each stroke of a ``points`` array."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    ends = np.flatnonzero(points[:, PEN_UP] > 0.5) + 1
    if len(points) and (not len(ends) or ends[-1] != len(points)):
        ends = np.append(ends, len(points))  # an unterminated last stroke still counts
    return np.diff(np.concatenate([[0], ends])).astype(np.int64)


def points_from_lengths(xy: np.ndarray, lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """x, y rows and the number of points in each stroke -> ``points``, pen_up on each stroke's last point."""
    pen = np.zeros(len(xy))
    pen[np.cumsum(lengths, dtype=np.int64) - 1] = 1.0
    return np.column_stack([xy, pen])


def points_to_offsets(points: np.ndarray) -> np.ndarray:
    """Absolute points -> offsets; row 0 becomes ``(0, 0)``."""
    points = np.asarray(points)
    out = np.array(points, dtype=np.result_type(points.dtype, np.float32), copy=True)
    if len(out):
        out[1:, :2] = points[1:, :2] - points[:-1, :2]
        out[0, :2] = 0
    return out


def offsets_to_points(offsets: np.ndarray, origin: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Offsets -> absolute points starting at ``origin`` (cumulative sum in float64)."""
    offsets = np.asarray(offsets, dtype=np.float64)
    out = offsets.copy()
    out[:, :2] = np.cumsum(offsets[:, :2], axis=0) + np.asarray(origin, dtype=np.float64)
    return out


def drop_repeats(points: np.ndarray) -> np.ndarray:
    """Drop points identical to the previous point of the same stroke.

    Tablets repeat a reading when the pen rests; a zero step carries no shape and
    would teach the model a spike at the origin. A dropped stroke end passes its
    pen_up flag to the point it repeated, so stroke boundaries survive.
    """
    points = np.asarray(points)
    if len(points) < 2:
        return points.copy()
    same = np.all(points[1:, :2] == points[:-1, :2], axis=1) & (points[:-1, PEN_UP] < 0.5)
    keep = np.concatenate([[True], ~same])
    out = points[keep].copy()
    out[:, PEN_UP] = np.maximum.reduceat(points[:, PEN_UP], np.flatnonzero(keep))
    return out


def split_jumps(points: np.ndarray, max_jump: float) -> np.ndarray:
    """Lift the pen before any pen-down step longer than ``max_jump``.

    A huge step inside a stroke is a lost reading or a glitch, not ink. Splitting
    the stroke there (rather than deleting points) keeps every real reading and
    turns the jump into an ordinary pen-up move.
    """
    points = np.asarray(points)
    out = points.copy()
    if len(points) < 2:
        return out
    step = np.hypot(*(points[1:, :2] - points[:-1, :2]).T)
    out[:-1, PEN_UP] = np.where(step > max_jump, 1.0, points[:-1, PEN_UP])
    return out


def offset_stats(offsets: Iterable[np.ndarray], max_jump: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``dx, dy`` over many lines (row 0 of each line, always zero, excluded).

    Moves longer than ``max_jump`` are left out: after cleaning they are pen-up
    jumps (a lost reading split off, a glitch), and one jump of 10^5 units would
    set the scale of every ordinary step. One pass in fixed memory (per-block
    means and squared deviations, merged as Chan et al.), so a corpus of any
    size can be summed as it streams by.
    """
    count, mean, m2 = 0, np.zeros(2), np.zeros(2)
    for line in offsets:
        d = np.asarray(line, dtype=np.float64)[1:, :2]
        if max_jump is not None and len(d):
            d = d[np.hypot(d[:, 0], d[:, 1]) <= max_jump]
        n = len(d)
        if not n:
            continue
        block_mean = d.mean(axis=0)
        block_m2 = ((d - block_mean) ** 2).sum(axis=0)
        total = count + n
        delta = block_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + block_m2 + delta**2 * (count * n / total)
        count = total
    if not count:
        return np.zeros(2), np.ones(2)
    std = np.sqrt(m2 / count)
    return mean, np.where(std > 0, std, 1.0)


def step_lengths(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lengths of a line's moves (row 0 excluded), split into pen-down and in-the-air moves: a row's
    move is made in the air when the row before it has ``pen_up`` set."""
    step = np.hypot(offsets[1:, 0], offsets[1:, 1])
    air = offsets[:-1, PEN_UP] > 0.5
    return step[~air], step[air]


UNITS_APART = 4.0  # a line whose moves' spread is this many times a model's (or less by as much) is in other units


def in_model_units(offsets: np.ndarray, std: Sequence[float]) -> tuple[np.ndarray, float]:
    """``offsets`` scaled to a model's pen units when they are plainly in other ones, and the factor (1.0
    when they are not): ink in mm (InkML with a physical scale) against a model of tablet units is 100
    times too small, and the network reads it as a dot. Judged by the spread of ``dx, dy`` against the
    model's ``std``; a real hand's lines stay within 0.5-1.6 times their store's (demo corpus), so only
    a factor past ``UNITS_APART`` is taken for other units, and then the spreads are matched."""
    d = np.asarray(offsets, dtype=np.float64)[1:, :2]
    spread = float(np.sqrt(np.mean(d.var(axis=0)))) if len(d) > 1 else 0.0
    model = float(np.sqrt(np.mean(np.square(std))))
    if spread <= 0 or 1 / UNITS_APART <= spread / model <= UNITS_APART:
        return offsets, 1.0
    factor = model / spread
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[:, :2] *= factor
    return out, factor


def normalise(offsets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardise ``dx, dy`` with train-split statistics; pen_up is untouched."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[:, :2] = (out[:, :2] - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return out


def model_input(offsets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A line as every network reads it: normalised, and row 0's ``dx, dy`` set to exactly 0.

    Row 0 is the move from nowhere to the first point: meaningless, so it becomes
    the start token the networks learn to begin from (pen_up is kept).
    """
    out = normalise(offsets, mean, std)
    out[0, :2] = 0.0
    return out


def denormalise(offsets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Undo ``normalise`` (on any ``(..., 3)`` array: a line, or a batch of rows)."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[..., :2] = out[..., :2] * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    return out
