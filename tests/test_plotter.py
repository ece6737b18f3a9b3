"""Plotter outputs: what the pen draws down is the page's strokes, in mm; sorting shortens travel."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit import curves, plotter
from hwkit.errors import OptionError
from hwkit.page import Line, Page

pytest.importorskip("vpype")


def _page(seed: int, n: int = 30, width: float = 148.0, height: float = 210.0, margin: float = 10.0) -> Page:
    """Strokes scattered over a page in a shuffled order, like letters written out of sequence; each
    starts ``margin`` from the edges and may wander 9 mm past it."""
    rng = np.random.default_rng(seed)
    strokes = []
    for _ in range(n):
        start = rng.uniform([margin, margin], [width - margin - 10, height - margin - 10])
        turn = np.cumsum(rng.normal(0, 0.4, rng.integers(2, 40)))
        steps = np.stack([np.cos(turn), np.sin(turn)], 1) * rng.uniform(0.2, 0.6)
        strokes.append(np.clip(start + np.cumsum(steps, 0), margin - 9, [width - margin + 9, height - margin + 9]))
    return Page(width, height, [Line("x", strokes)])


def _matches(drawn: np.ndarray, wanted: list[np.ndarray], tol: float) -> int | None:
    """Index of the polyline ``drawn`` reproduces (either way round), else None."""
    for k, w in enumerate(wanted):
        for candidate in (w, w[::-1]):
            if len(candidate) == len(drawn) and np.abs(candidate - drawn).max() <= tol:
                return k
    return None


def _gcode_pen_down(text: str, down: str, up: str) -> list[np.ndarray]:
    paths, current, last = [], None, None
    for line in text.splitlines():
        move = re.match(r"G[01] X(-?[\d.]+) Y(-?[\d.]+)", line)
        if move:
            last = (float(move[1]), float(move[2]))
            if current is not None:
                current.append(last)
        elif re.match(down, line):
            current = [last]
        elif re.match(up, line) and current is not None:
            paths.append(np.array(current))
            current = None
    return paths


@pytest.mark.parametrize(
    ("profile", "down", "up"), [("hwkit-z", r"G1 Z0 ", r"G0 Z5$"), ("hwkit-servo", r"M3 S30$", r"M3 S50$")]
)
def test_every_pen_down_path_of_the_gcode_is_a_stroke_of_the_page(tmp_path, profile, down, up):
    page = _page(0)
    path = tmp_path / "page.gcode"
    plotter.write_gcode(page, path, profile=profile, settings={"feed": 1234})
    text = path.read_text()
    assert text.startswith("G21\nG90\n") and "F1234" in text
    wanted = [np.column_stack([p[:, 0], page.height - p[:, 1]]) for p in plotter.polylines(page)]  # origin bottom-left
    drawn = _gcode_pen_down(text, down, up)
    assert len(drawn) == len(wanted)
    found = [_matches(d, wanted, 2e-3) for d in drawn]
    assert None not in found and sorted(found) == list(range(len(wanted)))  # each stroke drawn once


def test_origin_top_left_keeps_the_page_y_axis(tmp_path):
    page = _page(4)
    path = tmp_path / "page.gcode"
    plotter.write_gcode(page, path, settings={"origin": "top-left"})
    drawn = _gcode_pen_down(path.read_text(), r"G1 Z0 ", r"G0 Z5$")
    wanted = plotter.polylines(page)  # no flip
    assert all(_matches(d, wanted, 2e-3) is not None for d in drawn) and len(drawn) == len(wanted)
    with pytest.raises(OptionError, match="origin=middle"):
        plotter.write_gcode(page, path, settings={"origin": "middle"})


@pytest.mark.parametrize("size", [(210, 297), (215.9, 355.6), (148, 210)])  # A4, legal (on the b paper), A5
def test_hpgl_draws_each_stroke_once_at_its_length(tmp_path, size):
    import vpype as vp

    page = _page(1, width=size[0], height=size[1], margin=20)
    path = tmp_path / "page.hpgl"
    plotter.write_hpgl(page, path, device="hp7475a")
    text = path.read_text()
    unit_mm = vp.config_manager.get_plotter_config("hp7475a").plotter_unit_length / vp.convert_length("mm")
    drawn, pos = [], None
    for cmd in text.replace("\n", "").split(";"):
        numbers = [int(v) for v in re.findall(r"-?\d+", cmd[2:])] if cmd[:2] in ("PU", "PD") else []
        xy = np.array(numbers, float).reshape(-1, 2) * unit_mm
        if cmd.startswith("PU") and len(xy):
            pos = xy[-1]
        elif cmd.startswith("PD") and len(xy):
            drawn.append(np.concatenate([pos[None], xy]))
            pos = xy[-1]
    lengths = sorted(np.hypot(*np.diff(p, axis=0).T).sum() for p in drawn)
    wanted = sorted(np.hypot(*np.diff(p, axis=0).T).sum() for p in plotter.polylines(page))
    assert len(lengths) == len(wanted)
    np.testing.assert_allclose(lengths, wanted, atol=0.05 * 4 + 0.1)  # whole plotter units round each point


def test_plotter_svg_is_mm_one_path_per_stroke_no_fill(tmp_path):
    page = _page(2)
    path = tmp_path / "page.plotter.svg"
    plotter.write_svg(page, path)
    root = ET.parse(path).getroot()
    assert root.get("width") == "148mm" and root.get("height") == "210mm"
    assert [float(v) for v in root.get("viewBox").split(",")] == [0, 0, 148, 210]
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == len(page.strokes)
    group = root.find(".//{http://www.w3.org/2000/svg}g")
    assert group.get("fill") == "none"
    wanted = plotter.polylines(page)
    for p in paths:
        pairs = p.get("d").replace("M", "").replace("L", "").split()
        xy = np.array([[float(v) for v in pair.split(",")] for pair in pairs])
        assert _matches(xy[1:], wanted, 2e-3) is not None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60))
def test_sorting_never_lengthens_pen_up_travel(seed, n):
    import vpype as vp

    page = _page(seed, n)
    before = plotter.travel(plotter.polylines(page))
    document = plotter.vpype_document(page)
    after = document.layers[1].pen_up_length()[0] / vp.convert_length("mm")
    assert after <= before + 1e-6
    assert len(document.layers[1]) == n


def test_plotter_polylines_stay_within_the_tolerance_of_the_strokes():
    page = _page(3)
    for stroke, line in zip(page.strokes, plotter.polylines(page, tolerance=0.05)):
        assert curves.distances_to_polyline(stroke, line).max() <= 0.05


def test_unknown_profile_and_device_are_named(tmp_path):
    with pytest.raises(OptionError, match="hwkit-servo"):
        plotter.write_gcode(_page(0), tmp_path / "x.gcode", profile="nope")
    with pytest.raises(OptionError, match="hp7475a"):
        plotter.write_hpgl(_page(0), tmp_path / "x.hpgl", device="nope")


@pytest.mark.parametrize(
    ("device", "size", "paper"),
    [
        ("hp7475a", (210, 297), "a4"),
        ("hp7475a", (215.9, 279.4), "a"),  # a US letter page on the device's letter paper
        ("hp7475a", (215.9, 355.6), "b"),  # legal: the smallest that holds it
        ("hp7475a", (148, 210), "a4"),  # A5: the device's first paper holds it
        ("hp7475a", (420, 297), "a3"),
        ("dxy", (210, 297), "a4"),
    ],
)
def test_hpgl_goes_on_the_paper_of_the_pages_size_else_one_that_holds_it(device, size, paper):
    assert plotter.hpgl_paper(device, *size) == paper


def test_hpgl_refuses_a_page_no_paper_of_the_device_holds_and_a_paper_it_does_not_take(monkeypatch):
    with pytest.raises(OptionError, match="larger than any paper hp7440a takes"):
        plotter.hpgl_paper("hp7440a", 215.9, 355.6)
    with pytest.raises(OptionError, match="does not fit hp7475a's a4 paper"):
        plotter.hpgl_paper("hp7475a", 297, 420, "a4")
    assert plotter.hpgl_paper("hp7475a", 148, 210, "a3") == "a3"
    import vpype as vp

    def broken(device):  # as vpype 1.15's own entry for designmate: "285mmmm"
        raise ValueError("cannot convert value '285mmmm'")

    monkeypatch.setattr(vp.config_manager, "get_plotter_config", broken)
    with pytest.raises(OptionError, match="vpype's settings for it do not load"):
        plotter.hpgl_paper("designmate", 210, 297)


def test_hpgl_refuses_a_page_whose_ink_the_plotter_cannot_reach(tmp_path):
    page = _page(1, width=210, height=297, margin=5)  # ink to 4 mm from the edges: more than hp7475a reaches
    with pytest.raises(OptionError, match="mm of ink would be cut off"):
        plotter.write_hpgl(page, tmp_path / "page.hpgl", device="hp7475a")
