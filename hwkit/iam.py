"""Find and parse IAM-OnDB: folders or the ``*-all.tar.gz`` archives -> line records.

A corpus root holds three parts, each either unpacked (``lineStrokes/``) or as
the archive the site ships (``lineStrokes-all.tar.gz``), plus optional task
lists. Archives are streamed member by member, never unpacked to disk.

Stroke files are parsed without building a tree and without a Python loop per
point: the files of a chunk are joined into one byte buffer and numpy finds the
tags, quotes and numbers of every file at once. Only files written in the
canonical form the site uses (double quotes, no comments, no character
references, ``<Point x=".." y=".."/>`` inside ``<Stroke>``) take that path;
anything else goes through expat, which decides whether the file is merely
unusual or broken. Neither path ever expands an entity: a DOCTYPE or ENTITY
declaration rejects the file outright.
"""

from __future__ import annotations

import hashlib
import os
import stat
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from xml.parsers import expat

import numpy as np

from hwkit.errors import CorpusError
from hwkit.strokes import strokes_to_points

STROKES, ASCII, ORIGINAL = "lineStrokes", "ascii", "original"
ARCHIVES = {STROKES: "lineStrokes-all.tar.gz", ASCII: "ascii-all.tar.gz", ORIGINAL: "original-xml-all.tar.gz"}
TASK_LISTS = ("trainset", "testset_v", "testset_t", "testset_f")
DEMO_MARKER = "DEMO.json"
TEXT_ENCODING = "iso-8859-1"  # every IAM-OnDB text file
ORIGINAL_HEAD = 1 << 16  # the Form element sits in the first few hundred bytes of an original file

# Skip reasons: short and stable, so that summaries and tests can group by them.
MALFORMED = "malformed xml"
ENTITY = "entity declaration"
BAD_COORDINATES = "bad coordinates"
EMPTY_STROKES = "empty stroke set"
NOT_STROKE_FILE = "not a stroke file"
UNREADABLE = "unreadable file"
UNREADABLE_FOLDER = "unreadable folder"  # a sub-folder that could not be listed: its lines are lost
TRUNCATED = "truncated archive"  # some of its files were read before the damage
UNREADABLE_ARCHIVE = "unreadable archive"  # none of its files could be read: not a tar.gz, or cut before the first


class Skip(Exception):
    """An input left out; ``reason`` is one of the stable reason strings."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- names ------------------------------------------------------------------------

_STROKE_NAME = re.compile(r"(?P<form>[^/]+)-(?P<line>\d+)\.xml")


def stroke_name(relpath: str) -> tuple[str, str, int] | None:
    """``lineStrokes/a01/a01-000/a01-000u-01.xml`` -> ``("a01-000u-01", "a01-000u", 1)``."""
    m = _STROKE_NAME.fullmatch(relpath.rsplit("/", 1)[-1])
    if m is None or int(m["line"]) < 1:
        return None
    return f"{m['form']}-{m['line']}", m["form"], int(m["line"])


def original_form_id(relpath: str) -> str | None:
    """``original/a01/a01-000/strokesu.xml`` -> ``"a01-000u"`` (folder name + suffix)."""
    parts = relpath.split("/")
    name = parts[-1]
    if len(parts) < 2 or not (name.startswith("strokes") and name.endswith(".xml")):
        return None
    return parts[-2] + name[len("strokes") : -len(".xml")]


# -- layout -----------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One of lineStrokes / ascii / original: a folder, or an archive read as a stream."""

    name: str
    path: Path
    archived: bool

    @property
    def files(self) -> list[str]:
        """The part's input files relative to the corpus root, sorted: the archive itself, or
        every regular file under the folder (walked once, then remembered)."""
        return [self.path.name] if self.archived else self._walk[0]

    @property
    def not_regular(self) -> list[str]:
        """Links and special files (pipes, sockets...) under the folder: never opened, so a link cannot
        reach out of the tree and a named pipe cannot block the read; prepare records them as skipped."""
        return [] if self.archived else self._walk[1]

    @property
    def unreadable_folders(self) -> list[str]:
        """Sub-folders that could not be listed (no permission): their lines would vanish unseen,
        so prepare records each as skipped."""
        return [] if self.archived else self._walk[2]

    @cached_property
    def _walk(self) -> tuple[list[str], list[str], list[str]]:
        regular, other, unlisted = [], [], []
        top = str(self.path)

        def where(path: str) -> str:
            return self.name + path[len(top) :].replace(os.sep, "/")

        def failed(exc: OSError) -> None:
            if exc.filename is not None and str(exc.filename) != top:
                unlisted.append(where(str(exc.filename)))

        for dirpath, _, names in os.walk(top, onerror=failed):  # does not descend into linked folders
            prefix = where(dirpath)
            for name in names:
                try:
                    mode = os.lstat(os.path.join(dirpath, name)).st_mode
                except OSError:
                    mode = 0
                (regular if stat.S_ISREG(mode) else other).append(f"{prefix}/{name}")
        return sorted(regular), sorted(other), sorted(unlisted)


