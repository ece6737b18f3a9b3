"""Page layout: measured word wrap inside the margins, breaks where the text says, words in order.

The layout is tested with a fake pen (boxes whose widths wobble from one
writing to the next, as a network's do), so hypothesis can try hundreds of
texts, sizes and pages; one test runs the bundled network end to end.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import OptionError
from hwkit.page import (FIRST_LINES, PAPER_SIZES, SQUEEZE, Setting, lay_out, parse_length, parse_margins, parse_paper,
                        parse_text, x_height)  # fmt: skip
from hwkit.strokes import points_to_offsets, strokes_to_points

BODY = 10.0  # the fake pen's x-height, pen units


class FakePen:
    """Each character a box-like stroke of its own width; every writing jitters the widths by up to 25%."""

    def __init__(self, seed: int = 0, width: float = 1.0):
        self.rng = np.random.default_rng(seed)
        self.width = width  # of each character, times its usual
        self.calls: list[list[str]] = []
        self.rooms: list[list[float]] = []

    def __call__(self, texts: list[str], rooms: list[float]) -> list[np.ndarray]:
        self.calls.append(list(texts))
        self.rooms.append(list(rooms))
        return [self.line(text) for text in texts]

    def line(self, text: str) -> np.ndarray:
        """Each letter an oval filling the body; tall ones (capitals, ascenders) add a stem of twice its height."""
        strokes, x = [], 0.0
        angle = np.linspace(0, 2 * np.pi, 17)
        for c in text:
            w = (12.0 if c in "mwMW" else 7.0) * self.width * self.rng.uniform(0.8, 1.25)
            if c != " ":
                half = w * 0.4
                strokes.append(np.column_stack([x + half + half * np.cos(angle), -BODY / 2 + BODY / 2 * np.sin(angle)]))
                if c.isupper() or c in "bdhklt":
                    strokes.append(np.array([[x + 2 * half, 0.0], [x + 2 * half, -2 * BODY]]))
            x += w
        if not strokes:
            strokes.append(np.array([[0.0, 0.0], [1.0, 0.0]]))
        return points_to_offsets(strokes_to_points(strokes)).astype(np.float32)


words = st.text(alphabet="abcdehklmstwxMW", min_size=1, max_size=14)
paragraph = st.lists(st.lists(words, min_size=1, max_size=12), min_size=1, max_size=3)  # hard lines of words


def _text(paragraphs: list[list[list[str]]], page_breaks: list[bool]) -> str:
    parts = []
    for k, par in enumerate(paragraphs):
        if k:
            parts.append("\f" if page_breaks[k % len(page_breaks)] else "\n\n")
        parts.append("\n".join(" ".join(line) for line in par))
    return "".join(parts)


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(paragraph, min_size=1, max_size=4),
    page_breaks=st.lists(st.booleans(), min_size=1, max_size=4),
    paper=st.sampled_from(["a4", "a5", "a6", "100x150mm"]),
    size=st.floats(1.5, 8.0),
    margin=st.floats(5.0, 25.0),
    indent=st.floats(0.0, 10.0),
    align=st.sampled_from(["left", "centre", "right"]),
    straighten=st.booleans(),
)
def test_layout_keeps_the_margins_the_order_and_the_breaks(paragraphs, page_breaks, paper, size, margin, indent,
                                                           align, straighten):  # fmt: skip
    width, height = parse_paper(paper)
    try:
        setting = Setting(paper=(width, height), margins=(margin,) * 4, size=size, indent=indent, align=align,
                          straighten=straighten)  # fmt: skip
    except OptionError:
        return  # margins that leave no room are refused, tested below
    text = _text(paragraphs, page_breaks)
    scale = size / BODY
    doc = lay_out(text, FakePen(), setting, scale=scale, char_width=7.0 * scale)

    # no ink crosses the left or right margin, whatever the wobble
    for line in doc.lines:
        xs = np.concatenate([s[:, 0] for s in line.strokes])
        assert xs.min() >= margin - 1e-6 and xs.max() <= width - margin + 1e-6
    # the words on the pages are the words of the text, in order
    assert " ".join(line.text for line in doc.lines).split() == text.split()
    # each hard line of the text starts a written line and no written line runs into the next one;
    # a form feed starts a page
    texts = [line.text for line in doc.lines]
    k = 0
    for block in parse_text(text):
        first, taken = k, []
        while len(taken) < len(block.words):
            taken += texts[k].split()
            k += 1
        assert taken == block.words
        if block.page_start:
            page = next(p for p in doc.pages if any(line is doc.lines[first] for line in p.lines))
            assert page.lines[0] is doc.lines[first]
    assert k == len(texts)
    # lines go down the page
    for page in doc.pages:
        tops = [np.concatenate(line.strokes)[:, 1].mean() for line in page.lines]
        assert all(a < b for a, b in zip(tops, tops[1:]))
    if align == "left":
        for line in doc.lines:
            assert np.concatenate(line.strokes)[:, 0].min() >= margin - 1e-6


def test_wrapping_is_by_measured_width_and_rewrites_only_changed_lines():
    setting = Setting(paper=(120.0, 200.0), margins=(10.0,) * 4, size=2.0)
    pen = FakePen(1)
    text = " ".join(["mmmm wwww"] * 12 + ["ab cd"] * 12)
    # the estimate says 7 units a character; "m" and "w" take 12, so the first wrap overruns and is re-flowed
    doc = lay_out(text, pen, setting, scale=0.2, char_width=7.0 * 0.2)
    assert doc.rounds >= 2 and len(pen.calls) == doc.rounds
    assert sum(map(len, pen.calls)) == doc.written < len(pen.calls) * len(doc.lines)  # kept lines not rewritten
    assert not any(line.narrowed for line in doc.lines)
    widths = [np.ptp(np.concatenate(line.strokes)[:, 0]) for line in doc.lines[:-1]]
    assert min(widths) > 0.6 * setting.measure  # lines are filled, not cut by a character count


@pytest.mark.parametrize("seed", range(4))
def test_a_few_lines_written_first_set_the_width_of_all(seed):
    """The pen writes 0.6 of the width per character the wrap is told: the first lines measure it, and
    the whole text is wrapped again by it, so lines are full, not 0.6 full, the first ones too."""
    setting = Setting(paper=(120.0, 200.0), margins=(10.0,) * 4, size=2.0, indent=8.0)
    pen = FakePen(seed, width=0.6)
    text = " ".join(["abc de fghk lm"] * 60) + "\n\n" + " ".join(["st uvwx"] * 90)
    doc = lay_out(text, pen, setting, scale=0.2, char_width=7.0 * 0.2)
    assert len(pen.calls[0]) == FIRST_LINES
    widths = [np.ptp(np.concatenate(line.strokes)[:, 0]) for line in doc.lines]
    last_of_paragraph = {len(doc.lines) - 1, next(k for k, line in enumerate(doc.lines) if line.text.endswith("lm") and
                                                   doc.lines[k + 1].text.startswith("st"))}  # fmt: skip
    full = [w / setting.measure for k, w in enumerate(widths) if k not in last_of_paragraph]
    assert np.median(full) > 0.8 and np.median(full[:FIRST_LINES]) > 0.8
    # each line is asked to keep within its room, less the indent where a paragraph starts
    rooms = dict(zip((t for call in pen.calls for t in call), (r for call in pen.rooms for r in call)))
    for k, line in enumerate(doc.lines):
        indent = setting.indent if k == 0 or k - 1 in last_of_paragraph else 0.0
        assert rooms[line.text] == pytest.approx((setting.measure - indent) * (1 + SQUEEZE))


@pytest.mark.parametrize(
    "paragraphs, first_page",
    [
        ([5, 2], 5),  # "With love," would end page 1 and leave "Alex" alone on page 2: both go to page 2
        ([5, 4], 5),  # a paragraph's first line alone at the foot of page 1 goes to page 2
        ([4, 3], 4),  # three lines split 2 / 1, then 1 / 2: the whole paragraph goes to page 2
        ([4, 6], 6),  # six lines split 2 / 4 is fine
        ([1, 1, 1, 1, 1, 3], 5),  # one-line paragraphs stay put; the next one's first line would be an orphan
    ],
)
def test_a_page_break_leaves_no_line_of_a_paragraph_alone(paragraphs, first_page):
    # a page holds six baselines: 16 mm down, then every 9 mm, the last 4 mm short of the limit
    setting = Setting(paper=(100.0, 78.6), margins=(10.0,) * 4, size=3.0, paragraph_gap=0.0)

    def pen(texts, rooms):  # each hard line comes out as one short line
        return [np.array([[0, 0, 0], [10.0, 0, 1]], np.float32) for _ in texts]

    text = "\n\n".join("\n".join(f"p{k}l{n}" for n in range(size)) for k, size in enumerate(paragraphs))
    doc = lay_out(text, pen, setting, scale=1.0, char_width=1.0)
    assert [len(page.lines) for page in doc.pages] == [first_page, sum(paragraphs) - first_page]
    assert " ".join(line.text for line in doc.lines).split() == text.split()


def test_tall_ink_on_a_pages_first_line_stays_under_the_top_margin():
    setting = Setting(paper=(100.0, 80.0), margins=(10.0,) * 4, size=3.0)

    def tall(texts, rooms):  # a body of 10 units and, at its start, a stem rising 30 above the baseline
        return [np.array([[0, -30, 1], [0, 30, 0], [0, -5, 0], [40, 0, 1]], np.float32) for _ in texts]

    doc = lay_out("\f".join(["one two", "three"]), tall, setting, scale=0.3, char_width=2.0)
    assert len(doc.pages) == 2
    for page in doc.pages:
        tops = [np.concatenate(line.strokes)[:, 1].min() for line in page.lines]
        assert min(tops) >= 10 - 1e-6  # the stem rises 3 x-heights; the first baseline sits 2 under the margin


@pytest.mark.parametrize("seed", range(3))
def test_a_short_text_fills_its_lines_too(seed):
    """Fewer lines than ``FIRST_LINES``: all are written at once on the hand's estimate, then those the
    measured width gives more words are written again with them."""
    setting = Setting(paper=(105.0, 148.0), margins=(10.0,) * 4, size=3.0)
    pen = FakePen(seed, width=0.6)
    doc = lay_out(" ".join(["abc de fghk lm"] * 8), pen, setting, scale=0.3, char_width=7.0 * 0.3)
    assert len(pen.calls) >= 2 and len(pen.calls[0]) < FIRST_LINES
    widths = [np.ptp(np.concatenate(line.strokes)[:, 0]) / setting.measure for line in doc.lines[:-1]]
    assert np.median(widths) > 0.8


def test_a_line_a_little_wider_than_its_room_is_narrowed_to_fit_not_written_again():
    setting = Setting(paper=(100.0, 150.0), margins=(10.0,) * 4, size=3.0)

    def wide(texts, rooms):  # every line a stroke 3% wider than the measure (rooms allow for the squeeze)
        return [np.array([[0, 0, 0], [room / (1 + SQUEEZE) * 1.03 / 0.3, 0, 1]], np.float32) for room in rooms]

    # words over half the measure: a line holds one, however wide the pen is measured to write
    doc = lay_out(" ".join(["wordlength"] * 12), wide, setting, scale=0.3, char_width=4.5)
    assert doc.written == len(doc.lines) and not any(line.narrowed for line in doc.lines)
    for line in doc.lines:
        xs = np.concatenate(line.strokes)[:, 0]
        assert xs.min() >= 10 - 1e-6 and xs.max() <= 90 + 1e-6


@pytest.mark.parametrize("seed", range(12))
def test_a_pen_whose_lines_keep_coming_out_wider_still_gets_a_page(seed):
    """Every writing of a line is wider than the last (or wildly off): after the last round the
    overruns are narrowed, never left unwritten."""
    pen = FakePen(seed)
    rng = np.random.default_rng(seed)
    calls = [0]

    def growing(texts, rooms):
        calls[0] += 1
        out = pen(texts, rooms)
        for o in out:
            o[:, 0] *= (1.3 ** calls[0]) if seed % 2 else rng.uniform(0.9, 1.5)
        return out

    setting = Setting(paper=(100.0, 150.0), margins=(10.0,) * 4, size=3.0)
    doc = lay_out(" ".join(["word"] * 60), growing, setting, scale=0.3, char_width=2.1)
    assert " ".join(line.text for line in doc.lines).split() == ["word"] * 60
    for line in doc.lines:
        assert np.concatenate(line.strokes)[:, 0].max() <= 90 + 1e-6


def test_a_word_wider_than_the_page_is_narrowed_to_fit():
    setting = Setting(paper=(60.0, 100.0), margins=(5.0,) * 4, size=4.0)
    doc = lay_out("a " + "m" * 40 + " b", FakePen(), setting, scale=0.4, char_width=2.8)
    assert [line.text for line in doc.lines] == ["a", "m" * 40, "b"]
    assert doc.lines[1].narrowed and not doc.lines[0].narrowed
    xs = np.concatenate(doc.lines[1].strokes)[:, 0]
    assert xs.max() <= 55 + 1e-6


def test_long_texts_flow_onto_more_pages():
    setting = Setting(paper=PAPER_SIZES["a6"], margins=(10.0,) * 4, size=3.0)
    doc = lay_out(" ".join(["words"] * 400), FakePen(), setting, scale=0.3, char_width=2.1)
    assert len(doc.pages) > 1
    per_page = {len(p.lines) for p in doc.pages[:-1]}
    assert len(per_page) == 1  # full pages hold the same number of lines
    last = height_used = max(np.concatenate(doc.pages[0].lines[-1].strokes)[:, 1])
    assert height_used <= PAPER_SIZES["a6"][1] - 10 and last > 0


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="acemnorsuvwxz", min_size=6, max_size=30), st.floats(0.01, 100), st.integers(0, 1000))
def test_x_height_scales_with_the_writing_and_ignores_a_few_tall_letters(text, factor, seed):
    line = FakePen(seed).line(text)
    base = x_height(line)
    assert 0.5 * BODY <= base <= BODY  # inside the body band
    scaled = line.copy()
    scaled[:, :2] *= factor
    assert x_height(scaled) == pytest.approx(base * factor, rel=1e-6)
    tall = "".join(c.upper() if k % 6 == 0 else c for k, c in enumerate(text))  # one capital in six
    assert x_height(FakePen(seed).line(tall)) == pytest.approx(base, rel=0.35)


def test_x_height_measures_the_true_x_height_of_demo_handwriting():
    """Demo lines are drawn from fonts at a known size: the estimate must find it, capitals and digits included."""
    from hwkit import demo_style

    texts = ["the quick brown fox jumps over the lazy dog", "We were in the Garden all day, and it rained 3 times."]
    rng = np.random.default_rng(0)
    ratios = []
    for writer in range(20):
        style = demo_style.random_style(np.random.default_rng(writer))
        true = style.height / demo_style.CAP_HEIGHT * demo_style.x_height(style.font)
        for text in texts:
            points = demo_style.render_line(text, style, rng).points
            ratios.append(x_height(points_to_offsets(points)) / true)
    low, mid, high = np.percentile(ratios, [5, 50, 95])
    assert 0.8 <= low and 0.85 <= mid <= 1.1 and high <= 1.2, (low, mid, high)


def test_lengths_papers_and_margins_parse_and_refuse():
    assert parse_length("2cm") == 20 and parse_length("1in") == 25.4 and parse_length("7") == 7
    assert parse_paper("A5") == (148, 210) and parse_paper("5x7in") == pytest.approx((127, 177.8))
    assert parse_margins("10mm 20mm") == (10, 20, 10, 20)
    assert parse_margins("1 2 3") == (1, 2, 3, 2)
    for bad in (lambda: parse_length("ten"), lambda: parse_paper("B7"), lambda: parse_margins("1 2 3 4 5")):
        with pytest.raises(OptionError):
            bad()
    with pytest.raises(OptionError, match="give a --size under 3.3 mm or smaller margins"):
        Setting(paper=(50.0, 50.0), margins=(10.0, 20.0, 10.0, 20.0), size=4.0)
    with pytest.raises(OptionError, match="margins leave nothing"):
        Setting(paper=(50.0, 50.0), margins=(10.0, 25.0, 10.0, 25.0), size=4.0)
    with pytest.raises(OptionError, match="align"):
        Setting(align="justify")


def test_text_structure_paragraphs_lines_pages():
    blocks = parse_text("Dear Ann,\n\nline one\nline two\r\n\n\n\fnew page")
    assert [(b.words, b.paragraph_start, b.page_start) for b in blocks] == [
        (["Dear", "Ann,"], True, False),
        (["line", "one"], True, False),
        (["line", "two"], False, False),
        (["new", "page"], True, True),
    ]
