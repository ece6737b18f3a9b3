"""Does a written line keep one hand? Its left and right halves compared, against real lines; and does a
primed line go on in its prime's hand (``PrimeCalibration``)?

A hand switch inside a line (joined-up script that ends in print, a size that
jumps) shows as a difference between the line's two halves (split at the middle
of its ink) in three features of handwriting style:

- size: the x-height (``page.x_height``), as a log ratio;
- joining: pen lifts per x-height of pen-down ink (print lifts the pen far more
  often than script), as a log ratio;
- slant: the median angle from vertical of the line's near-vertical pen-down
  steps, in degrees.

How large a difference is normal depends on the corpus, so the thresholds come
from real lines, each written by one person in one go: ``Calibration`` takes
each feature's ``QUANTILE`` difference over real lines, and a line *switches
hand* when any feature's difference exceeds its threshold. Real lines then
switch at about (1 - ``QUANTILE``) x 3 by construction (one false alarm in
twenty per feature), which is the level a one-hand model should reach.

The same thresholds, taken from a store's train lines (the hands a model learnt),
travel inside a model with its house hands, so that the chooser of tries keeps,
among draws read equally well, one that holds its hand and, of those, the one
closest to its prime's (``prime_distance``, ``legibility.best_of``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwkit.page import baseline
from hwkit.strokes import PEN_UP, offsets_to_points

FEATURES = ("size", "joining", "slant")
QUANTILE = 0.95
MIN_POINTS = 20  # a half with fewer points has no style to measure


def _style(points: np.ndarray, side: np.ndarray) -> list[float] | None:
    """Size, joining and slant of the points ``side`` marks (a mask over ``points``); None when too few."""
    if side.sum() < MIN_POINTS:
        return None
    step = np.diff(points[:, :2], axis=0)
    length = np.hypot(step[:, 0], step[:, 1])
    down = points[:-1, PEN_UP] < 0.5  # step i -> i + 1 is ink
    index = np.flatnonzero(side)
    part = points[side].copy()
    part[np.append(np.diff(index) > 1, True), PEN_UP] = 1.0  # the part's own strokes end where it does
    height = max(baseline(part)[2], 1e-9)
    steps = side[:-1] & side[1:]  # steps wholly inside the part
    ink = float((length * (down & steps)).sum())
    lifts = float((part[:, PEN_UP] > 0.5).sum())
    vertical = down & steps & (np.abs(step[:, 1]) > np.abs(step[:, 0]))
    v = step[vertical]
    angles = np.degrees(np.arctan2(v[:, 0] * np.sign(v[:, 1]), np.abs(v[:, 1])))
    slant = float(np.median(angles)) if len(angles) else 0.0
    return [np.log(height), np.log(lifts * height / max(ink, 1e-9)), slant]


def half_styles(offsets: np.ndarray) -> np.ndarray | None:
    """``(2, 3)``: size, joining and slant of the left and right halves; None for a line too short."""
    points = offsets_to_points(np.asarray(offsets, np.float64))
    middle = np.median(points[:, 0])
    halves = [_style(points, side) for side in (points[:, 0] < middle, points[:, 0] >= middle)]
    return None if any(h is None for h in halves) else np.array(halves)


def line_style(offsets: np.ndarray) -> np.ndarray | None:
    """``(3,)``: size, joining and slant of a whole line; None for a line too short."""
    points = offsets_to_points(np.asarray(offsets, np.float64))
    style = _style(points, np.ones(len(points), bool))
    return None if style is None else np.array(style)


def differences(lines: Sequence[np.ndarray]) -> np.ndarray:
    """``(k, 3)``: per line long enough, the absolute difference of each feature between its halves."""
    rows = [s for s in (half_styles(o) for o in lines) if s is not None]
    return np.abs(np.array([s[0] - s[1] for s in rows])).reshape(-1, len(FEATURES))


@dataclass(frozen=True)
class Calibration:
    """Per feature, the difference between halves that ``QUANTILE`` of real lines stay within."""

    thresholds: np.ndarray  # (3,)
    real_switch_rate: float  # share of the real lines themselves judged to switch

    @classmethod
    def from_real(cls, lines: Sequence[np.ndarray]) -> Calibration:
        diffs = differences(lines)
        if len(diffs) < 10:
            raise ValueError(f"{len(diffs)} real lines long enough to calibrate on; need at least 10")
        thresholds = np.quantile(diffs, QUANTILE, axis=0)
        return cls(thresholds, float(np.mean((diffs > thresholds).any(axis=1))))

    def switch_rate(self, lines: Sequence[np.ndarray]) -> dict:
        """Share of ``lines`` whose halves differ more than real lines' do, overall and per feature."""
        diffs = differences(lines)
        if not len(diffs):
            return {"lines": 0, "switch_rate": None, "by_feature": dict.fromkeys(FEATURES)}
        over = diffs > self.thresholds
        return {
            "lines": len(diffs),
            "switch_rate": float(over.any(axis=1).mean()),
            "by_feature": {name: float(over[:, k].mean()) for k, name in enumerate(FEATURES)},
        }


