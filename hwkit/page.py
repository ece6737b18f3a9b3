"""Text -> pages of handwriting in millimetres: paragraphs, word wrap by measured width, breaks.

The text says where the breaks go: a blank line starts a paragraph, a single
newline breaks a line, a form feed (``\\f``) starts a page. Everything else is
running text, wrapped to the page.

Wrapping is by the width of the words as written, not a character count:
each word starts with an estimate (characters x the hand's width per
character). Networks write narrower than the line that primes them, so the
first ``FIRST_LINES`` lines are written alone, and every estimate is scaled by
how wide the pen really took them before the whole text is wrapped again (a
first line that now takes more words is written again with them). Each line is
asked to keep within its room (``write``'s ``rooms``: among draws read alike
the chooser keeps one that fits), each written line is measured and its words'
estimates scaled to what the pen took, and a line still too wide gives its
last words to the next line. Lines whose words did not move are kept as
written; only changed ones are written again. A line up to ``SQUEEZE`` too
wide is narrowed a little instead, and after ``MAX_ROUNDS`` so is any line
that still overruns (a single word wider than the page), so no line ever
crosses the right margin.

``lay_out`` does this for any ``write(texts, rooms) -> offsets`` and scale, so it can
be tested with a fake pen; ``hwkit.letter.write_document`` gives it the network.
Page coordinates are mm from the top-left corner, y down, as in SVG.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwkit import curves
from hwkit.errors import OptionError
from hwkit.strokes import PEN_UP, offsets_to_points, points_to_strokes

PAPER_SIZES = {  # mm, portrait
    "a3": (297.0, 420.0),
    "a4": (210.0, 297.0),
    "a5": (148.0, 210.0),
    "a6": (105.0, 148.0),
    "letter": (215.9, 279.4),
    "legal": (215.9, 355.6),
}
UNITS = {"mm": 1.0, "cm": 10.0, "in": 25.4, "pt": 25.4 / 72}
ALIGNS = ("left", "centre", "right")
MAX_ROUNDS = 4
# Lines written before the whole text is wrapped again: a network writes narrower than the line that primes
# it, so the hand's width per character is only a first guess; eight lines measure the pen better than four.
FIRST_LINES = 8
# Lines are filled to this share of the measure by the estimates. The greedy wrap already leaves half a
# word free on average, and the chooser's tries keep most lines inside their room: 0.93 left the median
# line 0.73 full, 1.0 leaves it 0.88 full for a few more lines written (BENCHMARKS.md, pages).
FILL = 1.0
# A line up to this share wider than its room is narrowed to fit instead of written again: a hand 5%
# narrower is not seen, and a rewrite costs a round and can push a word on down the paragraph.
SQUEEZE = 0.05
FIRST_BASELINE = 2.0  # x-heights from the top margin to the first baseline (room for ascenders)
DESCENT = 1.2  # x-heights kept free under the last baseline of a page
BODY_SHARE = 0.7  # of a line's ink lies in its body (between baseline and x-line); see ``baseline``
INK_SAMPLES = 2000  # points along a line's ink where its heights are taken

Write = Callable[[list[str], list[float]], list[np.ndarray]]


def parse_length(text: str, what: str = "length") -> float:
    """'20mm', '2cm', '0.75in', '12pt' or a bare number of mm -> mm."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(mm|cm|in|pt)?\s*", text.lower())
    if not m:
        raise OptionError(what, f"{text!r} is not a length (e.g. 20mm, 2cm, 0.75in)")
    return float(m.group(1)) * UNITS[m.group(2) or "mm"]


def parse_paper(text: str) -> tuple[float, float]:
    """A4, A5, letter, ... or WxH with a unit ('120x180mm', '5x7in') -> (width, height) in mm."""
    key = text.strip().lower()
    if key in PAPER_SIZES:
        return PAPER_SIZES[key]
    m = re.fullmatch(r"(\d+(?:\.\d*)?)x(\d+(?:\.\d*)?)(mm|cm|in)?", key.replace(" ", ""))
    if not m:
        raise OptionError("page", f"{text!r}: give {', '.join(PAPER_SIZES)} or WxH with a unit (e.g. 120x180mm)")
    scale = UNITS[m.group(3) or "mm"]
    width, height = float(m.group(1)) * scale, float(m.group(2)) * scale
    if width <= 0 or height <= 0:
        raise OptionError("page", f"{text!r}: a page needs a width and a height")
    return width, height


