"""Finding and parsing IAM-OnDB files: the fast numpy path, the expat path, and every skip reason."""

from __future__ import annotations

import io
import tarfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit import iam
from hwkit.errors import CorpusError
from hwkit.strokes import strokes_to_points
from iamtree import BOMB, stroke_xml, write_tree

SETTINGS = settings(max_examples=60, deadline=None)
OPS, EDITS = ("insert", "delete", "replace"), list('<>"/= xy-.1&!?')  # edits, in bytes that matter to parsers


def reference(xml: str) -> np.ndarray:
    """What any correct parser must return: ElementTree, a loop per point, ``float()``."""
    root = ET.fromstring(xml.encode("iso-8859-1"))
    strokes = [[(float(p.get("x")), float(p.get("y"))) for p in s.iter("Point")] for s in root.iter("Stroke")]
    return strokes_to_points([np.array(s).reshape(-1, 2) for s in strokes])


def numbers(draw_decimals: bool):
    ints = st.integers(-(10**9), 10**9).map(str)
    if not draw_decimals:
        return ints
    decimals = st.tuples(st.integers(-(10**7), 10**7), st.integers(0, 9999), st.sampled_from([1, 2, 4])).map(
        lambda t: f"{t[0]}.{t[1] % 10 ** t[2]:0{t[2]}d}"
    )
    return st.one_of(ints, decimals, st.integers(0, 99).map(lambda v: f"-0.{v:02d}"))


@st.composite
def stroke_files(draw, decimals: bool = True) -> str:
    """Canonical stroke files with coordinates written as arbitrary numeric strings."""
    point = st.tuples(numbers(decimals), numbers(decimals))
    strokes = draw(st.lists(st.lists(point, max_size=12), min_size=1, max_size=5))
    body = "".join(
        '    <Stroke colour="black" start_time="1.0" end_time="2.0">\n'
        + "".join(f'      <Point x="{x}" y="{y}" time="1.5"/>\n' for x, y in s)
        + "    </Stroke>\n"
        for s in strokes
    )
    return stroke_xml([]).replace("  </StrokeSet>", body + "  </StrokeSet>")


def parse_one(xml: str | bytes):
    return iam.parse_strokes([xml.encode("iso-8859-1") if isinstance(xml, str) else xml])[0]


@SETTINGS
@given(st.lists(stroke_files(), min_size=1, max_size=6))
def test_fast_path_matches_elementtree_exactly(files):
    results = iam.parse_strokes([f.encode() for f in files])
    for xml, result in zip(files, results):
        expected = reference(xml)
        if len(expected) == 0:
            assert result == iam.EMPTY_STROKES
        else:
            assert isinstance(result, np.ndarray)
            np.testing.assert_array_equal(result, expected)


@SETTINGS
@given(stroke_files(decimals=False))
def test_expat_path_agrees_with_fast_path(xml):
    expected = reference(xml)
    # a character reference sends the file to expat; an unused attribute holding one changes nothing
    variant = xml.replace('colour="black"', 'colour="bl&#97;ck"')
    for result in (parse_one(xml), parse_one(variant)):
        if len(expected):
            np.testing.assert_array_equal(result, expected)
        else:
            assert result == iam.EMPTY_STROKES


def test_batch_isolates_broken_files():
    """A broken file in a chunk must not disturb the parse of its neighbours."""
    rng = np.random.default_rng(1)
    good = [stroke_xml([rng.integers(0, 999, size=(n, 2)) for n in (5, 9)]) for _ in range(4)]
    broken = [
        good[0][:200],  # truncated
        good[1].replace("</Stroke>", "</Strok>", 1),  # mismatched tag
        good[2].replace('<Point x="', '<Point x="<', 1),  # unbalanced < >
        good[3].replace('" y="', '"  y="', 1),  # unusual spacing: still valid
        good[0].replace("<Point ", "<Point\n", 1),  # still valid
        good[1].replace('"/>', '">', 1),  # Point left open
    ]
    files = [good[0], broken[0], good[1], broken[1], good[2], broken[2], good[3], broken[3], broken[4], broken[5]]
    results = iam.parse_strokes([f.encode() for f in files])
    assert [r if isinstance(r, str) else "ok" for r in results] == [
        "ok", iam.MALFORMED, "ok", iam.MALFORMED, "ok", iam.MALFORMED, "ok", "ok", "ok", iam.MALFORMED,
    ]
    for xml, result in zip(files, results):
        if not isinstance(result, str):
            np.testing.assert_array_equal(result, reference(xml))