@dataclass(frozen=True)
class Corpus:
    root: Path
    strokes: Part
    ascii: Part
    original: Part | None
    task_lists: dict[str, Path] = field(default_factory=dict)

    @property
    def demo(self) -> bool:
        return is_demo(self.root)

    def fingerprint(self) -> str:
        """sha256 over relative path, size and mtime of every input file (no contents read)."""
        paths = [
            relpath
            for part in (self.strokes, self.ascii, self.original)
            if part is not None
            for relpath in part.files
        ]
        paths += [path.relative_to(self.root).as_posix() for path in self.task_lists.values()]
        if self.demo:
            paths.append(DEMO_MARKER)
        h = hashlib.sha256()
        for relpath in sorted(paths):
            st = os.stat(os.path.join(self.root, relpath))
            h.update(f"{relpath}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def is_demo(root: str | os.PathLike) -> bool:
    """The demo generator marks its trees; nothing else decides what a corpus is."""
    return (Path(root) / DEMO_MARKER).is_file()


def find_corpus(root: str | os.PathLike) -> Corpus:
    """Locate the parts of an IAM-OnDB root; a folder wins over an archive of the same part."""
    root = Path(root)
    if root.is_file():
        raise CorpusError(
            f"{root} is a file; give the folder that holds {ARCHIVES[STROKES]} and {ARCHIVES[ASCII]} "
            f"(or {STROKES}/ and {ASCII}/)"
        )
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")

    def part(name: str) -> Part | None:
        if (root / name).is_dir():
            return Part(name, root / name, archived=False)
        if (root / ARCHIVES[name]).is_file():
            return Part(name, root / ARCHIVES[name], archived=True)
        return None

    strokes, ascii_, original = part(STROKES), part(ASCII), part(ORIGINAL)
    missing = [f"{n}/ or {ARCHIVES[n]}" for n, p in ((STROKES, strokes), (ASCII, ascii_)) if p is None]
    if missing:
        raise CorpusError(f"{root}: not an IAM-OnDB root (no {' and no '.join(missing)})")
    lists = {}
    for name in TASK_LISTS:
        for folder in (root, root / "task1"):
            if (folder / f"{name}.txt").is_file():
                lists[name] = folder / f"{name}.txt"
                break
    return Corpus(root, strokes, ascii_, original, lists)


NOT_REGULAR = "link or special file"
TOO_LARGE = "file too large"
# An IAM-OnDB stroke file is ~100 kB and a transcription ~1 kB: anything past this is not one, and
# reading it whole (a 400 MB archive member) would cost more memory than the whole corpus.
MAX_FILE_BYTES = 16 << 20
OUT_OF_RANGE = "coordinates out of range"
# Readings beyond this (in a file's own units) are glitches, not ink: IAM-OnDB boards span about 10^4
# units. One such point would stretch a line's offsets and, through the train statistics, the
# normalisation of the whole store.
MAX_COORDINATE = 1e6


class Skips(list):
    """Every input left out, as ``(name, reason)`` pairs in the order met (what ``/skipped`` records).

    A list, so it sorts and compares as one; ``add`` records, the other methods
    answer what prepare asks of the record, so no caller searches reason strings.
    """

    def add(self, name: str, reason: str) -> None:
        self.append((name, reason))

    def names(self, reason: str) -> list[str]:
        """What was left out for ``reason``."""
        return [name for name, why in self if why == reason]

    def archive_damage(self, part: Part | None) -> str | None:
        """'truncated' or 'unreadable' when ``part`` is an archive that ``iter_part`` found damaged, else None."""
        if part is None or not part.archived:
            return None
        reasons = {why for name, why in self if name == part.path.name}
        if UNREADABLE_ARCHIVE in reasons:
            return "unreadable"
        return "truncated" if TRUNCATED in reasons else None


def iter_part(part: Part, skipped: Skips, *, head: int | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(relpath, bytes)`` for every file of a part (only the first ``head`` bytes if given).

    Archives are streamed; a read error or a truncated archive is recorded in
    ``skipped`` under the archive's name and spoils only the files it touches:
    ``TRUNCATED`` when some files were read before it, ``UNREADABLE_ARCHIVE`` when
    none could be (a file that is not a tar.gz at all, say).
    """
    if not part.archived:
        for relpath in part.files:
            try:
                with open(os.path.join(part.path.parent, relpath), "rb", buffering=0) as f:
                    if head is None and os.fstat(f.fileno()).st_size > MAX_FILE_BYTES:
                        skipped.add(relpath, TOO_LARGE)
                        continue
                    yield relpath, f.readall() if head is None else f.read(head)
            except OSError:
                skipped.add(relpath, UNREADABLE)
        return
    read = 0
    try:
        with tarfile.open(part.path, mode="r|gz") as tar:
            for member in tar:
                if member.isfile():
                    name = member.name.removeprefix("./")
                    if not name.startswith(f"{part.name}/"):
                        name = f"{part.name}/{name}"
                    if head is None and member.size > MAX_FILE_BYTES:  # never read whole into memory
                        skipped.add(name, TOO_LARGE)
                        continue
                    data = tar.extractfile(member).read(head)
                    read += 1
                    yield name, data
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        skipped.add(part.path.name, TRUNCATED if read else UNREADABLE_ARCHIVE)


# -- text and writers -------------------------------------------------------------


def parse_transcriptions(data: bytes) -> list[str] | None:
    """The lines of the ``CSR:`` block (line 1 first), or None when there is no such block.

    Lines end at ``\n`` alone (``\r`` is stripped with the other edge spaces):
    ``str.splitlines`` would also break at bytes such as 0x85 or 0x1c inside a
    transcription and give every later line of the form its neighbour's text.
    """
    lines = data.decode(TEXT_ENCODING).split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "CSR:") + 1
    except StopIteration:
        return None
    while start < len(lines) and not lines[start].strip():
        start += 1
    block = [line.strip() for line in lines[start:]]
    while block and not block[-1]:
        block.pop()
    return block


_WRITER = re.compile(rb"<Form\b[^>]*?\swriterID\s*=\s*[\"'](-?\d+)[\"']")


def parse_writer(head: bytes) -> int:
    """The ``writerID`` of the ``Form`` element of an original file, -1 when absent."""
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise Skip(ENTITY)
    m = _WRITER.search(head)
    return int(m[1]) if m else -1


def read_task_list(path: Path) -> set[str]:
    """Form or line ids, one a line."""
    return {line.strip() for line in path.read_text(encoding=TEXT_ENCODING).splitlines() if line.strip()}


# -- stroke files -----------------------------------------------------------------

_P0 = 24
_POW10 = 10.0 ** np.arange(-_P0, _P0 + 1)  # _POW10[_P0 + p] == 10 ** p, exact for 0 <= p <= 22
_MAX_DIGITS = 15  # float64 holds every integer of 15 digits exactly, so values stay correctly rounded
_SET_OPEN, _SET_CLOSE = b"<StrokeSet>", b"</StrokeSet>"
_AFTER_NAME = np.frombuffer(b" \t\r\n>/", np.uint8).astype(np.uint64)  # what may follow "<Stroke"
# After the joined bodies: four quotes, so that the marks after any tag can always be looked up (these
# lie past every tag and fail every check), then zeros, so that every 8-byte window read stays inside.
_PAD = b'""""' + bytes(16)
_ZEROS, _SIXES = np.uint64(0x3030303030303030), np.uint64(0x0606060606060606)
_HIGH_NIBBLES, _LOW_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0), np.uint64(0x0F0F0F0F0F0F0F0F)
# by a value's length: which bytes of the 8-byte window ending at it are its own, and "0"s for the rest
_KEEP = np.array([0] + [(2**64 - 1) ^ ((1 << 8 * (8 - n)) - 1) for n in range(1, 9)] + [0], dtype=np.uint64)
_FILL = _ZEROS & ~_KEEP


def parse_strokes(files: Sequence[bytes]) -> list[np.ndarray | str]:
    """Parse stroke files to ``points`` arrays ``(n, 3)``: x, y, pen_up (float64), or a skip reason.

    Pass many files at once: the canonical ones are parsed together in a few
    numpy passes, the rest one by one through expat.
    """
    out: list[np.ndarray | str | None] = [None] * len(files)
    bodies = {i: body for i, data in enumerate(files) if (body := _canonical_body(data)) is not None}
    if bodies:
        for i, points in zip(bodies, _parse_canonical(list(bodies.values()))):
            out[i] = points
    for i, data in enumerate(files):
        if out[i] is None:
            try:
                out[i] = _parse_expat(data)
            except Skip as skip:
                out[i] = skip.reason
    return [r if isinstance(r, str) or len(r) else EMPTY_STROKES for r in out]


def _canonical_body(data: bytes) -> memoryview | None:
    """The bytes between ``<StrokeSet>`` and ``</StrokeSet>`` of a file that may take the fast path.

    The rest of the file (a few hundred bytes: prolog, whiteboard description)
    must pass expat on its own, which refuses DOCTYPEs; ``&`` in the body sends
    the file to expat too, since only expat resolves character references.
    """
    start, end = data.find(_SET_OPEN), data.rfind(_SET_CLOSE)
    if start < 0 or end < start or data.find(b"&", start, end) >= 0:
        return None
    if not _frame_ok(data[:start] + data[end + len(_SET_CLOSE) :]):
        return None
    return memoryview(data)[start + len(_SET_OPEN) : end]  # no copy: the chunk's join is the one copy


@lru_cache(maxsize=256)
def _frame_ok(frame: bytes) -> bool:
    """Whether a file without its stroke set is a valid stroke file. Remembered, because
    the lines of one form share their whiteboard description and so their frame."""
    try:
        _parse_expat(frame)
    except Skip:
        return False
    return True


def _parse_canonical(bodies: list[memoryview]) -> list[np.ndarray | None]:
    """Vectorised parse of canonical StrokeSet bodies; None for a body that must go to expat.

    The only pass over the whole buffer finds its marks (``<``, ``>`` and
    quotes); everything else works on arrays of marks, tags and points, reading
    bytes eight at a time through a view of every 8-byte window of the buffer.
    """
    n = len(bodies)
    starts = np.cumsum([0] + [len(b) for b in bodies])
    buf = b"".join([*bodies, _PAD])
    a = np.frombuffer(buf, dtype=np.uint8)
    w = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))  # w[i] = buf[i : i + 8]
    marks = np.flatnonzero((a == ord("<")) | (a == ord(">")) | (a == ord('"')))
    kind = a[marks]
    lt_mark = np.flatnonzero(kind == ord("<"))
    lt, gt = marks[lt_mark], marks[kind == ord(">")]
    if not len(lt):
        return [np.zeros((0, 3)) for _ in bodies]
    tag_bounds = np.searchsorted(lt, starts)
    n_tags = np.diff(tag_bounds)
    unpaired = n_tags != np.diff(np.searchsorted(gt, starts))
    if unpaired.any():  # such a file would shift the pairing of every later one: parse the rest without it
        out: list[np.ndarray | None] = [None] * n
        keep = np.flatnonzero(~unpaired)
        for i, points in zip(keep, _parse_canonical([bodies[i] for i in keep]) if len(keep) else []):
            out[i] = points
        return out
    tag_file = np.repeat(np.arange(n, dtype=np.int32), n_tags)
    bad = np.zeros(n, dtype=bool)
    # tags are delimited (each closes before the next opens) and each is a Point, Stroke or /Stroke
    bad[tag_file[gt < lt]] = True
    bad[tag_file[1:][lt[1:] < gt[:-1]]] = True
    selfclosing = a[gt - 1] == ord("/")
    head = w[lt]
    point = _matches(w, lt, b'<Point x="', head) & selfclosing
    opening = _matches(w, lt, b"<Stroke", head)
    opening[opening] = np.isin(head[opening] >> np.uint64(56), _AFTER_NAME)
    closing = _matches(w, lt, b"</Stroke>", head)
    bad[tag_file[~(point | opening | closing)]] = True
    # strokes do not nest, points sit inside strokes, every stroke closes in its own file
    opened = np.cumsum(opening, dtype=np.int32)  # also numbers the strokes
    depth = opened - np.cumsum(closing | (opening & selfclosing), dtype=np.int32)
    depth -= np.append(0, depth)[tag_bounds[:-1]][tag_file]
    bad[tag_file[(depth < 0) | (depth > 1) | (point & (depth != 1))]] = True
    last = tag_bounds[1:] - 1
    bad[(n_tags > 0) & (depth[np.maximum(last, 0)] != 0)] = True
    # x="..." y="..." open every Point, so its marks run < " " " " ...: the 2nd and 4th quotes end the
    # values (a value never holds its delimiter; one holding < or > shows up as a mark of another kind)
    pts = np.flatnonzero(point)
    m = lt_mark[pts]
    x_end, y_end = marks[m + 2], marks[m + 4]
    ok = (kind[m + 2] == ord('"')) & (kind[m + 4] == ord('"')) & _matches(w, x_end, b'" y="')
    x, x_ok = _numbers(a, w, lt[pts] + 10, x_end)
    y, y_ok = _numbers(a, w, x_end + 5, y_end)
    point_file = tag_file[pts]
    bad[point_file[~(ok & x_ok & y_ok)]] = True
    stroke = opened[pts]
    pen = np.ones(len(pts))
    pen[:-1] = (stroke[1:] != stroke[:-1]) | (point_file[1:] != point_file[:-1])
    rows = np.column_stack([x, y, pen])
    bounds = np.searchsorted(point_file, np.arange(n + 1))
    return [None if bad[f] else rows[bounds[f] : bounds[f + 1]] for f in range(n)]