def parse_margins(text: str) -> tuple[float, float, float, float]:
    """One to four lengths as in CSS (all; vertical horizontal; top horizontal bottom; top right bottom left)."""
    parts = [parse_length(p, "margin") for p in re.split(r"[,\s]+", text.strip()) if p]
    if not 1 <= len(parts) <= 4:
        raise OptionError("margin", f"{text!r}: give one to four lengths (top right bottom left)")
    if len(parts) == 3:
        parts.append(parts[1])
    top, right, bottom, left = (parts * 4)[:4] if len(parts) < 4 else parts
    return top, right, bottom, left


@dataclass(frozen=True)
class Setting:
    """How text sits on paper. Lengths in mm; ``line_spacing`` and gaps in x-heights (``size``)."""

    paper: tuple[float, float] = PAPER_SIZES["a4"]
    margins: tuple[float, float, float, float] = (20.0, 20.0, 20.0, 20.0)  # top right bottom left
    size: float = 3.5  # x-height: the middle half of the ink's heights
    line_spacing: float = 3.0  # baseline to baseline
    paragraph_gap: float = 1.0  # extra space between paragraphs
    indent: float = 0.0  # first line of each paragraph
    align: str = "left"
    straighten: bool = False  # level each line instead of keeping the hand's drift

    def __post_init__(self):
        if self.align not in ALIGNS:
            raise OptionError("align", f"{self.align!r}: one of {', '.join(ALIGNS)}")
        if min(self.margins) < 0 or self.size <= 0 or self.line_spacing <= 0:
            raise OptionError("size", "sizes and spacings must be positive, margins not negative")
        width, height = self.paper
        if self.measure <= 0:
            raise OptionError("margin", f"the margins leave nothing of a {width:g} mm wide page")
        if self.measure <= self.size * 3:
            raise OptionError("size", f"{self.size:g} mm writing on {self.measure:.0f} mm lines (the page less its "
                              f"margins): give a --size under {self.measure / 3:.1f} mm or smaller margins")  # fmt: skip
        if height - self.margins[0] - self.margins[2] < (FIRST_BASELINE + DESCENT) * self.size:
            raise OptionError("margin", f"the margins leave no room for a line of {self.size:g} mm on the page")
        if self.indent >= self.measure / 2:
            raise OptionError("indent", f"{self.indent:g} mm: at most half the line ({self.measure / 2:.0f} mm)")

    @property
    def measure(self) -> float:
        """The width a line may take, mm."""
        return self.paper[0] - self.margins[1] - self.margins[3]


@dataclass
class Line:
    """A written line on its page: ``strokes`` are ``(k, 2)`` arrays in mm, page coordinates."""

    text: str
    strokes: list[np.ndarray]
    narrowed: bool = False  # shrunk to fit after MAX_ROUNDS


@dataclass
class Page:
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)
    _smoothed: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def strokes(self) -> list[np.ndarray]:
        return [s for line in self.lines for s in line.strokes]

    def beziers(self, tolerance: float) -> list[np.ndarray]:
        """Each stroke's smooth curve (``curves.smooth``), worked out once per tolerance: every output
        format of the page draws the same curves."""
        if tolerance not in self._smoothed:
            self._smoothed[tolerance] = [curves.smooth(stroke, tolerance) for stroke in self.strokes]
        return self._smoothed[tolerance]


@dataclass
class Document:
    pages: list[Page]
    rounds: int  # write-measure-reflow rounds taken
    written: int  # lines the pen wrote, counting those re-written after a re-flow

    @property
    def lines(self) -> list[Line]:
        return [line for page in self.pages for line in page.lines]


