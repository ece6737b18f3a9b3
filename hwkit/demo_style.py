"""Synthetic writers: single-line Hershey glyphs turned into pen trajectories.

A writer is a ``WriterStyle`` drawn once from a seeded generator and kept for all
of its lines, so a model can learn (and a primed sample can imitate) a style.
``render_line`` lays the glyphs out with the writer's spacing, proportions and
per-glyph wobble, joins strokes the way a joined-up hand would, rounds polygon
corners into curves, slants and scales the result into IAM-OnDB units, and
samples it as a tablet would: evenly in time, with the pen slowing in bends, so
points crowd where the pen turns and thin out on straight runs.

Coordinates follow IAM-OnDB: y grows downward; a rendered line starts near x = 0
with its baseline near y = 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from hwkit.demo_text import ALPHABET
from hwkit.errors import TextError
from hwkit.strokes import (
    PEN_UP,
    points_from_lengths,
    points_to_strokes,
    stroke_lengths,
    strokes_to_points,
)

SCRIPT_FONTS = ("cursive",)
"""Joined-up script. ``scripts`` has the same letters but doubled-line digits."""
PRINT_FONTS = ("rowmans", "futural")
"""Upright single-line faces; complex, triplex and duplex faces draw doubled lines."""
BASELINE = 9.0  # Hershey y of the base line (y grows down in the font data too)
CAP_HEIGHT = 21.0  # Hershey units from cap line (-12) to base line (9)
MARK_SIZE = 9.0  # level strokes no wider than this (font units) are bars
DOT_SIZE = 2.5  # strokes no larger than this are dots
_TICK = np.array([[-0.4, -0.7], [0.4, 0.7]])  # a dot as the pen makes it


@dataclass(frozen=True)
class Glyph:
    """One character in font units: x from the left side, y from the baseline (up < 0)."""

    points: np.ndarray  # all strokes' points, in drawing order
    cuts: tuple[int, ...]  # where ``points`` splits into strokes
    advance: float
    marks: tuple[bool, ...]  # dot or bar a joined-up writer adds after the word


@dataclass(frozen=True)
class WriterStyle:
    """Everything that makes one synthetic writer's hand recognisable.

    Lengths called *font units* are Hershey units (cap height 21); ``height`` and
    ``tremor`` are IAM-OnDB units; speeds are in cap heights per second.
    """

    font: str
    height: float  # cap height in IAM units
    width: float  # horizontal stretch of the letters
    slant: float  # shear: x moves right by ``slant`` per unit of height
    ascender: float  # stretch of what rises above the x-height
    descender: float  # stretch of what hangs below the baseline
    letter_space: float  # extra gap after each glyph, font units
    word_space: float  # width of a space relative to the font's
    join: float  # widest gap (font units) the pen crosses without lifting
    defer_marks: bool  # i-dots and t-bars written after the word
    slope: float  # baseline rise per unit of run (negative climbs)
    drift: float  # amplitude of baseline wander, font units
    jitter_size: float  # per-glyph relative size noise
    jitter_pos: float  # per-glyph position noise, font units
    allograph: float  # how far this writer's letter shapes depart from the font
    wobble: float  # warp of each written letter, so no two are alike, font units
    shape_seed: int  # fixes those per-letter departures
    smooth: int  # Chaikin corner-cutting rounds
    speed: float  # pen speed on straight runs, cap heights per second
    slowdown: float  # speed is divided by 1 + slowdown * cap height / radius of the bend
    rate: float  # tablet samples per second
    tremor: float  # hand tremor, IAM units

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Trajectory:
    """A rendered line as ``points`` (x, y, pen_up; see ``hwkit.strokes``) and their times."""

    points: np.ndarray  # (N, 3) float
    times: np.ndarray  # (N,) seconds from the first pen-down, never decreasing

    def strokes(self) -> list[np.ndarray]:
        return points_to_strokes(self.points)


def random_style(rng: np.random.Generator) -> WriterStyle:
    """Draw a writer; about half write joined-up script, the rest print."""
    script = bool(rng.random() < 0.5)
    return WriterStyle(
        font=SCRIPT_FONTS[0] if script else PRINT_FONTS[int(rng.integers(len(PRINT_FONTS)))],
        height=float(rng.uniform(110, 200)),
        width=float(rng.uniform(0.75, 1.2)),
        slant=float(np.clip(rng.normal(0.18, 0.16), -0.2, 0.55)),
        ascender=float(rng.uniform(0.7, 1.25)),
        descender=float(rng.uniform(0.7, 1.2)),
        letter_space=float(rng.uniform(-1.0, 1.5) if script else rng.uniform(-4.5, -1.0)),
        word_space=float(rng.uniform(0.55, 1.1)),
        join=float(rng.uniform(7.0, 13.0) if script else rng.uniform(0.5, 3.0)),
        defer_marks=script,
        slope=float(rng.normal(0.0, 0.015)),
        drift=float(rng.uniform(0.2, 1.5)),
        jitter_size=float(rng.uniform(0.02, 0.08)),
        jitter_pos=float(rng.uniform(0.2, 0.8)),
        allograph=float(rng.uniform(0.03, 0.10)),
        wobble=float(rng.uniform(0.2, 0.9)),
        shape_seed=int(rng.integers(2**31)),
        smooth=int(rng.integers(1, 4)),
        speed=float(rng.uniform(12.0, 18.0)),
        slowdown=float(rng.uniform(0.08, 0.3)),
        rate=float(rng.uniform(75.0, 110.0)),
        tremor=float(rng.uniform(0.0, 3.0)),
    )


def check_text(text: str) -> None:
    """Raise ``TextError`` naming the characters no demo font can draw."""
    missing = list(dict.fromkeys(c for c in text if c not in ALPHABET))
    if missing:
        raise TextError("the demo fonts cannot write " + ", ".join(repr(c) for c in missing))


@lru_cache(maxsize=None)
def font_glyphs(font: str) -> dict[str, Glyph]:
    """The alphabet's glyphs in ``font``, parsed once per process.

    ``.,;:'`` come from ``rowmans`` in every font: ``futural`` and ``cursive`` carry
    smaller, raised variants that float above the baseline (and a stub of an
    apostrophe). The fonts' hyphen is a dash as wide as an ``m`` at the height of a
    capital's middle; it becomes a short stroke at half the x-height. Dots are
    drawn as tiny circles, which a pen would fill; they become the short tick a pen
    leaves when it taps the paper.
    """
    glyphs = {}
    for ch in ALPHABET:
        raw = _face("rowmans" if ch in ".,;:'" else font)[ch]
        strokes = [np.array(s, dtype=np.float64) - (raw.left_offset, BASELINE) for s in raw.strokes]
        advance = float(raw.char_width)
        if ch == "-":
            half_x = x_height(font) / 2
            strokes = [(s - (advance / 2, s[0, 1])) * (0.45, 1.0) + (advance / 4, -half_x) for s in strokes]
            advance /= 2
        strokes = [_TICK + s.mean(axis=0) if np.ptp(s, axis=0).max() <= DOT_SIZE else s for s in strokes]
        small = [_is_mark(s) for s in strokes]
        marks = tuple(m and not all(small) for m in small)
        points = np.concatenate(strokes) if strokes else np.zeros((0, 2))
        cuts = tuple(int(c) for c in np.cumsum([len(s) for s in strokes])[:-1])
        glyphs[ch] = Glyph(points, cuts, advance, marks)
    return glyphs


def _is_mark(stroke: np.ndarray) -> bool:
    """A dot, or a short level bar such as a t's cross: what a joined-up hand adds last."""
    width, height = np.ptp(stroke, axis=0)
    return bool(max(width, height) <= DOT_SIZE or (height <= 2.0 and width <= MARK_SIZE))


