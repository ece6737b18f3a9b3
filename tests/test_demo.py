"""The demo corpus: texts, writers, stroke transforms, the IAM-OnDB tree and its reuse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwkit import __version__
from hwkit.config import DemoParams
from hwkit.demo import FORMS_PER_TASK, MARKER, PUNCTUATION, TASK_LISTS, ensure_demo_corpus, form_texts, plan_forms, writer_style
from hwkit.demo_style import (
    PRINT_FONTS,
    SCRIPT_FONTS,
    WriterStyle,
    apply_linear,
    random_style,
    render_line,
    resample,
    slant_matrix,
    smooth,
)
from hwkit.demo_text import ALPHABET, NAMES, make_texts
from hwkit.errors import CorpusError, TextError
from hwkit.strokes import PEN_UP, points_to_strokes, strokes_to_points

SMALL = dict(lines=30, writers=4, seed=3)
PROPERTY = settings(max_examples=40, deadline=None)


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return ensure_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus", **SMALL)


def style_of(font: str, seed: int = 0) -> WriterStyle:
    """A random writer moved onto ``font``, with the joining habits of its kind of hand."""
    script = font in SCRIPT_FONTS
    style = random_style(np.random.default_rng(seed))
    return replace(style, font=font, defer_marks=script, join=10.0 if script else 1.0, letter_space=0.0 if script else -2.0)


# -- texts --------------------------------------------------------------------------


def test_texts_cover_the_alphabet_many_times():
    texts = make_texts(600, np.random.default_rng(0))
    counts = {c: sum(t.count(c) for t in texts) for c in ALPHABET}
    assert min(counts.values()) >= 10, {c: n for c, n in counts.items() if n < 10}
    assert set("".join(texts)) <= set(ALPHABET)
    lengths = [len(t) for t in texts]
    assert 25 <= np.mean(lengths) <= 50 and max(lengths) <= 50
    assert all(t == t.strip() and "  " not in t for t in texts)


def test_a_quarter_of_the_words_are_made_up_and_new_letter_pairs_appear():
    from hwkit.demo_text import WORDS

    words = [w.strip(".,;:!?\"()").lower() for t in make_texts(600, np.random.default_rng(1)) for w in t.split()]
    words = [w for w in words if w.isalpha()]
    made_up = [w for w in words if w not in WORDS and w.capitalize() not in NAMES]
    assert 0.15 <= len(made_up) / len(words) <= 0.4
    known_pairs = {w[i : i + 2] for w in WORDS for i in range(len(w) - 1)}
    new_pairs = {w[i : i + 2] for w in made_up for i in range(len(w) - 1)} - known_pairs
    assert len(new_pairs) >= 100  # pairs the common words never write, e.g. "wk" in "hwkit"


def test_every_character_renders_in_every_font():
    for font in SCRIPT_FONTS + PRINT_FONTS:
        style = style_of(font)
        for ch in ALPHABET.replace(" ", ""):
            line = render_line(ch, style, np.random.default_rng(0))
            assert len(line.strokes()) >= 1, (font, ch)
            assert np.isfinite(line.points).all()


@pytest.mark.parametrize("text, bad", [("café", "'é'"), ("a\tb", "'\\t'"), ("x ~ y", "'~'")])
def test_unknown_character_is_a_text_error_naming_it(text, bad):
    with pytest.raises(TextError, match=bad.replace("\\", "\\\\")):
        render_line(text, style_of("cursive"), np.random.default_rng(0))


# -- writers and lines --------------------------------------------------------------


def test_writers_differ_and_seeds_differ():
    styles = [writer_style(0, w) for w in range(8)]
    assert len({s for s in styles}) == 8
    assert {s.font for s in styles} & set(SCRIPT_FONTS) and {s.font for s in styles} & set(PRINT_FONTS)
    assert writer_style(0, 0) != writer_style(1, 0)
    assert writer_style(5, 2) == writer_style(5, 2)
    assert json.loads(json.dumps(styles[0].to_json()))["font"] == styles[0].font


def test_a_rendered_line_is_in_iam_units_and_time_order():
    style = style_of("cursive", seed=4)
    text = "Handwriting, quickly (and 42 times)!"
    line = render_line(text, style, np.random.default_rng(1))
    pts = line.points
    assert pts[-1, PEN_UP] == 1
    assert np.all(np.diff(line.times) >= 0) and line.times[0] == 0
    height = np.ptp(pts[:, 1])
    assert style.height * 0.8 < height < style.height * 3  # capitals, descenders and brackets
    assert np.ptp(pts[:, 0]) > 10 * style.height  # a line is many letters wide
    assert 15 <= len(pts) / len(text) <= 40  # IAM-OnDB has about 25 points per character


def test_cursive_joins_letters_and_lifts_between_words():
    script, upright = style_of("cursive"), style_of("rowmans")
    rng = np.random.default_rng
    joined = len(render_line("minimum", script, rng(0)).strokes())
    assert joined <= 3  # one stroke, plus the i-dots written after the word
    assert len(render_line("mini mum", script, rng(0)).strokes()) > len(render_line("minimum", script, rng(0)).strokes())
    assert len(render_line("minimum", upright, rng(0)).strokes()) > joined


def test_points_crowd_where_the_pen_turns():
    straight = np.column_stack([np.linspace(0, 1000, 50), np.zeros(50)])
    t = np.linspace(0, 6 * np.pi, 300)
    loops = np.column_stack([1000 + 30 * t + 60 * np.sin(t), 60 * np.cos(t) - 60])
    points = strokes_to_points([np.concatenate([straight, loops])])
    out, _ = resample(points, speed=2000.0, rate=100.0, bend=100.0)
    step = np.hypot(*np.diff(out[:, :2], axis=0).T)
    on_straight = step[(out[1:, 0] > 200) & (out[1:, 0] < 800)]
    in_loops = step[out[1:, 0] > 1100]
    assert on_straight.mean() > 2 * in_loops.mean()


def test_same_rng_same_line_and_different_rng_different_line():
    style = style_of("futural")
    a = render_line("same text", style, np.random.default_rng(7))
    b = render_line("same text", style, np.random.default_rng(7))
    c = render_line("same text", style, np.random.default_rng(8))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.times, b.times)
    assert a.points.shape != c.points.shape or not np.allclose(a.points, c.points)


# -- transforms (properties) --------------------------------------------------------

coords = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)


@st.composite
def point_sets(draw, min_len: int = 1):
    """``points`` (x, y, pen_up) of 1-6 strokes with ``min_len``-12 points each."""
    lengths = draw(st.lists(st.integers(min_len, 12), min_size=1, max_size=6))
    strokes = [draw(arrays(np.float64, (n, 2), elements=coords)) for n in lengths]
    return strokes_to_points(strokes)


def stroke_ends(points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(s[0], s[-1]) for s in points_to_strokes(points)]


@PROPERTY
@given(point_sets(), st.floats(-0.6, 0.6), st.floats(0.1, 10), st.floats(0.1, 10))
def test_slant_and_scale_keep_strokes_and_pen_lifts(points, slant, sx, sy):
    for matrix in (slant_matrix(slant), np.diag([sx, sy])):
        out = apply_linear(points, matrix)
        assert out.shape == points.shape
        assert np.array_equal(out[:, PEN_UP], points[:, PEN_UP])
        back = apply_linear(out, np.linalg.inv(matrix))
        np.testing.assert_allclose(back[:, :2], points[:, :2], atol=1e-6)


@PROPERTY
@given(point_sets(), st.integers(0, 4))
def test_smoothing_keeps_stroke_count_and_ends(points, iterations):
    out = smooth(points, iterations)
    assert len(points_to_strokes(out)) == len(points_to_strokes(points))
    for (a0, a1), (b0, b1) in zip(stroke_ends(points), stroke_ends(out)):
        np.testing.assert_array_equal(a0, b0)
        np.testing.assert_array_equal(a1, b1)


@PROPERTY
@given(point_sets(), st.floats(10, 5000), st.floats(20, 200), st.floats(0, 500))
def test_resampling_keeps_stroke_count_and_ends_and_ticks_evenly(points, speed, rate, bend):
    out, times = resample(points, speed, rate, bend)
    assert len(times) == len(out)
    assert len(points_to_strokes(out)) == len(points_to_strokes(points))
    for (a0, a1), (b0, b1) in zip(stroke_ends(points), stroke_ends(out)):
        np.testing.assert_array_equal(a0, b0)
        np.testing.assert_array_equal(a1, b1)
    ends = np.flatnonzero(out[:, PEN_UP]) + 1
    for a, b in zip(np.r_[0, ends[:-1]], ends):
        t = times[a:b]
        assert t[0] == 0 and np.all(np.diff(t) > 0)
        np.testing.assert_allclose(np.diff(t[:-1]), 1 / rate, rtol=1e-6)  # a tablet's clock, save the last tick


# -- the tree -----------------------------------------------------------------------


def test_same_seed_gives_byte_identical_trees_and_other_seeds_differ(corpus, tmp_path):
    again = tree_files(ensure_demo_corpus(tmp_path / "again", **SMALL))
    assert again == tree_files(corpus)
    other = tree_files(ensure_demo_corpus(tmp_path / "other", **{**SMALL, "seed": 4}))
    assert other.keys() & again.keys()
    assert all(other[name] != again[name] for name in other.keys() & again.keys() if name.startswith("lineStrokes"))


def test_the_tree_is_the_same_whether_one_process_writes_it_or_several(tmp_path):
    many = dict(lines=160, writers=3, seed=5)  # about 20 forms: three tasks
    assert len(plan_forms(DemoParams(**many))) > 2 * FORMS_PER_TASK
    alone = tree_files(ensure_demo_corpus(tmp_path / "one", jobs=1, **many))
    assert tree_files(ensure_demo_corpus(tmp_path / "three", jobs=3, **many)) == alone


def test_tree_has_the_iam_ondb_layout(corpus):
    params = DemoParams(**SMALL)
    assert json.loads((corpus / MARKER).read_text()) == {**SMALL, "generator": params.generator, "capitals": 0.0,
                                                         "numbers": 0.0, "hwkit_version": __version__}  # fmt: skip
    forms = plan_forms(params)
    assert sum(f.n_lines for f in forms) == SMALL["lines"]
    listed: dict[str, str] = {}
    for name in TASK_LISTS:
        for form_id in (corpus / name).read_text(encoding="iso-8859-1").split():
            assert form_id not in listed
            listed[form_id] = name
    writer_lists: dict[str, set[str]] = {}
    for form in forms:
        assert form.form_id.endswith("u") and form.folder == f"{form.form_id[:3]}/{form.form_id[:-1]}"
        ascii_text = (corpus / "ascii" / form.folder / f"{form.form_id}.txt").read_text(encoding="iso-8859-1")
        assert ascii_text.startswith("OCR:\n")
        csr = ascii_text.split("CSR:\n\n", 1)[1].splitlines()
        assert csr == form_texts(params.seed, form)
        stroke_files = sorted((corpus / "lineStrokes" / form.folder).glob(f"{form.form_id}-*.xml"))
        assert [p.name for p in stroke_files] == [f"{form.form_id}-{k:02d}.xml" for k in range(1, len(csr) + 1)]
        for path in stroke_files:
            root = ET.parse(path).getroot()
            assert root.tag == "WhiteboardCaptureSession"
            board = root.find("WhiteboardDescription")
            for tag in ("SensorLocation", "DiagonallyOppositeCoords", "VerticallyOppositeCoords", "HorizontallyOppositeCoords"):
                assert board.find(tag) is not None, tag
            strokes = root.find("StrokeSet").findall("Stroke")
            assert strokes and all(s.get("colour") == "black" for s in strokes)
            times = [float(p.get("time")) for s in strokes for p in s.findall("Point")]
            assert times == sorted(times)
            assert float(strokes[0].get("start_time")) == times[0] and float(strokes[-1].get("end_time")) == times[-1]
            assert all(int(p.get("x")) >= 0 and int(p.get("y")) >= 0 for s in strokes for p in s.findall("Point"))
        original = ET.parse(corpus / "original" / form.folder / "strokesu.xml").getroot()
        assert original.find("General/Form").get("writerID") == form.writer_id
        writer_lists.setdefault(form.writer_id, set()).add(listed.get(form.form_id, "none"))
    assert all(len(lists) == 1 for lists in writer_lists.values())  # each writer in one list
    assert "trainset.txt" in set().union(*writer_lists.values())


def test_existing_corpus_is_reused_and_other_params_regenerate(corpus, tmp_path):
    root = ensure_demo_corpus(tmp_path / "c", lines=12, writers=2)
    calls: list[dict] = []
    ensure_demo_corpus(root, lines=12, writers=2, progress=calls.append)
    assert calls == []
    ensure_demo_corpus(root, lines=14, writers=2, progress=calls.append)
    assert calls[0]["event"] == "note" and "replaced" in calls[0]["text"]  # said, not done silently
    assert calls[-1] == {"event": "lines", "done": 14, "total": 14}
    assert json.loads((root / MARKER).read_text())["lines"] == 14
    assert len(list((root / "lineStrokes").rglob("*.xml"))) == 14
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary folders left
    # a corpus from an older generator is made again, though its other parameters match
    marker = json.loads((root / MARKER).read_text())
    (root / MARKER).write_text(json.dumps({**marker, "generator": marker["generator"] - 1}))
    calls.clear()
    ensure_demo_corpus(root, lines=14, writers=2, progress=calls.append)
    assert calls and json.loads((root / MARKER).read_text()) == marker
    # a marker from before --capitals existed is a corpus without them; asking for capitals makes it again
    (root / MARKER).write_text(json.dumps({k: v for k, v in marker.items() if k != "capitals"}))
    calls.clear()
    ensure_demo_corpus(root, lines=14, writers=2, progress=calls.append)
    assert calls == []
    ensure_demo_corpus(root, lines=14, writers=2, capitals=0.5, progress=calls.append)
    assert calls and json.loads((root / MARKER).read_text())["capitals"] == 0.5


@pytest.mark.parametrize("share", [0.3, 1.0])
def test_capitals_drill_capitalises_words_and_leaves_them_otherwise_as_they_were(share):
    params = DemoParams(lines=400, writers=4)
    forms = plan_forms(params)
    plain = [t for f in forms for t in form_texts(params.seed, f)]
    drilled = [t for f in forms for t in form_texts(params.seed, f, share)]
    assert [t.lower() for t in drilled] == [t.lower() for t in plain]  # the same words, the same lines
    words = [(a, b) for p, d in zip(plain, drilled) for a, b in zip(p.split(" "), d.split(" ")) if a[0].islower()]
    changed = sum(a != b for a, b in words) / len(words)
    assert changed == 1.0 if share == 1.0 else abs(changed - share) < 0.05
    assert all(b == a[0].upper() + a[1:] for a, b in words if a != b)  # only the first letter changes
    assert [t for f in forms for t in form_texts(params.seed, f, 0.0)] == plain
    with pytest.raises(ValueError, match="share of words"):
        DemoParams(capitals=1.5)


@given(share=st.floats(0.05, 1.0), capitals=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_numbers_drill_writes_words_as_numbers_and_leaves_the_rest(share, capitals, seed):
    params = DemoParams(lines=120, writers=2, seed=seed)
    forms = plan_forms(params)
    plain = [t for f in forms for t in form_texts(seed, f, capitals)]
    drilled = [t for f in forms for t in form_texts(seed, f, capitals, share)]
    pairs = [(a, b) for p, d in zip(plain, drilled, strict=True) for a, b in zip(p.split(" "), d.split(" "), strict=True)]
    changed = [(a, b) for a, b in pairs if a != b]
    for a, b in changed:  # the word's letters became 1-4 digits; its punctuation stayed where it was
        core = b.strip(PUNCTUATION)
        assert core.isdigit() and 1 <= len(core) <= 4
        assert b.replace(core, a.strip(PUNCTUATION), 1) == a
    worded = [a for a, _ in pairs if a.strip(PUNCTUATION)]
    assert abs(len(changed) / len(worded) - share) < 0.12  # a sample of some 700 words
    digits = "".join(b.strip(PUNCTUATION) for _, b in changed)
    assert set(digits) <= set("0123456789")
    assert [t for f in forms for t in form_texts(seed, f, capitals, 0.0)] == plain
    with pytest.raises(ValueError, match="numbers is a share of words"):
        DemoParams(numbers=-0.1)


def test_numbers_drill_draws_every_digit_alike():
    params = DemoParams(lines=600, writers=4)
    digits = Counter(c for f in plan_forms(params) for t in form_texts(0, f, numbers=0.3) for c in t if c.isdigit())
    plain = Counter(c for f in plan_forms(params) for t in form_texts(0, f) for c in t if c.isdigit())
    assert sum(digits.values()) > 4 * sum(plain.values())
    assert max(digits.values()) < 1.4 * min(digits.values())  # the generator's own favour 1, 9 and 0 (years)


def test_interrupted_regeneration_leaves_the_old_corpus_whole(tmp_path):
    root = ensure_demo_corpus(tmp_path / "c", lines=8, writers=2)
    before = tree_files(root)

    def interrupt(event: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_demo_corpus(root, lines=20, writers=2, progress=interrupt)
    assert tree_files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_a_folder_that_is_not_a_demo_corpus_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="not a demo corpus"):
        ensure_demo_corpus(tmp_path / "mine", lines=4, writers=1)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(CorpusError, match="at least one line"):
        ensure_demo_corpus(tmp_path / "empty", lines=0)


def test_prepare_reads_the_demo_tree_with_nothing_skipped(corpus, tmp_path):
    prepare = pytest.importorskip("hwkit.prepare")
    from hwkit.store import Store

    report = prepare.prepare_corpus(corpus, tmp_path / "demo.h5", jobs=1)
    assert report.skipped == [] and report.source == "demo"
    store = Store(tmp_path / "demo.h5")
    params = DemoParams(**SMALL)
    expected = {}
    for form in plan_forms(params):
        for k, text in enumerate(form_texts(params.seed, form)):
            expected[f"{form.form_id}-{k + 1:02d}"] = (text, int(form.writer_id))
    assert len(store) == SMALL["lines"] and store.source == "demo"
    got = {i: (t, int(w)) for i, t, w in zip(store.line_ids, store.texts, store.writer_ids)}
    assert got == expected
    assert all(len(store.split(name)) for name in ("train", "valid", "test"))


def test_half_written_corpora_of_killed_generations_are_cleared(tmp_path):
    import os
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)  # fmt: skip
    stale = tmp_path / f".c-{dead}-abc.partial"
    live = tmp_path / f".c-{os.getppid()}-def.partial"  # another generation still running
    for folder in (stale, live):
        (folder / "lineStrokes").mkdir(parents=True)
    ensure_demo_corpus(tmp_path / "c", lines=4, writers=2)
    assert not stale.exists() and live.exists()