@dataclass
class _Block:
    """A hard line of the text (ended by a newline) and where it sits in the structure."""

    words: list[str]
    paragraph_start: bool
    page_start: bool


def parse_text(text: str) -> list[_Block]:
    """Pages (form feed) -> paragraphs (blank lines) -> hard lines (newlines) -> words."""
    blocks = []
    for p, page in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\f")):
        paragraphs = [par for par in re.split(r"\n[ \t]*\n", page) if par.strip()]
        for q, paragraph in enumerate(paragraphs):
            hard = [h.split() for h in paragraph.split("\n") if h.strip()]
            for k, words in enumerate(hard):
                blocks.append(_Block(words, k == 0, p > 0 and q == 0 and k == 0))
    return blocks


def ink_points(offsets: np.ndarray) -> np.ndarray:
    """Offsets -> absolute ``points`` (x, y, pen_up), the line's first point at the origin."""
    return offsets_to_points(np.asarray(offsets, np.float64))


def baseline(points: np.ndarray) -> tuple[float, float, float]:
    """A line's slope, its baseline height at x = 0 and its x-height, from ``points`` (x, y, pen_up).

    A least-squares line through the ink gives the drift. About it, the body
    of the writing is the narrowest band that holds ``BODY_SHARE`` of the ink
    (pen-down length): its height is the x-height and its lower edge the
    baseline; ascenders, descenders and capitals are the ink outside it. On
    demo-corpus lines, whose true x-height is known from their fonts, it
    measures 0.85-1.12 of it (5th-95th percentile; ``tests/test_page.py``).
    """
    x, y = points[:, 0], points[:, 1]
    slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    level = y - slope * x
    down = points[:-1, PEN_UP] < 0.5  # segment i -> i + 1 is drawn unless the pen lifted after point i
    ink = np.hypot(np.diff(x), np.diff(level)) * down
    if ink.sum() <= 0:
        return slope, float(level.max()), float(max(np.ptp(level), 1e-9))
    # the ink's heights, sampled evenly along the pen's path (a long straight segment counts along its length)
    pieces = np.ceil(ink / (ink.sum() / INK_SAMPLES)).astype(np.int64)
    seg = np.repeat(np.arange(len(ink)), pieces)
    t = (np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces) + 0.5) / pieces[seg]
    mid = level[seg] + t * (level[seg + 1] - level[seg])
    ink = (ink / np.maximum(pieces, 1))[seg]
    order = np.argsort(mid)
    heights, weight = mid[order], np.cumsum(ink[order])
    start_weight = np.concatenate([[0.0], weight[:-1]])
    end = np.searchsorted(weight, start_weight + BODY_SHARE * weight[-1])
    ok = end < len(heights)
    spans = heights[end[ok]] - heights[ok]
    k = int(np.argmin(spans))
    return slope, float(heights[end[ok][k]]), float(max(spans[k], 1e-9))


def x_height(offsets: np.ndarray) -> float:
    """The x-height of a written line, in its own units (see ``baseline``)."""
    return baseline(ink_points(offsets))[2]


