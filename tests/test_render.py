"""Pictures: SVG structure and escaping, colour modes, the smooth curve, PNG, charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import synthetic_lines
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from hwkit import curves, render
from hwkit.strokes import offsets_to_points, points_to_strokes

SVG = "{http://www.w3.org/2000/svg}"


def _groups(svg: str) -> list[ET.Element]:
    return [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "line"]


def _n_strokes(offsets: np.ndarray) -> int:
    return len(points_to_strokes(offsets_to_points(offsets)))


def test_svg_has_a_group_per_line_a_path_per_stroke_and_literal_captions():
    lines = [line.offsets for line in synthetic_lines(5)]
    captions = ["a <b> & c", "[bold]not bold[/bold]", "quote \" ' ]]>", "two\nlines", ""]
    svg = render.lines_svg(lines, captions, render.Style(colour="black", columns=2))
    assert "&lt;b&gt;" in svg and "&amp; c" in svg and "<b>" not in svg
    groups = _groups(svg)
    assert len(groups) == 5
    for group, line, caption in zip(groups, lines, captions):
        paths = list(group.iter(f"{SVG}path"))
        assert len(paths) == _n_strokes(line)
        assert {p.get("stroke") for p in paths} == {"black"}
        assert [t.text for t in group.iter(f"{SVG}text")] == caption.splitlines()


def test_stroke_colours_cycle_the_palette_and_pen_mode_adds_the_air_moves():
    line = synthetic_lines(1, min_points=150, max_points=150)[0].offsets
    n = _n_strokes(line)
    assert n > 2
    (group,) = _groups(render.lines_svg([line], style=render.Style(colour="stroke")))
    assert [p.get("stroke") for p in group.iter(f"{SVG}path")] == [render.PALETTE[k % 10] for k in range(n)]
    (group,) = _groups(render.lines_svg([line], style=render.Style(colour="pen")))
    air = [p for p in group.iter(f"{SVG}path") if p.get("stroke-dasharray")]
    assert len(air) == 1 and air[0].get("d").count("M") == n - 1


def test_layout_keeps_one_scale_and_places_everything_on_the_canvas():
    short = np.array([[0, 0, 0], [10, 5, 0], [10, -5, 1]], dtype=np.float32)
    long = np.array([[0, 0, 0], [20, 5, 0], [20, -5, 1]], dtype=np.float32)
    placed = render.layout([short, long, short], ["x", "y", "z"], render.Style(columns=2, cell_width=400))
    widths = [np.ptp(c.points[:, 0]) for c in placed.cells]
    room = 400 - placed.style.width  # the pen's width stays inside the cell too
    assert widths[1] == pytest.approx(room) and widths[0] == pytest.approx(room / 2)
    assert placed.cells[0].y == placed.cells[1].y < placed.cells[2].y  # two per row
    assert placed.cells[2].x == placed.cells[0].x < placed.cells[1].x
    for cell in placed.cells:
        assert (cell.points[:, :2] >= 0).all()
        assert (cell.points[:, 0] <= placed.width).all() and (cell.points[:, 1] <= placed.height).all()
        assert cell.caption_y < placed.height


@pytest.mark.parametrize("line", [np.zeros((0, 3)), np.array([[0, 0, 1]]), np.array([[0, 0, 0], [3, 4, 1]])])
def test_degenerate_lines_still_draw(line):
    svg = render.lines_svg([line], ["tiny"])
    assert len(_groups(svg)) == 1
    assert render.lines_png([line], ["tiny"]).size[0] > 0


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 30), st.just(2)), elements=st.floats(-1e3, 1e3)))
def test_smooth_curve_runs_from_first_to_last_point_near_every_point(xy):
    curve = render.smooth_polyline(xy, steps=64)
    np.testing.assert_allclose(curve[0], xy[0])
    np.testing.assert_allclose(curve[-1], xy[-1])
    assert curves.distances_to_polyline(xy, curve).max() <= render.SMOOTH_TOLERANCE + 1e-3
    d = render.smooth_path(xy)
    assert d.startswith("M") and "C" in d


def test_png_is_antialiased_ink_on_white():
    lines = [line.offsets for line in synthetic_lines(3)]
    image = render.lines_png(lines, ["one", "two", "three"], render.Style(colour="black"), width=600)
    assert image.mode == "RGB" and image.size[0] == 600
    grey = np.asarray(image.convert("L"))
    assert grey[0, 0] == 255 and grey.min() < 60  # white background, dark ink
    assert ((grey > 60) & (grey < 200)).sum() > 100  # soft edges from supersampling


def test_histograms_write_svg_and_png(tmp_path):
    rng = np.random.default_rng(0)
    panels = [
        render.Histogram(
            "lengths", "points", {"train": rng.integers(10, 900, 200), "valid": rng.integers(10, 900, 40)}
        ),
        render.Histogram(
            "steps",
            "units",
            {"down": rng.lognormal(2, 1, 500), "up": np.r_[0.0, rng.lognormal(5, 1, 50)]},
            log_x=True,
            log_y=True,
        ),
    ]
    svg = render.histograms(panels, tmp_path / "h.svg")
    png = render.histograms(panels, tmp_path / "h.png")
    assert "<svg" in svg.read_text() and "lengths" in svg.read_text()
    with Image.open(png) as image:
        assert image.size[0] > image.size[1] > 100


def test_grid_columns_have_a_gutter_and_lines_stay_in_their_cells():
    lines = [line.offsets for line in synthetic_lines(5)]
    style = render.Style(columns=2, cell_width=300, width=6.0)
    placed = render.layout(lines, ["a caption far longer than its cell " * 6] * 5, style)
    pad = style.width / 2
    for cell in placed.cells:
        assert cell.x + pad <= cell.points[:, 0].min() + 1e-9
        assert cell.points[:, 0].max() + pad <= cell.x + style.cell_width + 1e-9
    xs = sorted({c.x for c in placed.cells})
    assert len(xs) == 2 and xs[1] - (xs[0] + style.cell_width) == pytest.approx(style.gutter) and style.gutter > 0
    assert placed.width == pytest.approx(2 * style.margin + 2 * style.cell_width + style.gutter)
    root = ET.fromstring(render.layout_svg(placed))
    texts = list(root.iter(f"{SVG}text"))
    assert texts and all(t.get("clip-path", "").startswith("url(#caption-") for t in texts)
    image = render.layout_png(placed)
    gutter = np.asarray(image)[:, round(xs[0] + style.cell_width + 3) : round(xs[1] - 3)]
    assert (gutter >= 250).all()  # nothing drawn there, neither ink nor caption text (resampling aside)


def test_histogram_png_is_opaque_rgb(tmp_path):
    panel = render.Histogram("points per line", "points", {"train": np.arange(100.0)})
    path = render.histograms([panel], tmp_path / "h.png")
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert image.getpixel((0, 0)) == (255, 255, 255)


def test_control_characters_in_captions_still_give_well_formed_svg():
    import xml.etree.ElementTree as ET

    from hwkit.render import layout, layout_svg

    lines = synthetic_lines(2, seed=1)
    svg = layout_svg(layout([line.offsets for line in lines], ["bell \x07 esc \x1b", "form \x0c feed\nsecond"]))
    texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["bell \ufffd esc \ufffd", "form \ufffd feed", "second"]


def test_png_captions_have_glyphs_for_accents_dashes_and_quotes():
    """Pillow's built-in font draws the same empty box for each of these; a caption must show them."""
    from hwkit.render import caption_font

    def glyph(c: str) -> tuple:
        mask = font.getmask(c)
        return mask.size, bytes(mask)

    font = caption_font(24)
    missing = glyph("\ue000")  # a private-use code point: no font has it, so this is the "no glyph" box
    for c in "éüçñ–—“”‘’½£":
        assert glyph(c) != missing, c