@lru_cache(maxsize=None)
def _face(font: str) -> dict:
    """Character -> Hershey glyph of one of the package's built-in fonts."""
    from HersheyFonts import HersheyFonts

    face = HersheyFonts()
    face.load_default_font(font)
    return face.all_glyphs


def x_height(font: str) -> float:
    """Height of a lower-case x above the baseline, font units."""
    return BASELINE - float(_face(font)["x"].draw_box[0][1])


@lru_cache(maxsize=4096)
def _allograph(shape_seed: int, amount: float, ch: str) -> np.ndarray:
    """This writer's fixed distortion of ``ch``: a 2x2 matrix near the identity.

    Mostly shear and turn; sizes vary less, so that an ``o`` never grows into an ``O``.
    """
    rng = np.random.default_rng([shape_seed, ord(ch)])
    return np.eye(2) + rng.normal(0.0, amount, (2, 2)) * [[0.5, 1.0], [1.0, 0.5]]


def render_line(text: str, style: WriterStyle, rng: np.random.Generator) -> Trajectory:
    """Write ``text`` in ``style``; ``rng`` supplies this line's own wobble."""
    check_text(text)
    points = smooth(strokes_to_points(_layout(text, style, rng)), style.smooth)
    points = apply_linear(points, slant_matrix(style.slant))
    points = _baseline(points, style, rng)
    unit = style.height / CAP_HEIGHT
    points = apply_linear(points, np.diag([unit * style.width, unit]))
    speed = style.speed * style.height
    points, times = resample(points, speed, style.rate, style.slowdown * style.height)
    # between strokes the pen is in the air: a short pause, then a quick move
    last = np.flatnonzero(points[:, PEN_UP] > 0.5)[:-1]
    air = 0.06 + np.hypot(*(points[last + 1, :2] - points[last, :2]).T) / (3.0 * speed)
    starts = np.concatenate([[0.0], np.cumsum(air + times[last])])
    times = times + np.repeat(starts, np.diff(np.r_[0, last + 1, len(points)]))
    points[:, :2] += _tremor(len(points), style.tremor, rng)
    return Trajectory(points, times)