def lay_out(text: str, write: Write, setting: Setting, *, scale: float, char_width: float) -> Document:
    """Write ``text`` onto pages: ``write(texts, rooms)`` turns line texts into offsets, each best kept
    within its room (mm wide); ``scale`` is mm per pen unit.

    ``char_width`` (mm) seeds the width estimates of words not yet written.
    """
    blocks = parse_text(text)
    if not blocks:
        raise OptionError("text", "the text to write is empty")
    estimate: dict[tuple[int, int], float] = {
        (b, w): char_width * len(word) for b, block in enumerate(blocks) for w, word in enumerate(block.words)
    }
    space = char_width
    written: dict[tuple[int, int, int], np.ndarray] = {}  # (block, first word, end word) -> points in mm
    count = rounds = 0

    def put(new: list[tuple[int, int, int]]) -> None:
        nonlocal count, rounds
        texts = [" ".join(blocks[b].words[i:j]) for b, i, j in new]
        for key, offsets in zip(new, write(texts, [_room(blocks, s, setting) * (1 + SQUEEZE) for s in new])):
            written[key] = _to_mm(offsets, scale, setting.straighten)
        count, rounds = count + len(new), rounds + 1

    spans = _wrap(blocks, estimate, space, setting)
    first = spans[:FIRST_LINES]  # the pen's width in this hand, from a few lines, before all is wrapped again
    put(first)
    ratio = sum(np.ptp(written[s][:, 0]) for s in first) / sum(_estimated_width(estimate, space, s) for s in first)
    if ratio > 0:  # lines that came out with no ink measure nothing
        estimate = {key: width * ratio for key, width in estimate.items()}
        space *= ratio
        spans = _wrap(blocks, estimate, space, setting)  # first lines whose words did not move are kept
    for attempt in range(MAX_ROUNDS):
        new = [s for s in spans if s not in written]
        if new:
            put(new)
        misfits = [s for s in spans if not _fits(written[s], blocks, s, setting)]
        for b, i, j in {*new, *misfits}:  # scale the words' estimates to the width the pen took
            width = float(np.ptp(written[b, i, j][:, 0]))
            guess = _estimated_width(estimate, space, (b, i, j))
            for w in range(i, j):
                estimate[b, w] *= width / guess
        if not misfits or attempt == MAX_ROUNDS - 1:
            break  # what still overruns after the last round is narrowed by _paginate
        spans = _refit(blocks, spans, written, estimate, space, setting)
    return Document(_paginate(blocks, spans, written, setting), rounds, count)


def _to_mm(offsets: np.ndarray, scale: float, straighten: bool) -> np.ndarray:
    """A line's points in mm, its ink starting at x = 0 with its baseline through y = 0 at its middle."""
    points = ink_points(offsets)
    points[:, :2] *= scale
    slope, base, _ = baseline(points)
    x0, x1 = points[:, 0].min(), points[:, 0].max()
    if straighten:
        points[:, 1] -= slope * points[:, 0]
        points[:, 1] -= base
    else:
        points[:, 1] -= base + slope * (x0 + x1) / 2
    points[:, 0] -= x0
    return points


def _room(blocks: list[_Block], span: tuple[int, int, int], setting: Setting) -> float:
    b, i, _ = span
    return setting.measure - (setting.indent if blocks[b].paragraph_start and i == 0 else 0.0)


def _fits(points: np.ndarray, blocks: list[_Block], span: tuple[int, int, int], setting: Setting) -> bool:
    return float(np.ptp(points[:, 0])) <= _room(blocks, span, setting) * (1 + SQUEEZE)


def _wrap(blocks: list[_Block], estimate: dict, space: float, setting: Setting) -> list[tuple[int, int, int]]:
    """Greedy fill: each line takes words while their estimated widths fit ``FILL`` of its room."""
    spans = []
    for b, block in enumerate(blocks):
        i = 0
        while i < len(block.words):
            room = FILL * _room(blocks, (b, i, 0), setting)
            j, width = i + 1, estimate[b, i]
            while j < len(block.words) and width + space + estimate[b, j] <= room:
                width += space + estimate[b, j]
                j += 1
            spans.append((b, i, j))
            i = j
    return spans


def _refit(blocks: list[_Block], spans: list, written: dict, estimate: dict, space: float,
           setting: Setting) -> list[tuple[int, int, int]]:  # fmt: skip
    """The same lines, except that a line too wide gives its last words to the next line of its block.

    Re-wrapping a whole paragraph would move every break after the first
    change, and each moved line must be written again; this way a pushed word
    stops at the first line with room for it, and the lines after it stay as
    written. A line that fits is judged by its measured width if it has been
    written, else by its words' estimates.
    """
    out = []
    for b, block in enumerate(blocks):
        ends = [j for bb, _, j in spans if bb == b]
        start = 0
        for end in ends:
            if start >= len(block.words):
                break
            end = max(end, start + 1)
            while end - start > 1 and not _fits_now(blocks, (b, start, end), written, estimate, space, setting):
                end -= 1
            out.append((b, start, end))
            start = end
        if start < len(block.words):  # the words pushed off the block's last line start new lines
            rest = _Block(block.words[start:], False, False)
            shifted = {(0, w - start): estimate[b, w] for w in range(start, len(block.words))}
            out += [(b, i + start, j + start) for _, i, j in _wrap([rest], shifted, space, setting)]
    return out