def test_unusual_but_valid_files_parse_like_canonical_ones():
    strokes = [np.array([[10, 20], [11, 22], [15, 25]]), np.array([[-3, 4]])]
    canonical = parse_one(stroke_xml(strokes))
    unusual = stroke_xml(strokes, unusual=True)  # single quotes, y before x, comments holding a <Point
    crlf = stroke_xml(strokes).replace("\n", "\r\n")
    for variant in (unusual, crlf):
        np.testing.assert_array_equal(parse_one(variant), canonical)
    np.testing.assert_array_equal(canonical, strokes_to_points(strokes))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(stroke_files(decimals=False), min_size=1, max_size=4),
    st.lists(st.tuples(st.floats(0, 1), st.sampled_from(OPS), st.sampled_from(EDITS)), max_size=4),
)
def test_mutated_files_never_crash_and_agree_with_expat(files, edits):
    """Whatever the bytes, the fast path either defers to expat or returns what expat would."""
    mutated = []
    for k, xml in enumerate(files):
        data = bytearray(xml.encode())
        for where, op, ch in edits if k % 2 == 0 else ():
            i = int(where * (len(data) - 1))
            if op == "insert":
                data[i:i] = ch.encode()
            elif op == "delete":
                del data[i]
            else:
                data[i : i + 1] = ch.encode()
        mutated.append(bytes(data))
    for data, result in zip(mutated, iam.parse_strokes(mutated)):
        try:
            strict = iam._parse_expat(data)
        except iam.Skip as skip:
            strict = skip.reason
        if not isinstance(strict, str):  # a valid file: read exactly as expat reads it
            expected = strict if len(strict) else iam.EMPTY_STROKES
            assert isinstance(result, str) == isinstance(expected, str)
            np.testing.assert_array_equal(result, expected)
        elif isinstance(result, str) and result != iam.EMPTY_STROKES:  # reasons come from expat
            assert result == strict
        # else: the fast path may accept a flaw in what it never reads (a stray quote in a Stroke
        # tag, say); the points it returns are still the ones the file holds


@settings(max_examples=40, deadline=None)
@given(stroke_files(decimals=False), st.floats(0, 1))
def test_any_truncation_is_malformed(xml, where):
    cut = int(where * (len(xml.rstrip()) - 1))
    assert parse_one(xml[:cut]) == iam.MALFORMED


@pytest.mark.parametrize(
    "prolog",
    [
        BOMB,  # billion laughs: expanding it would take gigabytes
        '<?xml version="1.0"?>\n<!DOCTYPE WhiteboardCaptureSession SYSTEM "http://example.invalid/x.dtd">\n',
        '<?xml version="1.0"?>\n<!DOCTYPE WhiteboardCaptureSession [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n',
    ],
)
def test_entity_declarations_are_refused_never_expanded(prolog):
    body = stroke_xml([np.array([[1, 2], [3, 4]])], head_attrs=' note="&lol9;"').split("\n", 1)[1]
    assert parse_one(prolog + body) == iam.ENTITY
    # the same in UTF-16, which no byte search sees: expat's DOCTYPE handler refuses it
    undeclared = prolog.split("\n", 1)[1] + body  # no encoding declaration: expat goes by the BOM
    assert parse_one(undeclared.encode("utf-16")) == iam.ENTITY


@pytest.mark.parametrize("value", ["abc", "", "nan", "inf", "1e", "--1", "1.2.3", "0x10"])
def test_bad_coordinates(value):
    xml = stroke_xml([np.array([[1, 2], [3, 4]])]).replace('x="3"', f'x="{value}"')
    assert parse_one(xml) == iam.BAD_COORDINATES


def test_missing_coordinate_and_unusual_numbers():
    assert parse_one(stroke_xml([np.array([[1, 2]])]).replace(' y="2"', "")) == iam.BAD_COORDINATES
    # what float() accepts, the expat path accepts too
    xml = stroke_xml([np.array([[1, 2]])]).replace('x="1"', 'x="1e3"').replace('y="2"', 'y=" +7 "')
    np.testing.assert_array_equal(parse_one(xml), [[1000.0, 7.0, 1.0]])


def test_empty_and_foreign_files():
    assert parse_one(stroke_xml([])) == iam.EMPTY_STROKES
    assert parse_one(stroke_xml([np.zeros((0, 2))])) == iam.EMPTY_STROKES
    assert parse_one(stroke_xml([]).replace("<StrokeSet>\n  </StrokeSet>", "<StrokeSet/>")) == iam.EMPTY_STROKES
    assert parse_one('<?xml version="1.0"?>\n<html><body/></html>\n') == iam.NOT_STROKE_FILE
    assert parse_one(b"\x00\x01\x02 binary") == iam.MALFORMED
    assert parse_one(b"") == iam.MALFORMED
    assert parse_one(stroke_xml([]).replace("ISO-8859-1", "SO-8859-1")) == iam.MALFORMED  # unknown encoding


def test_transcriptions_latin1_and_layout():
    text = "OCR:\r\n\r\nSOME PROMPT\r\n\r\nCSR:\r\n\r\nCafé naïve\r\n  \r\nZürich  \r\n\r\n\r\n"
    assert iam.parse_transcriptions(text.encode("iso-8859-1")) == ["Café naïve", "", "Zürich"]
    assert iam.parse_transcriptions(b"OCR:\n\nonly ocr\n") is None
    assert iam.parse_transcriptions(b"CSR:\n") == []