def _matches(w: np.ndarray, pos: np.ndarray, pattern: bytes, head: np.ndarray | None = None) -> np.ndarray:
    """Whether the buffer holds ``pattern`` at each position, compared eight bytes at a time.

    ``head`` may pass ``w[pos]`` when the caller already has it.
    """
    ok = _word_is(w[pos] if head is None else head, pattern[:8])
    if len(pattern) > 8:  # look further only where the first eight bytes matched
        maybe = np.flatnonzero(ok)
        ok[maybe] = _matches(w, np.minimum(pos[maybe] + 8, len(w) - 1), pattern[8:])
    return ok


def _word_is(words: np.ndarray, piece: bytes) -> np.ndarray:
    """Whether each 8-byte word (little-endian) starts with ``piece``, at most eight bytes."""
    mask = np.uint64((1 << (8 * len(piece))) - 1)
    return (words & mask) == np.uint64(int.from_bytes(piece, "little"))


def _numbers(a: np.ndarray, w: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal numbers ``-?digits[.digits]`` at ``a[start:end]``, all at once.

    ``ok`` is False for anything else (the caller hands such files to expat,
    which also reads exponents and the like). Integers of up to eight digits, the
    common case, are read eight bytes at a time (SWAR: the 8-byte window ending
    at the value, its leading bytes forced to "0", turned into a number by three
    multiply-shift steps); the rest go through ``_decimals``. Callers guarantee
    ``8 <= start`` and ``start < len(a)`` (values follow a tag name; the buffer is padded).
    """
    neg = a[start] == ord("-")
    length = np.clip(end - start - neg, 0, 9)  # 9 stands for "too long"
    v = (w[end - 8] & _KEEP[length]) | _FILL[length]
    ok = (length >= 1) & (length <= 8)
    ok &= ((v & _HIGH_NIBBLES) == _ZEROS) & (((v & _LOW_NIBBLES) + _SIXES) & _HIGH_NIBBLES == 0)
    v &= _LOW_NIBBLES
    v = (v * np.uint64(10 * 256 + 1)) >> np.uint64(8)
    v = ((v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(100 * 65536 + 1)) >> np.uint64(16)
    v = ((v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(10000 * 2**32 + 1)) >> np.uint64(32)
    value = np.where(neg, -v.astype(np.float64), v.astype(np.float64))
    if not ok.all():
        rest = np.flatnonzero(~ok)
        value[rest], ok[rest] = _decimals(a, start[rest], end[rest])
    return value, ok


def _decimals(a: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slower general case of ``_numbers``: digits right-aligned in a small matrix."""
    length = end - start
    if not len(length):
        return np.zeros(0), np.ones(0, dtype=bool)
    width = int(np.clip(length.max(), 1, _MAX_DIGITS + 2))
    k = np.arange(width)
    ch = a[np.maximum(end[:, None] + (k - width), 0)]
    pad = width - length
    inside = k >= pad[:, None]
    digit = ch - np.uint8(ord("0"))  # wraps around for anything below "0"
    is_digit = inside & (digit <= 9)
    neg = ch[np.arange(len(ch)), np.minimum(pad, width - 1)] == ord("-")
    dot = inside & (ch == ord("."))
    n_dot, n_digit = dot.sum(axis=1), is_digit.sum(axis=1)
    ok = (length >= 1) & (length <= width) & ((inside & ~is_digit).sum(axis=1) == n_dot + neg) & (n_dot <= 1)
    ok &= (n_digit >= 1) & (n_digit <= _MAX_DIGITS)
    # a digit's power of ten: its distance from the end, less one when the dot lies to its right
    power = (width - 1 - k)[None, :] - (np.cumsum(dot, axis=1) == 0) * n_dot[:, None]
    frac = np.where(n_dot == 1, width - 1 - dot.argmax(axis=1), 0)
    weights = np.where(is_digit, digit, 0).astype(np.float64)
    value = (weights * _POW10[_P0 + power]).sum(axis=1) / _POW10[_P0 + frac]
    return np.where(neg, -value, value), ok


def _parse_expat(data: bytes) -> np.ndarray:
    """The general path: any well-formed stroke file; raises ``Skip`` with the reason otherwise."""
    strokes: list[list[tuple[str | None, str | None]]] = []
    stack: list[str] = []

    def refuse(*_args) -> None:
        raise Skip(ENTITY)

    def start(name: str, attrs: dict[str, str]) -> None:
        if not stack and name != "WhiteboardCaptureSession":
            raise Skip(NOT_STROKE_FILE)
        if name == "Stroke" and stack[-1:] == ["StrokeSet"]:
            strokes.append([])
        elif name == "Point" and stack[-2:] == ["StrokeSet", "Stroke"]:
            strokes[-1].append((attrs.get("x"), attrs.get("y")))
        stack.append(name)

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, LookupError, UnicodeError, ValueError):  # the rest: a bad or multi-byte encoding
        raise Skip(MALFORMED) from None
    try:
        xy = [np.array([(float(x), float(y)) for x, y in s], dtype=np.float64).reshape(-1, 2) for s in strokes]
    except (TypeError, ValueError):
        raise Skip(BAD_COORDINATES) from None
    if any(not np.isfinite(s).all() for s in xy):
        raise Skip(BAD_COORDINATES)
    return strokes_to_points(xy)


