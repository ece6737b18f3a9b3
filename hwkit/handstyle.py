"""Does a written line keep one hand? Its left and right halves compared, against real lines.

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
among draws read equally well, one that holds its hand (``legibility.best_of``).
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


def half_styles(offsets: np.ndarray) -> np.ndarray | None:
    """``(2, 3)``: size, joining and slant of the left and right halves; None for a line too short."""
    points = offsets_to_points(np.asarray(offsets, np.float64))
    x = points[:, 0]
    middle = np.median(x)
    step = np.diff(points[:, :2], axis=0)
    length = np.hypot(step[:, 0], step[:, 1])
    down = points[:-1, PEN_UP] < 0.5  # step i -> i + 1 is ink
    out = []
    for side in (x < middle, x >= middle):
        if side.sum() < MIN_POINTS:
            return None
        index = np.flatnonzero(side)
        part = points[side].copy()
        part[np.append(np.diff(index) > 1, True), PEN_UP] = 1.0  # the half's own strokes end where it does
        height = max(baseline(part)[2], 1e-9)
        steps = side[:-1] & side[1:]  # steps wholly inside the half
        ink = float((length * (down & steps)).sum())
        lifts = float((part[:, PEN_UP] > 0.5).sum())
        vertical = down & steps & (np.abs(step[:, 1]) > np.abs(step[:, 0]))
        v = step[vertical]
        angles = np.degrees(np.arctan2(v[:, 0] * np.sign(v[:, 1]), np.abs(v[:, 1])))
        slant = float(np.median(angles)) if len(angles) else 0.0
        out.append([np.log(height), np.log(lifts * height / max(ink, 1e-9)), slant])
    return np.array(out)


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


def switches(offsets: np.ndarray, thresholds: Sequence[float]) -> bool:
    """Whether a line's halves differ in any feature by more than ``thresholds`` (False for a line too short)."""
    diffs = differences([offsets])
    return bool(len(diffs) and (diffs[0] > np.asarray(thresholds)).any())
