"""Pen strokes as smooth curves within a tolerance: what vector outputs draw.

A sampled stroke is a polyline whose corners show at page scale, and a pen
plotter wants few, smooth segments. ``smooth`` turns a stroke ``(n, 2)`` into a
chain of cubic Béziers ``(m, 4, 2)`` (start, control, control, end):

1. thin the points (Ramer-Douglas-Peucker at half the tolerance);
2. pass a centripetal Catmull-Rom spline through the points kept, written
   exactly as cubic Béziers (centripetal: no loops or cusps inside a span,
   even where kept points are unevenly spaced);
3. check every original point against the span drawn over it, and where one
   lies farther than ``tolerance`` from the curve, keep that point too and
   redraw; with every point kept the curve passes through all of them, so
   this ends, and every sampled point is within ``tolerance`` of the curve.

Units are whatever the points are in (mm for pages, px for pictures).
``flatten`` turns Béziers back into a polyline for rasterisers and plotters;
``svg_path`` writes them as SVG path data.
"""

from __future__ import annotations

import itertools

import numpy as np

ALPHA = 0.5  # centripetal parameterisation (Yuksel et al. 2011)
CHECK_STEPS = 32  # points per span, at least, when measuring how far the curve strays
MAX_CHECK_STEPS = 4096  # at most (a span longer than 400 tolerances is measured a little coarser)
_TINY = 1e-9


def simplify(xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the points Ramer-Douglas-Peucker keeps (the ends always)."""
    n = len(xy)
    if n <= 2:
        return np.arange(n)
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    spans = [(0, n - 1)]
    while spans:
        a, b = spans.pop()
        if b - a < 2:
            continue
        d = distances_to_polyline(xy[a + 1 : b], xy[[a, b]])
        k = int(np.argmax(d))
        if d[k] > tolerance:
            keep[a + 1 + k] = True
            spans += [(a, a + 1 + k), (a + 1 + k, b)]
    return np.flatnonzero(keep)


def catmull_rom(xy: np.ndarray) -> np.ndarray:
    """Cubic Béziers ``(n - 1, 4, 2)`` of the centripetal Catmull-Rom spline through ``xy`` (n >= 2)."""
    p = np.asarray(xy, np.float64)
    ends = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])  # mirrored end points
    p0, p1, p2, p3 = ends[:-3], ends[1:-2], ends[2:-1], ends[3:]
    d1, d2, d3 = (np.maximum(np.linalg.norm(b - a, axis=1), _TINY) ** ALPHA for a, b in ((p0, p1), (p1, p2), (p2, p3)))
    d1, d2, d3 = d1[:, None], d2[:, None], d3[:, None]
    c1 = (d1**2 * p2 - d2**2 * p0 + (2 * d1**2 + 3 * d1 * d2 + d2**2) * p1) / (3 * d1 * (d1 + d2))
    c2 = (d3**2 * p1 - d2**2 * p3 + (2 * d3**2 + 3 * d3 * d2 + d2**2) * p2) / (3 * d3 * (d3 + d2))
    return np.stack([p1, c1, c2, p2], axis=1)


def point_on(beziers: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at parameters ``t`` ``(k,)`` of every span: ``(m, k, 2)``."""
    t = np.asarray(t, np.float64)[None, :, None]
    a, b, c, d = (beziers[:, None, i] for i in range(4))
    s = 1 - t
    return s**3 * a + 3 * s**2 * t * b + 3 * s * t**2 * c + t**3 * d


def flatten(beziers: np.ndarray, steps: int = 8) -> np.ndarray:
    """The chain as a polyline ``(m * steps + 1, 2)``: each span at ``steps`` even parameter steps."""
    if len(beziers) == 0:
        return np.zeros((0, 2))
    inner = point_on(beziers, np.arange(steps) / steps).reshape(-1, 2)
    return np.concatenate([inner, beziers[-1:, 3]])


def smooth(xy: np.ndarray, tolerance: float) -> np.ndarray:
    """A stroke ``(n, 2)`` as Béziers ``(m, 4, 2)`` passing within ``tolerance`` of each of its points.

    Repeated points are dropped first; a stroke of one distinct point is one
    span of zero length (a dot, which round pen caps draw).
    """
    xy = np.asarray(xy, np.float64)
    if len(xy) == 0:
        return np.zeros((0, 4, 2))
    moved = np.concatenate([[True], np.any(np.diff(xy, axis=0) != 0, axis=1)])
    xy = xy[moved]
    if len(xy) == 1:
        return np.repeat(xy[None], 4, axis=1)
    keep = simplify(xy, tolerance / 2)
    while True:
        beziers = catmull_rom(xy[keep])
        worst = _worst_points(xy, keep, beziers, tolerance)
        if not worst:
            return beziers
        keep = np.union1d(keep, worst)


def svg_path(beziers: np.ndarray, digits: int = 2) -> str:
    """SVG path data ``M x,y C x,y x,y x,y ...`` for one chain."""
    if len(beziers) == 0:
        return ""
    f = f"{{:.{digits}f}},{{:.{digits}f}}"
    parts = ["M" + f.format(*beziers[0, 0])]
    parts += ["C" + " ".join(f.format(*q) for q in span[1:]) for span in beziers]
    return " ".join(parts)


def distances_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest segment of ``line`` ``(k, 2)``."""
    a, b = line[:-1][None], line[1:][None]
    ab = b - a
    ap = points[:, None] - a
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), _TINY), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)


def _worst_points(xy: np.ndarray, keep: np.ndarray, beziers: np.ndarray, tolerance: float) -> list[int]:
    """Per span, the dropped point farthest from the curve when that is beyond ``tolerance``.

    The curve is measured as a polyline fine enough that its chords stray less than a small part
    of the tolerance: at least ``CHECK_STEPS`` steps, and one per tenth of the tolerance along the
    span's control polygon (which is longer than the curve), so a long span with a tight bend at
    one end is not measured by a chord that cuts the bend.
    """
    worst = []
    for k, (a, b) in enumerate(itertools.pairwise(keep)):
        if b - a < 2:
            continue
        polygon = float(np.linalg.norm(np.diff(beziers[k], axis=0), axis=1).sum())
        steps = int(min(max(CHECK_STEPS, np.ceil(10 * polygon / tolerance)), MAX_CHECK_STEPS))
        dense = point_on(beziers[k : k + 1], np.linspace(0, 1, steps + 1))[0]
        d = distances_to_polyline(xy[a + 1 : b], dense)
        j = int(np.argmax(d))
        if d[j] > 0.95 * tolerance:  # a margin for measuring on a polyline, not the curve itself
            worst.append(int(a + 1 + j))
    return worst
