"""Lines written in the browser -> an IAM-OnDB corpus folder, and -> a prime in a model's units.

A recording is what the Record page sends: the prompt text and the strokes,
each a list of pointer samples ``(x, y, t[, pressure])`` (CSS pixels, y down;
milliseconds; the pressure is dropped, as IAM-OnDB files have none).
``save_recording`` files it under ``data/<corpus>/`` in the IAM-OnDB layout, one
form per line (``lineStrokes/r00/r00-000/r00-000u-01.xml``, the ``ascii/`` and
``original/`` files beside it), so ``hwkit prepare data/<corpus>`` reads it with
the parser of the real database. Coordinates are written as integers in tenths
of a CSS pixel (``UNITS_PER_PX``), times in seconds.

A saved line never replaces another: each takes the next free form number by
creating its folder (which fails if it exists), and its stroke file, the one
``prepare`` looks for, is written last and atomically, so a half-saved line
never appears under its real name.

``recording_prime`` turns a recorded line into a prime for a model: the
network was trained on another pen at another scale and sampling rate, so the
ink is scaled to the model's own x-height and resampled at its own step length
(both measured on a line the model writes, ``ModelScale``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit import iam
from hwkit.errors import HwkitError
from hwkit.files import atomic_path
from hwkit.page import x_height
from hwkit.sample import Prime
from hwkit.strokes import PEN_UP, points_to_offsets, strokes_to_points

UNITS_PER_PX = 10
WRITER_ID = 90000  # IAM-style writer id of a recorded corpus (one person)
MAX_POINTS = 4000  # a line of handwriting; as hwkit.generate.MAX_PRIME_POINTS
MAX_TEXT = 200
MIN_X_HEIGHT_PX = 1.0  # a line flatter than this has no letters to copy a size from
CORPUS_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
LINE_ID = re.compile(r"r\d\d-\d\d\du-01")


class RecordingError(HwkitError):
    """A recording that cannot be saved or used, said so that the page can show it."""


@dataclass(frozen=True)
class ModelScale:
    """A model's writing in its own units: the x-height and the median pen-down step."""

    x_height: float
    step: float


def check_corpus_name(name: str) -> str:
    if not isinstance(name, str) or not CORPUS_NAME.fullmatch(name):
        raise RecordingError("a corpus name is 1-40 of a-z, 0-9, '-' and '_', starting with a letter or digit")
    return name