def _gap(prime: np.ndarray, line: np.ndarray) -> np.ndarray | None:
    """``(3,)``: each feature's difference between two lines' whole-line styles; None when either is too short."""
    a, b = line_style(prime), line_style(line)
    return None if a is None or b is None else np.abs(a - b)


def prime_distance(prime: np.ndarray, line: np.ndarray, scale: Sequence[float]) -> float:
    """How far ``line``'s whole-line style is from its ``prime``'s: the largest feature difference in units
    of ``scale`` (above 1: another hand by those thresholds); 0 when either is too short to measure."""
    gap = _gap(prime, line)
    return 0.0 if gap is None else float((gap / np.asarray(scale)).max())


def switches(offsets: np.ndarray, thresholds: Sequence[float]) -> bool:
    """Whether a line's halves differ in any feature by more than ``thresholds`` (False for a line too short)."""
    diffs = differences([offsets])
    return bool(len(diffs) and (diffs[0] > np.asarray(thresholds)).any())


@dataclass(frozen=True)
class PrimeCalibration:
    """Does a primed line go on in its prime's hand? Per feature, the difference between two real lines
    of one writer that ``QUANTILE`` of such pairs stay within.

    A network primed with a line should write the rest in that line's hand; measured on the bundled
    model, it drifts toward the corpus's common slant (BENCHMARKS.md, quality). A continuation is in
    *another hand* when its whole-line style differs from its prime's beyond these thresholds. Pairs of
    lines by different writers, judged alike, say how much such a verdict can see.
    """

    thresholds: np.ndarray  # (3,)
    same_writer_rate: float  # share of real same-writer pairs judged in another hand (about 3 x 5%)
    other_writer_rate: float  # share of real different-writer pairs judged so

    @classmethod
    def from_real(cls, lines: Sequence[np.ndarray], writers: Sequence[int], pairs: int = 2000,
                  seed: int = 0) -> PrimeCalibration:  # fmt: skip
        """From real ``lines`` and their ``writers`` (-1: unknown, left out); ``pairs`` of each kind drawn."""
        styles = [(w, line_style(o)) for o, w in zip(lines, writers, strict=True) if w >= 0]
        by_writer: dict[int, list[np.ndarray]] = {}
        for w, style in styles:
            if style is not None:
                by_writer.setdefault(int(w), []).append(style)
        several = [w for w, got in by_writer.items() if len(got) >= 2]
        if len(by_writer) < 2 or not several:
            raise ValueError("need real lines by at least two writers, one of them with two lines or more")
        rng = np.random.default_rng(seed)
        same, other = [], []
        for _ in range(pairs):
            got = by_writer[several[rng.integers(len(several))]]
            a, b = rng.choice(len(got), 2, replace=False)
            same.append(np.abs(got[a] - got[b]))
            w1, w2 = rng.choice(list(by_writer), 2, replace=False)
            one, two = by_writer[int(w1)], by_writer[int(w2)]
            other.append(np.abs(one[rng.integers(len(one))] - two[rng.integers(len(two))]))
        thresholds = np.quantile(np.array(same), QUANTILE, axis=0)
        return cls(thresholds, float(np.mean((np.array(same) > thresholds).any(axis=1))),
                   float(np.mean((np.array(other) > thresholds).any(axis=1))))  # fmt: skip

    def other_hand_rate(self, primes: Sequence[np.ndarray], lines: Sequence[np.ndarray]) -> dict:
        """Share of ``lines`` whose style differs from their ``primes``' beyond the thresholds, overall and per
        feature, and each line's verdict in ``per_line`` (None where either is too short to measure: such
        pairs are left out of the shares), so that two models' verdicts can be paired line by line."""
        if len(primes) != len(lines):
            raise ValueError(f"{len(primes)} primes for {len(lines)} lines")
        gaps = list(map(_gap, primes, lines))
        per_line = [None if gap is None else bool((gap > self.thresholds).any()) for gap in gaps]
        diffs = [gap for gap in gaps if gap is not None]
        if not diffs:
            return {"lines": 0, "other_hand_rate": None, "by_feature": dict.fromkeys(FEATURES), "per_line": per_line}
        over = np.array(diffs) > self.thresholds
        return {"lines": len(diffs), "other_hand_rate": float(over.any(axis=1).mean()),
                "by_feature": {name: float(over[:, k].mean()) for k, name in enumerate(FEATURES)},
                "per_line": per_line}  # fmt: skip