def _layout(text: str, style: WriterStyle, rng: np.random.Generator) -> list[np.ndarray]:
    """Glyph strokes placed along the line in font units, joined where the pen would not lift."""
    glyphs = font_glyphs(style.font)
    chars = [glyphs[ch] for ch in text]
    size = np.clip(1.0 + rng.normal(0.0, style.jitter_size, len(text)), 0.75, 1.25)
    shift = rng.normal(0.0, style.jitter_pos, (len(text), 2))
    gap = rng.normal(0.0, 0.4, len(text)) + style.letter_space
    space = glyphs[" "].advance * style.word_space * rng.uniform(0.8, 1.25, len(text))
    word_dy = rng.normal(0.0, style.jitter_pos, len(text))
    x, dy = 0.0, word_dy[0]
    for i, ch in enumerate(text):  # pen position along the line, word by word
        if ch == " ":
            x, dy = x + space[i], word_dy[i]
        else:
            shift[i] += (x, dy)
            x += chars[i].advance * size[i] + gap[i]
    ink = [i for i, ch in enumerate(text) if ch != " "]
    if not ink:
        return []
    counts = np.array([len(chars[i].points) for i in ink])
    owner = np.repeat(ink, counts)
    centre = np.column_stack([[chars[i].advance / 2 for i in ink], np.zeros(len(ink))])
    centre = np.repeat(centre, counts, axis=0)
    shapes = np.stack([_allograph(style.shape_seed, style.allograph, text[i]) for i in ink])
    p = np.concatenate([chars[i].points for i in ink]) - centre
    p = np.einsum("nij,nj->ni", np.repeat(shapes, counts, axis=0), p)
    p = p + _wobble(p, owner, style.wobble, rng, len(text)) + centre
    p = _proportions(p, x_height(style.font), style.ascender, style.descender)
    p = p * size[owner, None] + shift[owner]

    strokes: list[np.ndarray] = []
    current: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    start = 0
    for k, i in enumerate(ink):
        if i == 0 or text[i - 1] == " ":  # a new word: the pen lifts, then dots and bars
            strokes.extend([np.concatenate(current)] if current else [])
            strokes.extend(marks)
            current, marks = [], []
        linked = text[i].isalpha() and i > 0 and text[i - 1].isalpha()  # lifts around punctuation and digits
        bounds = (0, *chars[i].cuts, counts[k])
        for a, b, is_mark in zip(bounds, bounds[1:], chars[i].marks):
            piece = p[start + a : start + b]
            if is_mark and style.defer_marks:
                marks.append(piece)
            elif current and linked and _gap(current[-1][-1], piece[0]) <= style.join:
                current.append(piece)
            else:
                strokes.extend([np.concatenate(current)] if current else [])
                current = [piece]
            linked = True
        start += counts[k]
    strokes.extend([np.concatenate(current)] if current else [])
    strokes.extend(marks)
    return strokes


