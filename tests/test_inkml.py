"""InkML in and out: the fixture files, the trace grammar, contexts and units, every skip reason,
safe XML, and the write -> parse round trip."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwkit import inkml
from hwkit.inkml import InkLine, Skipped, parse_inkml, write_inkml
from hwkit.strokes import offsets_to_points

FIXTURES = Path(__file__).parent / "fixtures" / "inkml"
NS = 'xmlns="http://www.w3.org/2003/InkML"'


def fixture(name: str, **kwargs) -> list[InkLine | Skipped]:
    return parse_inkml((FIXTURES / name).read_bytes(), name, **kwargs)


def doc(body: str, head: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}<ink {NS}>\n{body}\n</ink>\n'.encode()


def one(body: str, **kwargs) -> InkLine | Skipped:
    """The single result of a document ``body`` (its traces under a top-level transcription)."""
    results = parse_inkml(doc('<annotation type="truth">t</annotation>\n' + body), "x.inkml", **kwargs)
    assert len(results) == 1
    return results[0]


def xy(result: InkLine | Skipped) -> list[list[float]]:
    assert isinstance(result, InkLine), result
    return result.points[:, :2].tolist()


def pen(result: InkLine) -> list[float]:
    return result.points[:, 2].tolist()


def summary(results: list[InkLine | Skipped]) -> list[tuple[str, str]]:
    """``(id, text)`` for a line, ``(id, "skip: reason")`` for a skip."""
    return [(r.line_id, r.text if isinstance(r, InkLine) else f"skip: {r.reason}") for r in results]


# -- the fixture files -------------------------------------------------------------


def test_one_line_file_with_namespace_and_truth():
    [line] = fixture("one_line.inkml")
    assert (line.line_id, line.text) == ("one_line", "Fish & chips")  # id from the stem, entity of XML decoded
    assert xy(line) == [[10, 20], [12, 24], [15, 29], [30, 20], [31, 21]]
    assert pen(line) == [0, 0, 1, 0, 1]
    offsets = line.offsets
    assert offsets.dtype == np.float32 and offsets.shape == (5, 3)
    assert offsets[0].tolist() == [0, 0, 0] and offsets[3].tolist() == [15, -9, 0]
    np.testing.assert_array_equal(offsets_to_points(offsets, origin=line.points[0, :2]), line.points)


def test_channels_in_a_non_default_order():
    [line] = fixture("channels_tyxf.inkml")  # T Y X F, no namespace, format placed directly in <ink>
    assert line.text == "ok"
    assert xy(line) == [[10, 20], [11, 22.5], [12.25, 25], [30, 21], [31.5, 23]]
    assert pen(line) == [0, 0, 1, 0, 1]


def test_crohme_style_groups_refer_to_top_level_traces():
    results = fixture("crohme_style.inkml")
    assert summary(results) == [
        ("crohme_style-01", "a"),
        ("crohme_style-02", "+"),
        ("crohme_style-03", f"skip: {inkml.NO_TRANSCRIPTION}"),  # the group without an annotation
        ("crohme_style-04", "b"),
    ]
    # traceDataRef with and without "#"; the strokes in the order the group names them
    assert xy(results[1]) == [[10, 5], [14, 5], [12, 3], [12, 7]]
    assert pen(results[1]) == [0, 1, 0, 1]
    # neither the file's "$a+b$" nor the container's "Segmentation" became a line, nor did MathML ids
    assert xy(results[0]) == [[0, 0], [1, 1], [2, 0]] and xy(results[3]) == [[20, 0], [20, 6], [22, 5]]


def test_difference_coded_traces():
    [line] = fixture("differences.inkml")
    expected = [[10, 20], [11, 22], [13, 23], [15, 24], [50, 60]]
    assert xy(line) == expected + expected  # spaced out and run together read the same
    assert pen(line) == [0, 0, 0, 0, 1] * 2


def test_ink_source_resolution_converts_to_millimetres():
    [line] = fixture("resolution.inkml")  # 1000 values per cm, F ignored
    assert line.text == "mm"
    assert xy(line) == [[10, 20], [15, 20], [15, 22.5]]


def test_iamondo_style_nested_views():
    words = fixture("iamondo_style.inkml")
    assert summary(words) == [
        ("iamondo_style-01", "to"),
        ("iamondo_style-02", "be"),
        ("iamondo_style-03", f"skip: {inkml.NO_TRANSCRIPTION}"),  # the drawing
    ]  # and the raw-data group, all of it referred to, is not reported as unannotated ink
    assert xy(words[0]) == [[100, 200], [102, 201], [105, 202], [110, 201], [111, 202]]
    lines = fixture("iamondo_style.inkml", group_type="Textline")
    assert summary(lines) == [
        ("iamondo_style-01", "to be"),
        ("iamondo_style-02", f"skip: {inkml.OTHER_TYPE}"),
    ]
    assert xy(lines[0]) == xy(words[0]) + xy(words[1])
    assert pen(lines[0]) == [0, 0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("no_traces.inkml", [("no_traces", f"skip: {inkml.NO_TRACES}")]),
        ("malformed.inkml", [("malformed", f"skip: {inkml.MALFORMED}")]),
        (
            "channel_mismatch.inkml",
            [("channel_mismatch-01", "good"), ("channel_mismatch-02", f"skip: {inkml.CHANNEL_MISMATCH}"),
             ("channel_mismatch-03", "also good")],
        ),
        ("non_numeric.inkml", [("non_numeric-01", f"skip: {inkml.NON_NUMERIC}"), ("non_numeric-02", "fine")]),
    ],
)  # fmt: skip
def test_broken_files_and_groups(name, expected):
    assert summary(fixture(name)) == expected


def test_entity_bomb_is_refused_fast_and_never_expanded():
    data = (FIXTURES / "entity_bomb.inkml").read_bytes()
    assert b'<!ENTITY lol9 "&lol8;&lol8;' in data and b"&lol9;</annotation>" in data
    start = time.perf_counter()
    assert fixture("entity_bomb.inkml") == [Skipped("entity_bomb", inkml.ENTITY)]
    assert time.perf_counter() - start < 0.5
    # not expat's own amplification guard (that would read as malformed xml): refused at the DOCTYPE,
    # also where no byte search could see it
    undeclared = data.decode().split("\n", 1)[1]
    assert parse_inkml(undeclared.encode("utf-16"), "b.inkml") == [Skipped("b", inkml.ENTITY)]


@pytest.mark.parametrize(
    "head",
    [
        '<!DOCTYPE ink SYSTEM "http://example.invalid/inkml.dtd">\n',
        '<!DOCTYPE ink [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n',
        "<!DOCTYPE ink>\n",
    ],
)
def test_any_dtd_is_refused(head):
    assert parse_inkml(doc('<annotation type="truth">&e;</annotation><trace>0 0</trace>', head), "d") == [
        Skipped("d", inkml.ENTITY)
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01 binary",
        b"<ink><trace>0 0</trace>",
        b'<?xml version="1.0" encoding="no-such-encoding"?><ink/>',
        b'<?xml version="1.0" encoding="UTF-7"?><ink/>',  # expat raises ValueError for it
        b"<ink>&undeclared;</ink>",
        b"<inkml:ink><inkml:trace>0 0</inkml:trace></inkml:ink>",  # unbound prefix
    ],
)
def test_malformed_xml(data):
    assert parse_inkml(data, "m.inkml") == [Skipped("m", inkml.MALFORMED)]


def test_roots_and_namespaces():
    body = '<inkml:annotation type="truth">p</inkml:annotation><inkml:trace>1 2, 3 4</inkml:trace>'
    prefixed = f'<inkml:ink xmlns:inkml="http://www.w3.org/2003/InkML">{body}</inkml:ink>'.encode()
    assert xy(parse_inkml(prefixed, "p.inkml")[0]) == [[1, 2], [3, 4]]
    for data in (b"<svg><trace>1 2</trace></svg>", b'<ink xmlns="urn:not-inkml"><trace>1 2</trace></ink>'):
        assert parse_inkml(data, "n.inkml") == [Skipped("n", inkml.NOT_INKML)]
    # elements of other namespaces inside ink are not ink
    foreign = doc('<annotation type="truth">f</annotation><trace>1 2</trace><o:trace xmlns:o="urn:o">9 9</o:trace>')
    assert xy(parse_inkml(foreign, "f")[0]) == [[1, 2]]


# -- the trace grammar -------------------------------------------------------------


@pytest.mark.parametrize(
    "trace, expected",
    [
        ("1 2, 3 4,", [[1, 2], [3, 4]]),  # a trailing comma is tolerated
        ("1e1 -2.5, .5 3.", [[10, -2.5], [0.5, 3]]),
        ("3-5,4-6", [[3, -5], [4, -6]]),  # run together where a sign separates them
        ("+5 3", [[5, 3]]),
        ("0 0, '1 5, 2 6", [[0, 0], [1, 5], [3, 6]]),  # a prefix sticks to its own channel only
        ("0 0, '1 '1, \"1 \"0, 0 0, '0 '-1", [[0, 0], [1, 1], [3, 2], [5, 3], [5, 2]]),
        ("\n  7\t8 ,\n 9 10\n", [[7, 8], [9, 10]]),
    ],
)
def test_trace_values(trace, expected):
    assert xy(one(f"<trace>{trace}</trace>")) == expected


@pytest.mark.parametrize(
    "trace, reason",
    [
        ("1 2 3", inkml.CHANNEL_MISMATCH),
        ("1 2, 3", inkml.CHANNEL_MISMATCH),
        ("1 2,, 3 4", inkml.CHANNEL_MISMATCH),
        ("'1 2", inkml.BAD_DIFFERENCE),  # a difference from nothing
        ('1 2, "1 "1', inkml.BAD_DIFFERENCE),  # a second difference needs a first one
        ("1 nan", inkml.NON_NUMERIC),
        ("1 inf", inkml.NON_NUMERIC),
        ("1 1e999", inkml.NON_NUMERIC),
        ("1 *", inkml.NON_NUMERIC),
        ("1 T", inkml.NON_NUMERIC),
        ("1 0x10", inkml.NON_NUMERIC),
        ("1 2.3.", inkml.NON_NUMERIC),  # 2.3, then a dot that is no number
        ("1 1_0", inkml.NON_NUMERIC),
        ("1 -", inkml.NON_NUMERIC),
    ],
)
def test_bad_trace_values(trace, reason):
    assert one(f"<trace>{trace}</trace>") == Skipped("x", reason)


def test_other_channels_take_booleans_wildcards_and_may_be_intermittent():
    fmt = """<traceFormat><channel name="X"/><channel name="Y"/><channel name="S" type="boolean"/>
             <intermittentChannels><channel name="F"/></intermittentChannels></traceFormat>"""
    assert xy(one(fmt + "<trace>1 2 T 0.5, 3 4 *, 5 6 F ?</trace>")) == [[1, 2], [3, 4], [5, 6]]
    assert one(fmt + "<trace>1 2 T 0.5 9</trace>") == Skipped("x", inkml.CHANNEL_MISMATCH)
    assert one(fmt + "<trace>1 2</trace>") == Skipped("x", inkml.CHANNEL_MISMATCH)  # S is regular
    intermittent_y = '<traceFormat><channel name="X"/><intermittentChannels><channel name="Y"/>'
    intermittent_y += "</intermittentChannels></traceFormat>"
    assert one(intermittent_y + "<trace>1 2</trace>") == Skipped("x", inkml.NO_XY)
    assert one('<traceFormat><channel name="X"/><channel name="T"/></traceFormat><trace>1 2</trace>') == Skipped(
        "x", inkml.NO_XY
    )


def test_pen_up_traces_are_not_ink():
    line = one(
        '<trace>0 0, 1 1</trace><trace type="penUp">1 1, 5 5</trace><trace type="indeterminate">5 5, 6 6</trace>'
    )
    assert xy(line) == [[0, 0], [1, 1], [5, 5], [6, 6]]
    assert one('<trace type="penUp">1 1, 5 5</trace>') == Skipped("x", inkml.NO_TRACES)


# -- contexts, references and units ------------------------------------------------


def test_contexts_by_reference_and_in_document_order():
    defs = """<definitions>
      <traceFormat xml:id="yx"><channel name="Y"/><channel name="X"/></traceFormat>
      <context xml:id="c1" traceFormatRef="#yx"/>
      <context xml:id="c2" contextRef="#c1"/>
    </definitions>"""
    line = one(
        defs
        + "<trace>1 2</trace>"  # default X Y
        + '<trace contextRef="#c2">1 2</trace>'  # inherited through c2 -> c1 -> yx
        + '<context traceFormatRef="#yx"/><trace>3 4</trace>'  # a top-level context: for what follows
        + '<trace contextRef="#DefaultContext">3 4</trace>'  # the reserved default
    )
    assert xy(line) == [[1, 2], [2, 1], [4, 3], [3, 4]]
    # a group's context holds for its traces, unless a trace names its own
    group = '<traceGroup contextRef="#c1"><annotation type="truth">g</annotation><trace>1 2</trace>'
    group += '<trace contextRef="#DefaultContext">1 2</trace></traceGroup>'
    assert xy(parse_inkml(doc(defs + group), "g")[0]) == [[2, 1], [1, 2]]


@pytest.mark.parametrize(
    "body",
    [
        '<trace contextRef="#nowhere">1 2</trace>',
        '<trace contextRef="other.inkml#c">1 2</trace>',
        (
            '<definitions><context xml:id="a" contextRef="#b"/><context xml:id="b" contextRef="#a"/></definitions>'
            '<trace contextRef="#a">1 2</trace>'
        ),
        '<definitions><context xml:id="c" traceFormatRef="#none"/></definitions><trace contextRef="#c">1 2</trace>',
        '<definitions><trace xml:id="t">1 2</trace></definitions><trace contextRef="#t">1 2</trace>',  # not a context
    ],
)
def test_unresolved_references(body):
    assert one(body) == Skipped("x", inkml.UNRESOLVED)


def test_trace_views_resolve_traces_groups_and_views_but_not_ranges():
    body = """<definitions><trace xml:id="d">9 9</trace></definitions>
      <traceGroup xml:id="raw"><trace xml:id="a">1 1</trace><trace xml:id="b">2 2</trace></traceGroup>
      <traceView xml:id="va" traceDataRef="#a"/>
      <traceGroup><annotation type="truth">group ref</annotation><traceView traceDataRef="#raw"/></traceGroup>
      <traceGroup><annotation type="truth">view ref</annotation><traceView traceDataRef="#va"/></traceGroup>
      <traceGroup><annotation type="truth">defined</annotation><traceView traceDataRef="d"/></traceGroup>
      <traceGroup><annotation type="truth">twice</annotation><traceView traceDataRef="#a"/>
        <traceView traceDataRef="#a"/></traceGroup>
      <traceGroup><annotation type="truth">missing</annotation><traceView traceDataRef="#zz"/></traceGroup>
      <traceGroup><annotation type="truth">range</annotation><traceView traceDataRef="#a" from="1" to="1"/>
      </traceGroup>"""
    results = parse_inkml(doc(body), "v.inkml")
    assert summary(results) == [
        ("v-01", "group ref"),
        ("v-02", "view ref"),
        ("v-03", "defined"),
        ("v-04", "twice"),
        ("v-05", f"skip: {inkml.UNRESOLVED}"),
        ("v-06", f"skip: {inkml.UNSUPPORTED}"),
    ]  # "raw" is all referred to, and the top-level view "va" as well: neither is reported
    assert [xy(r) for r in results[:4]] == [[[1, 1], [2, 2]], [[1, 1]], [[9, 9]], [[1, 1]]]


def test_view_cycles_are_unresolved():
    body = """<traceView xml:id="p" traceDataRef="#q"/><traceView xml:id="q" traceDataRef="#p"/>
      <traceGroup><annotation type="truth">loop</annotation><traceView traceDataRef="#p"/></traceGroup>"""
    assert summary(parse_inkml(doc(body), "c")) == [("c", f"skip: {inkml.UNRESOLVED}")]


@pytest.mark.parametrize(
    "channels, source, expected",
    [
        ('<channel name="X" units="cm"/><channel name="Y" units="mm"/>', "", [[10, 3], [20, 4]]),
        ('<channel name="X" units="in"/><channel name="Y" units="in"/>', "", [[25.4, 76.2], [50.8, 101.6]]),
        ('<channel name="X"/><channel name="Y"/>', ("X", "0.1", "mm", "Y", "0.1", "mm"), [[0.1, 0.3], [0.2, 0.4]]),
        ('<channel name="X"/><channel name="Y"/>', ("X", "254", "1/in", "Y", "10", "1/mm"), [[0.1, 0.3], [0.2, 0.4]]),
        # one axis only, or a resolution that cannot be read: raw units on both, never a distorted mix
        ('<channel name="X" units="cm"/><channel name="Y"/>', "", [[1, 3], [2, 4]]),
        ('<channel name="X"/><channel name="Y"/>', ("X", "100", "1/cm", "Y", "100", "1/dev"), [[1, 3], [2, 4]]),
        ('<channel name="X"/><channel name="Y"/>', ("X", "0", "1/cm", "Y", "100", "1/cm"), [[1, 3], [2, 4]]),
        ('<channel name="X"/><channel name="Y"/>', ("X", "lots", "1/cm", "Y", "100", "1/cm"), [[1, 3], [2, 4]]),
        # channel units win over a resolution; -ve orientation makes y grow downward again
        ('<channel name="X" units="mm"/><channel name="Y" units="mm"/>', ("X", "9", "1/mm", "Y", "9", "1/mm"),
         [[1, 3], [2, 4]]),
        ('<channel name="X"/><channel name="Y" orientation="-ve"/>', "", [[1, -3], [2, -4]]),
    ],
)  # fmt: skip
def test_units(channels, source, expected):
    properties = "".join(
        f'<channelProperty channel="{source[i]}" name="resolution" value="{source[i + 1]}" units="{source[i + 2]}"/>'
        for i in range(0, len(source), 3)
    )
    ink_source = f"<inkSource xml:id='s'><channelProperties>{properties}</channelProperties></inkSource>"
    body = f"<context>{ink_source if source else ''}<traceFormat>{channels}</traceFormat></context>"
    np.testing.assert_allclose(xy(one(body + "<trace>1 3, 2 4</trace>")), expected, rtol=1e-12)


# -- which groups are lines --------------------------------------------------------


def test_nested_groups_the_innermost_transcribed_one_is_the_line():
    body = """<traceGroup><annotation type="truth">word</annotation>
        <traceGroup><trace>0 0</trace></traceGroup><traceGroup><trace>1 1</trace></traceGroup>
      </traceGroup>
      <traceGroup><annotation type="truth">container</annotation>
        <trace>7 7</trace>
        <traceGroup><annotation type="truth">inner</annotation><trace>2 2</trace></traceGroup>
        <traceGroup><annotation type="truth">empty</annotation></traceGroup>
        <traceGroup><annotation type="truth">  spaced out \n</annotation><trace>3 3</trace></traceGroup>
        <traceGroup><annotation type="truth"></annotation><trace>4 4</trace></traceGroup>
      </traceGroup>
      <trace>8 8</trace>"""
    results = parse_inkml(doc('<annotation type="truth">file</annotation>' + body), "n.inkml")
    assert summary(results) == [
        ("n-01", f"skip: {inkml.NO_TRANSCRIPTION}"),  # the loose top-level trace
        ("n-02", "word"),  # unannotated groups inside a transcribed one are part of it
        ("n-03", f"skip: {inkml.NO_TRANSCRIPTION}"),  # ink of the container outside its parts
        ("n-04", "inner"),
        ("n-05", f"skip: {inkml.NO_TRACES}"),
        ("n-06", "spaced out"),
        ("n-07", ""),  # an empty transcription is still a line: the caller judges empty texts
    ]
    assert xy(results[1]) == [[0, 0], [1, 1]] and pen(results[1]) == [1, 1]


def test_the_files_transcription_covers_unlabelled_groups():
    body = '<annotation type="truth">whole</annotation><traceGroup><trace>0 0</trace></traceGroup>'
    body += "<traceGroup><trace>1 1</trace></traceGroup><trace>2 2</trace>"
    [line] = parse_inkml(doc(body), "w.inkml")
    assert (line.line_id, line.text, xy(line)) == ("w", "whole", [[0, 0], [1, 1], [2, 2]])  # in document order
    assert parse_inkml(doc("<traceGroup/>"), "e") == [Skipped("e", inkml.NO_TRACES)]
    assert parse_inkml(doc("<trace>0 0</trace>"), "u") == [Skipped("u", inkml.NO_TRANSCRIPTION)]


def test_ids_are_zero_padded_to_sort_in_file_order():
    groups = "".join(f'<traceGroup><annotation type="truth">{k}</annotation><trace>{k} 0</trace></traceGroup>'
                     for k in range(100))  # fmt: skip
    ids = [r.line_id for r in parse_inkml(doc(groups), "dir.d/many.xml")]
    assert ids[:2] == ["dir.d/many-001", "dir.d/many-002"] and ids[-1] == "dir.d/many-100" and ids == sorted(ids)


# -- writing -----------------------------------------------------------------------


def test_written_document_is_plain_inkml():
    offsets = np.array([[0, 0, 0], [3, 4, 1], [10, 0, 0], [1, 1, 1]], np.float32)
    text = write_inkml([(offsets, "a<b & \"c\" 'd' >"), (offsets[:2], "second")])
    root = ET.fromstring(text.encode())
    ns = "{http://www.w3.org/2003/InkML}"
    assert root.tag == f"{ns}ink"
    assert [c.get("name") for c in root.iter(f"{ns}channel")] == ["X", "Y"]
    groups = root.findall(f"{ns}traceGroup")
    assert [g.find(f"{ns}annotation").text for g in groups] == ["a<b & \"c\" 'd' >", "second"]
    assert [g.find(f"{ns}annotation").get("type") for g in groups] == ["truth", "truth"]
    assert [t.text for t in groups[0].findall(f"{ns}trace")] == ["0 0, 3 4", "13 4, 14 5"]
    results = parse_inkml(text.encode(), "out.inkml")
    assert summary(results) == [("out-01", "a<b & \"c\" 'd' >"), ("out-02", "second")]
    np.testing.assert_array_equal(results[0].offsets, offsets)


def test_writing_refuses_what_inkml_cannot_hold():
    good = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="character"):
        write_inkml([(good, "bell\x07")])
    for bad in (np.zeros((2, 2)), np.array([[0, 0, 0], [np.nan, 1, 1]]), np.zeros(3)):
        with pytest.raises(ValueError, match="offsets"):
            write_inkml([(bad, "x")])
    assert parse_inkml(write_inkml([]).encode(), "none") == [Skipped("none", inkml.NO_TRACES)]


texts = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r&<>\"'"), max_size=30)


@st.composite
def sampled_lines(draw) -> tuple[np.ndarray, str]:
    """Offsets as the sampler makes them: float32 dx, dy, pen_up 0/1, row 0 anywhere."""
    n = draw(st.integers(1, 50))
    dxdy = draw(arrays(np.float32, (n, 2), elements=st.floats(-3000, 3000, width=32)))
    pen = draw(arrays(np.bool_, n))
    return np.column_stack([dxdy, pen.astype(np.float32)]), draw(texts)


@settings(max_examples=60, deadline=None)
@given(st.lists(sampled_lines(), min_size=1, max_size=4))
def test_write_then_parse_gives_back_the_same_strokes(lines):
    results = parse_inkml(write_inkml(lines).encode("utf-8"), "round.inkml")
    assert len(results) == len(lines)
    for (offsets, text), line in zip(lines, results):
        assert isinstance(line, InkLine)
        assert line.text == " ".join(text.split())  # whitespace is layout (see above)
        points = offsets_to_points(offsets)
        points[-1, 2] = 1  # an unfinished last stroke comes back finished
        np.testing.assert_array_equal(line.points, points)  # bit for bit: positions are written exactly
        scale = np.abs(points[:, :2]).max() + 1
        np.testing.assert_allclose(line.offsets[1:, :2], offsets[1:, :2], rtol=1e-6, atol=1e-6 * scale)


def test_ids_keep_the_folders_of_the_name_so_files_of_one_name_never_collide():
    data = (FIXTURES / "one_line.inkml").read_bytes()
    assert [r.line_id for r in parse_inkml(data, "a/x.inkml")] != [r.line_id for r in parse_inkml(data, "b/x.inkml")]
    assert parse_inkml(data, "a/x.inkml")[0].line_id == "a/x"


@pytest.mark.parametrize("written", ["an  apple", "\n    an apple\n  ", "an\tapple", "an\n\t\tapple", " an \r\n apple "])
def test_whitespace_in_a_transcription_is_layout_not_text(written):
    """A pretty-printed annotation's line breaks, tabs and runs of spaces are one space: a line's text
    holds no character a model could be asked to write but never saw."""
    results = parse_inkml(doc(f'<annotation type="truth">{written}</annotation>\n<trace>0 0, 1 1</trace>'), "x.inkml")
    assert summary(results) == [("x", "an apple")]