# -- writing the layout (the demo corpus and recorded lines) ----------------------


def board_xml(low: np.ndarray, high: np.ndarray) -> str:
    """The ``WhiteboardDescription`` of a board spanning ``low`` .. ``high`` (x, y)."""
    return (
        "  <WhiteboardDescription>\n"
        '    <SensorLocation corner="top_left"/>\n'
        f'    <DiagonallyOppositeCoords x="{high[0]}" y="{high[1]}"/>\n'
        f'    <VerticallyOppositeCoords x="{low[0]}" y="{high[1]}"/>\n'
        f'    <HorizontallyOppositeCoords x="{high[0]}" y="{low[1]}"/>\n'
        "  </WhiteboardDescription>\n"
    )


def stroke_file_xml(xy: np.ndarray, up: np.ndarray, times: np.ndarray, board: str | None = None) -> str:
    """A line stroke file: integer points ``xy``, ``up`` true on each stroke's last point, ``times`` in seconds."""
    xy = np.asarray(xy, np.int64)
    if board is None:
        board = board_xml(xy.min(axis=0) - 50, xy.max(axis=0) + 50)
    out = [f'<?xml version="1.0" encoding="{TEXT_ENCODING}"?>\n<WhiteboardCaptureSession>\n', board, "  <StrokeSet>\n"]
    ends = np.flatnonzero(up) + 1
    xs, ys, ts = xy[:, 0].tolist(), xy[:, 1].tolist(), [f"{t:.3f}" for t in np.asarray(times).tolist()]
    for a, b in zip(np.r_[0, ends[:-1]].tolist(), ends.tolist()):
        out.append(f'    <Stroke colour="black" start_time="{ts[a]}" end_time="{ts[b - 1]}">\n')
        out.extend([f'      <Point x="{x}" y="{y}" time="{t}"/>\n' for x, y, t in zip(xs[a:b], ys[a:b], ts[a:b])])
        out.append("    </Stroke>\n")
    out.append("  </StrokeSet>\n</WhiteboardCaptureSession>\n")
    return "".join(out)


def original_file_xml(form_id: str, writer_id: int, texts: Sequence[str]) -> str:
    """An ``original/`` form file: the writer and each line's transcription."""
    from xml.sax.saxutils import quoteattr

    lines = "".join(
        f"    <TextLine id={quoteattr(f'{form_id}-{k:02d}')} text={quoteattr(t)}/>\n" for k, t in enumerate(texts, 1)
    )
    return (
        f'<?xml version="1.0" encoding="{TEXT_ENCODING}"?>\n<WhiteboardCaptureSession>\n'
        f'  <General>\n    <Form id="{form_id}" writerID="{writer_id}"/>\n  </General>\n'
        f"  <Transcription>\n{lines}  </Transcription>\n</WhiteboardCaptureSession>\n"
    )


def ascii_file_text(texts: Sequence[str]) -> str:
    """An ``ascii/`` form file: the printed prompt (OCR) and what was written, line by line (CSR)."""
    return "OCR:\n\n" + "\n".join(texts) + "\n\nCSR:\n\n" + "\n".join(texts) + "\n"