def _wobble(p: np.ndarray, owner: np.ndarray, amount: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """Displace glyph-centred points by two plane waves drawn afresh for every glyph.

    Real letters are never exact copies of each other, nor perfect circles and
    lines; a smooth warp a few percent of the letter size gives each one its own.
    """
    angle = rng.uniform(0.0, 2 * np.pi, (n, 2))[owner]
    freq = 2 * np.pi / rng.uniform(8.0, 20.0, (n, 2))[owner]
    phase = rng.uniform(0.0, 2 * np.pi, (n, 2))[owner]
    along = p[:, :1] * np.cos(angle) + p[:, 1:] * np.sin(angle)
    return amount * np.sin(freq * along + phase)


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    return math.hypot(float(a[0] - b[0]), float(a[1] - b[1]))


def _proportions(p: np.ndarray, xh: float, ascender: float, descender: float) -> np.ndarray:
    """Stretch ascenders (above the x-height) and descenders (below the baseline)."""
    y = p[:, 1]
    y = np.where(y < -xh, -xh + (y + xh) * ascender, y)
    y = np.where(y > 0, y * descender, y)
    return np.column_stack([p[:, 0], y])


def _baseline(points: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Tilt the line and let the baseline wander in slow waves."""
    slope = style.slope + rng.normal(0.0, 0.008)
    wavelengths = rng.uniform(40.0, 250.0, 3)
    phases = rng.uniform(0.0, 2 * np.pi, 3)
    amps = style.drift * rng.uniform(0.3, 1.0, 3)
    x = points[:, :1]
    out = points.copy()
    out[:, 1] += slope * x[:, 0] + (amps * np.sin(2 * np.pi * x / wavelengths + phases)).sum(axis=1)
    return out


def slant_matrix(slant: float) -> np.ndarray:
    """Shear that leans letters right for positive ``slant`` (y grows downward)."""
    return np.array([[1.0, -slant], [0.0, 1.0]])


def apply_linear(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map every point's x, y by ``matrix``; pen-up flags, and so strokes, are unchanged."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :2] = out[:, :2] @ np.asarray(matrix, dtype=np.float64).T
    return out


def smooth(points: np.ndarray, iterations: int) -> np.ndarray:
    """Chaikin corner cutting of every stroke, keeping each one's first and last points.

    Hershey glyphs are polygons; a pen draws curves. Each round replaces every
    segment by points at 1/4 and 3/4 of it (converging to a quadratic B-spline),
    then puts the stroke's own end points back in place of the outermost two.
    """
    p, n = np.asarray(points, dtype=np.float64).reshape(-1, 3)[:, :2], stroke_lengths(points)
    for _ in range(iterations):
        first = np.cumsum(n) - n
        inside = np.ones(max(len(p) - 1, 0), dtype=bool)
        inside[first[1:] - 1] = False  # the move from one stroke's end to the next one's start
        a, b = p[:-1][inside], p[1:][inside]
        pairs = np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], axis=1).reshape(-1, 2)
        segs = np.maximum(n - 1, 0)
        new_n = np.where(n > 1, 2 * segs, n)
        out_first = np.cumsum(new_n) - new_n
        out = np.empty((new_n.sum(), 2))
        out[np.arange(len(pairs)) + np.repeat(out_first - 2 * (np.cumsum(segs) - segs), 2 * segs)] = pairs
        out[out_first] = p[first]  # single points pass through; longer strokes keep their ends
        out[out_first + new_n - 1] = p[first + n - 1]
        p, n = out, new_n
    return points_from_lengths(p, n)


def resample(points: np.ndarray, speed: float, rate: float, bend: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample each stroke evenly in time as a tablet does; returns points and times.

    The pen travels at ``speed`` on straight runs and slows in bends (speed is
    divided by ``1 + bend * curvature``), and it starts and stops gently, so points
    crowd where the pen turns. Every stroke's times start at 0; its first and last
    points are kept exactly.
    """
    p, n = np.asarray(points, dtype=np.float64).reshape(-1, 3)[:, :2], stroke_lengths(points)
    stroke_of = np.repeat(np.arange(len(n)), n)
    moved = np.ones(len(p), dtype=bool)
    moved[1:] = np.any(p[1:] != p[:-1], axis=1) | (stroke_of[1:] != stroke_of[:-1])
    p, stroke_of = p[moved], stroke_of[moved]  # a pen resting in place adds no path
    n = np.bincount(stroke_of, minlength=len(n))
    first = np.cumsum(n) - n
    last = first + n - 1
    step = np.diff(p, axis=0)
    seg = np.hypot(step[:, 0], step[:, 1])
    inside = stroke_of[1:] == stroke_of[:-1]
    mid = np.ones(len(p), dtype=bool)
    mid[first] = mid[last] = False
    i = np.flatnonzero(mid)
    unit = step / np.where(seg > 0, seg, 1.0)[:, None]
    turn = np.arccos(np.clip((unit[i - 1] * unit[i]).sum(axis=1), -1.0, 1.0))
    v = np.full(len(p), 0.3)
    v[i] = 1.0 / (1.0 + bend * turn / (0.5 * (seg[i - 1] + seg[i])))
    for _ in range(3):  # the hand cannot change speed abruptly
        v[i] = 0.25 * v[i - 1] + 0.5 * v[i] + 0.25 * v[i + 1]
    dt = np.where(inside, seg / (0.5 * speed * (v[:-1] + v[1:])), 1.0)
    duration = np.bincount(stroke_of[:-1][inside], weights=dt[inside], minlength=len(n))
    clock = np.concatenate([[0.0], np.cumsum(dt)])  # one clock for all strokes, a unit gap between them
    count = np.where(duration > 0, np.maximum(np.ceil(duration * rate - 1e-9), 1), 0).astype(np.int64)
    short_tail = (count > 1) & (duration - (count - 1) / rate < 0.5 / rate)
    count = np.where(short_tail, count, count + 1)  # the stroke's end is always a sample
    out_first = np.cumsum(count) - count
    t = (np.arange(count.sum()) - np.repeat(out_first, count)) / rate
    t[out_first + count - 1] = duration
    at = t + np.repeat(clock[first], count)
    out = np.column_stack([np.interp(at, clock, p[:, 0]), np.interp(at, clock, p[:, 1])])
    out[out_first] = p[first]
    out[out_first + count - 1] = p[last]
    return points_from_lengths(out, count), t


def _tremor(n: int, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Small, slowly varying wobble of the hand (smoothed white noise)."""
    noise = rng.normal(0.0, amount, (n + 4, 2))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    return np.column_stack([np.convolve(noise[:, k], kernel, mode="valid") for k in range(2)])