def _estimated_width(estimate: dict, space: float, span: tuple[int, int, int]) -> float:
    """The words of ``span`` side by side, one space between each, by their current estimates."""
    b, i, j = span
    return sum(estimate[b, w] for w in range(i, j)) + space * (j - i - 1)


def _fits_now(blocks: list[_Block], span: tuple[int, int, int], written: dict, estimate: dict, space: float,
              setting: Setting) -> bool:  # fmt: skip
    if span in written:
        return _fits(written[span], blocks, span, setting)
    return _estimated_width(estimate, space, span) <= FILL * _room(blocks, span, setting)


def _paginate(blocks: list[_Block], spans: list, written: dict, setting: Setting) -> list[Page]:
    left = setting.margins[3]
    pages: list[Page] = []
    ascents = [max(0.0, -float(written[span][:, 1].min())) for span in spans]
    for span, (page, y) in zip(spans, _baselines(blocks, spans, setting, ascents)):
        b, i, j = span
        block = blocks[b]
        if page == len(pages):
            pages.append(Page(*setting.paper))
        points = written[span].copy()
        room = _room(blocks, span, setting)
        ink = float(np.ptp(points[:, 0]))
        narrowed = ink > room * (1 + SQUEEZE)
        if ink > room:
            points[:, :2] *= room / ink
            ink = room
        start = left + (setting.indent if block.paragraph_start and i == 0 else 0.0)
        start += {"left": 0.0, "centre": (room - ink) / 2, "right": room - ink}[setting.align]
        points[:, 0] += start
        points[:, 1] += y
        pages[-1].lines.append(Line(" ".join(block.words[i:j]), points_to_strokes(points), narrowed))
    return pages


def _baselines(blocks: list[_Block], spans: list, setting: Setting, ascents: list[float]) -> list[tuple[int, float]]:
    """Each line's page and baseline (mm from the top). A page's first baseline sits ``FIRST_BASELINE``
    x-heights under the top margin, or lower if the line's ink rises higher (``ascents``, mm above its
    baseline), so that no ink crosses the margin. A page ends at a form feed or where the next
    baseline would fall below the last a page has room for. A break that splits a paragraph is moved up a
    line at a time while it would leave one of the paragraph's lines alone at the foot of a page or at the
    head of the next (an orphan or a widow: a letter's "Alex" alone on page 2), unless that would empty
    the page."""
    pitch = setting.line_spacing * setting.size
    gap = setting.paragraph_gap * setting.size
    top = setting.margins[0]
    last = setting.paper[1] - setting.margins[2] - DESCENT * setting.size
    paragraph = np.cumsum([blocks[b].paragraph_start and i == 0 for b, i, _ in spans])
    opens = np.searchsorted(paragraph, paragraph)  # each line's paragraph's first line
    ends = np.searchsorted(paragraph, paragraph, side="right")  # ... and the line after its last

    def first(n: int) -> float:  # line n's baseline at the head of a page (a stray stroke moves it a pitch at most)
        return top + FIRST_BASELINE * setting.size + min(max(ascents[n] - FIRST_BASELINE * setting.size, 0.0), pitch)

    place, head = [(0, first(0))], 0  # head: the current page's first line
    for n in range(1, len(spans)):
        b, i, _ = spans[n]
        page, y = place[-1]
        if blocks[b].page_start and i == 0:
            place.append((page + 1, first(n)))
            head = n
            continue
        y += pitch + (gap if blocks[b].paragraph_start and i == 0 else 0.0)
        if y <= last:
            place.append((page, y))
            continue
        k = n
        while k - 1 > head and opens[k] < k and 1 in (k - opens[k], ends[k] - k):
            k -= 1
        place[k:] = [(page + 1, first(k) + pitch * (m - k)) for m in range(k, n + 1)]
        head = k
    return place