def clean_strokes(strokes) -> list[np.ndarray]:
    """The request's strokes as ``(n, 3)`` float arrays (x, y, t ms), refusing anything malformed."""
    if not isinstance(strokes, list) or not strokes:
        raise RecordingError("no strokes: write the line first")
    out, total = [], 0
    for stroke in strokes:
        try:
            a = np.asarray(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise RecordingError("a stroke must be a list of [x, y, t] points") from None
        if a.ndim != 2 or a.shape[1] not in (3, 4) or len(a) == 0:
            raise RecordingError("a stroke must be a list of [x, y, t] points")
        a = a[:, :3]  # pressure, when the pen gives it, has no place in an IAM-OnDB stroke file
        if not np.isfinite(a).all() or np.abs(a[:, :2]).max() > 1e5:
            raise RecordingError("a point lies off any page")
        total += len(a)
        out.append(a)
    if total > MAX_POINTS:
        raise RecordingError(f"{total:,} points; a recorded line holds at most {MAX_POINTS:,}")
    if total < 2:
        raise RecordingError("too few points: write the line first")
    return out


def clean_text(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RecordingError("the line needs its text (what was written)")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise RecordingError(f"the text is {len(text)} characters; a line holds at most {MAX_TEXT}")
    try:
        text.encode(iam.TEXT_ENCODING)
    except UnicodeEncodeError as exc:
        raise RecordingError(f"{text[exc.start]!r} cannot be stored in an IAM-OnDB transcription (Latin-1)") from None
    return text


def save_recording(corpus_dir: Path, text: str, strokes) -> str:
    """File one recorded line under ``corpus_dir`` (IAM-OnDB layout); return its line id."""
    text, strokes = clean_text(text), clean_strokes(strokes)
    points = strokes_to_points([s[:, :2] * UNITS_PER_PX for s in strokes])
    xy = np.rint(points[:, :2] - points[:, :2].min(axis=0) + 500).astype(np.int64)
    t = np.concatenate([s[:, 2] for s in strokes]) / 1000.0
    t = np.maximum.accumulate(t - t[0])  # seconds from the first pen-down, never decreasing
    for n in range(100_000):
        folder = f"r{n // 1000:02d}"
        form = f"{folder}-{n % 1000:03d}"
        where = corpus_dir / iam.STROKES / folder / form
        where.parent.mkdir(parents=True, exist_ok=True)
        try:
            where.mkdir()  # claims the number: a second saver gets FileExistsError and takes the next
        except FileExistsError:
            continue
        break
    else:
        raise RecordingError(f"{corpus_dir}: no free line number left")
    form_id = f"{form}u"
    for part, name, body in ((iam.ASCII, f"{form_id}.txt", iam.ascii_file_text([text])),
                             (iam.ORIGINAL, "strokesu.xml", iam.original_file_xml(form_id, WRITER_ID, [text]))):  # fmt: skip
        (corpus_dir / part / folder / form).mkdir(parents=True, exist_ok=True)
        with atomic_path(corpus_dir / part / folder / form / name) as tmp:
            tmp.write_text(body, encoding=iam.TEXT_ENCODING)
    line_id = f"{form_id}-01"
    with atomic_path(where / f"{line_id}.xml", replace=False) as tmp:
        tmp.write_text(iam.stroke_file_xml(xy, points[:, PEN_UP] > 0.5, t), encoding=iam.TEXT_ENCODING)
    return line_id


def list_recordings(corpus_dir: Path) -> list[dict]:
    """The recorded lines of a corpus folder, oldest first: ``{"line_id", "text"}``."""
    out = []
    for path in sorted((corpus_dir / iam.STROKES).glob("r??/r??-???/r??-???u-01.xml")):
        line_id = path.stem
        form = line_id[:-3]
        ascii_file = corpus_dir / iam.ASCII / path.parent.relative_to(corpus_dir / iam.STROKES) / f"{form}.txt"
        try:
            text = ascii_file.read_text(encoding=iam.TEXT_ENCODING).split("CSR:", 1)[1].strip()
        except (OSError, IndexError):
            continue
        out.append({"line_id": line_id, "text": text})
    return out


def read_recording(corpus_dir: Path, line_id: str) -> tuple[np.ndarray, str]:
    """A recorded line back as ``points`` (x, y, pen_up; file units) and its text."""
    if not LINE_ID.fullmatch(line_id or ""):
        raise RecordingError(f"{line_id!r} is not a recorded line id")
    form = line_id[:-3]
    folder = form[:3]
    path = corpus_dir / iam.STROKES / folder / form[:-1] / f"{line_id}.xml"
    text = next((r["text"] for r in list_recordings(corpus_dir) if r["line_id"] == line_id), None)
    if not path.is_file() or text is None:
        raise RecordingError(f"no recorded line {line_id}")
    points = iam.parse_strokes([path.read_bytes()])[0]
    if isinstance(points, str):
        raise RecordingError(f"{line_id}: {points}")
    return points, text


def recording_prime(points: np.ndarray, text: str, scale: ModelScale) -> Prime:
    """A recorded line as a prime in a model's units: its x-height and its step length.

    A line too flat to have an x-height (under ``MIN_X_HEIGHT_PX``), or one whose ink would take
    more than ``MAX_POINTS`` points at the model's step, is refused before anything is resampled.
    """
    offsets = points_to_offsets(points)
    height = x_height(offsets)
    if height < MIN_X_HEIGHT_PX * UNITS_PER_PX:
        raise RecordingError("the line is too flat to tell the size of its letters; write it again")
    factor = scale.x_height / height
    ends = np.flatnonzero(points[:, PEN_UP] > 0.5) + 1
    spans = list(zip(np.r_[0, ends[:-1]], ends))
    ink = sum(float(np.hypot(*np.diff(points[a:b, :2], axis=0).T).sum()) for a, b in spans)
    if ink * factor / scale.step + len(spans) > MAX_POINTS:
        raise RecordingError(f"at the model's size that line would take more than {MAX_POINTS:,} points; "
                             "write a shorter line")  # fmt: skip
    strokes = [_resample(points[a:b, :2] * factor, scale.step) for a, b in spans]
    return Prime(points_to_offsets(strokes_to_points(strokes)).astype(np.float32), text)


def _resample(xy: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along the stroke (its ends kept): the model's sampling rate, not the browser's."""
    if len(xy) < 2:
        return xy
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if along[-1] <= step:
        return xy[[0, -1]]
    at = np.linspace(0.0, along[-1], int(np.ceil(along[-1] / step)) + 1)
    return np.column_stack([np.interp(at, along, xy[:, 0]), np.interp(at, along, xy[:, 1])])