def test_writer_from_original_head():
    assert iam.parse_writer(b'<WhiteboardCaptureSession><General><Form id="a" writerID="10077"/>') == 10077
    assert iam.parse_writer(b'<Form\n  id="a01-000u"\n  writerID = "7" Camera="no">') == 7
    assert iam.parse_writer(b"<General><Form id='a'/></General>") == -1
    with pytest.raises(iam.Skip) as raised:
        iam.parse_writer(BOMB.encode() + b'<Form writerID="1"/>')
    assert raised.value.reason == iam.ENTITY


def test_names():
    assert iam.stroke_name("lineStrokes/a01/a01-000/a01-000u-01.xml") == ("a01-000u-01", "a01-000u", 1)
    assert iam.stroke_name("lineStrokes/h02/h02-037/h02-037-12.xml") == ("h02-037-12", "h02-037", 12)
    for bad in ("lineStrokes/a01/README.txt", "lineStrokes/a01/a01-000/a01-000u.xml", "x/a-00.xml", "x/-01.xml"):
        assert iam.stroke_name(bad) is None
    assert iam.original_form_id("original/a01/a01-000/strokesu.xml") == "a01-000u"
    assert iam.original_form_id("original/h02/h02-037/strokes.xml") == "h02-037"
    assert iam.original_form_id("original/a01/a01-000/notes.txt") is None


def test_find_corpus_folders_archives_and_errors(tmp_path):
    tree = write_tree(tmp_path / "dirs", task_lists={"task1/trainset": ["x"], "testset_v": ["y"]})
    corpus = iam.find_corpus(tree.root)
    assert not corpus.strokes.archived and not corpus.ascii.archived and corpus.original is not None
    assert set(corpus.task_lists) == {"trainset", "testset_v"} and not corpus.demo
    packed = iam.find_corpus(write_tree(tmp_path / "tars", archives=True, originals=False, demo=True).root)
    assert packed.strokes.archived and packed.ascii.archived and packed.original is None and packed.demo

    with pytest.raises(CorpusError, match="no such folder"):
        iam.find_corpus(tmp_path / "missing")
    for name in ("afile.txt", "lineStrokes-all.tar.gz"):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(CorpusError, match=rf"{name} is a file; give the folder that holds lineStrokes-all"):
            iam.find_corpus(tmp_path / name)
    (tmp_path / "half" / "lineStrokes").mkdir(parents=True)
    with pytest.raises(CorpusError, match=r"half: not an IAM-OnDB root \(no ascii/ or ascii-all.tar.gz\)"):
        iam.find_corpus(tmp_path / "half")


def test_fingerprint_follows_the_files(tmp_path):
    corpus = iam.find_corpus(write_tree(tmp_path).root)
    before = corpus.fingerprint()
    assert corpus.fingerprint() == before
    path = next((tmp_path / "ascii").rglob("*.txt"))
    path.write_bytes(path.read_bytes() + b"more\n")
    assert corpus.fingerprint() != before


def test_truncated_archive_keeps_what_it_can(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(40):
            data = np.random.default_rng(i).bytes(4000)  # incompressible, so the cut lands mid-way
            info = tarfile.TarInfo(f"ascii/a01/f{i:02d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "ascii-all.tar.gz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    skipped = iam.Skips()
    members = list(iam.iter_part(iam.Part("ascii", tmp_path / "ascii-all.tar.gz", archived=True), skipped))
    assert 5 < len(members) < 40
    assert [m[0] for m in members] == [f"ascii/a01/f{i:02d}.txt" for i in range(len(members))]
    assert skipped == [("ascii-all.tar.gz", iam.TRUNCATED)]


def test_junk_archive_is_unreadable_not_truncated(tmp_path):
    (tmp_path / "ascii-all.tar.gz").write_bytes(b"<html>not found</html>" * 20)
    skipped = iam.Skips()
    assert list(iam.iter_part(iam.Part("ascii", tmp_path / "ascii-all.tar.gz", archived=True), skipped)) == []
    assert skipped == [("ascii-all.tar.gz", iam.UNREADABLE_ARCHIVE)]


def test_a_multi_byte_encoding_declaration_is_malformed_not_a_crash():
    data = b'<?xml version="1.0" encoding="UTF-7"?><WhiteboardCaptureSession/>'
    assert iam.parse_strokes([data]) == [iam.MALFORMED]


@pytest.mark.parametrize("byte", [b"\x85", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e"])
def test_a_stray_line_break_byte_in_a_transcription_never_shifts_the_lines_after_it(byte):
    data = b"OCR:\n\nsomething\n\nCSR:\n\nfirst " + byte + b" line\r\nsecond line\nthird line\n"
    lines = iam.parse_transcriptions(data)
    assert len(lines) == 3 and lines[1:] == ["second line", "third line"]
    assert lines[0].startswith("first") and lines[0].endswith("line")
