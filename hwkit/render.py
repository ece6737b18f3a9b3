"""Pictures of handwriting: lines as SVG or PNG, charts through matplotlib.

Lines come as offsets ``(n, 3)`` in raw pen units, y down (see ``strokes.py``).
``layout`` places them on one canvas (a grid, one shared scale so sizes stay
comparable, captions under each line); ``lines_svg`` and ``lines_png`` draw a
layout. Both draw every stroke as the same smooth curve (``curves.smooth``:
cubic Béziers within ``SMOOTH_TOLERANCE`` px of every sampled point), so the
two formats agree and pen jitter does not show as corners.
Renderers that add to a picture (animation, per-point shading) can reuse
``layout``, ``strokes.points_to_strokes`` and ``smooth_path``/``smooth_polyline``.

Captions are data, never markup: svgwrite escapes them as XML text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from hwkit import curves
from hwkit.strokes import PEN_UP, offsets_to_points, points_to_strokes

PALETTE = (  # matplotlib's tab10: tells neighbouring strokes apart on white
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
INK = "#1a1a1a"
AIR = "#9a9a9a"  # pen-up moves in colour="pen"
CAPTION = "#222222"
SMOOTH_TOLERANCE = 0.3  # px: how far a drawn curve may pass from a sampled point
NOTE = "#777777"  # caption lines after the first


@dataclass(frozen=True)
class Style:
    """How lines are drawn. ``colour``: ``"stroke"`` (one palette colour per stroke),
    ``"pen"`` (ink dark, pen-up moves as faint lines, dashed in SVG), or any SVG/Pillow colour."""

    colour: str = "black"
    width: float = 1.6  # stroke width, canvas px
    columns: int = 1
    cell_width: float = 900.0  # px given to the widest line, pen width included
    max_height: float = 240.0  # px given to the tallest line, if that binds first
    margin: float = 14.0  # around the canvas and between rows
    gutter: float = 48.0  # between grid columns, so that one line never seems to run on into the next
    font_size: float = 13.0


@dataclass
class Cell:
    """One line placed on the canvas: points ``(n, 3)`` as canvas x, y (px) and pen_up."""

    points: np.ndarray
    caption: list[str]
    x: float
    y: float
    caption_y: float  # baseline of the first caption line


@dataclass
class Layout:
    cells: list[Cell]
    width: float
    height: float
    style: Style = field(default_factory=Style)

    @property
    def line_height(self) -> float:
        return self.style.font_size * 1.3

    @cached_property
    def several_columns(self) -> bool:
        """Cells side by side: captions are then kept inside their cells."""
        return len({c.x for c in self.cells}) > 1


def layout(lines: Sequence[np.ndarray], captions: Sequence[str] | None = None, style: Style = Style()) -> Layout:
    """Place ``lines`` in a grid of ``style.columns``, row by row, at one shared scale.

    A caption may hold several lines (``"\\n"``); the first is drawn darker. Each
    line's drawing, the pen's width included, stays inside its cell (``cell_width``
    wide, at ``x``); columns are ``style.gutter`` apart, and captions are clipped
    to their cell when there is more than one column.
    """
    if style.columns < 1:
        raise ValueError(f"columns must be at least 1, got {style.columns}")
    captions = list(captions) if captions is not None else [""] * len(lines)
    if len(captions) != len(lines):
        raise ValueError(f"{len(captions)} captions for {len(lines)} lines")
    points = [offsets_to_points(np.asarray(line, dtype=np.float64).reshape(-1, 3)) for line in lines]
    boxes = np.array([(*p[:, :2].min(0), *p[:, :2].max(0)) if len(p) else (0.0,) * 4 for p in points])
    boxes = boxes.reshape(-1, 4)
    sizes = boxes[:, 2:] - boxes[:, :2]
    widest, tallest = (sizes.max(0) if len(sizes) else np.zeros(2)).tolist()
    pad = style.width / 2  # round caps and joins reach this far past the points
    room_w, room_h = max(style.cell_width - 2 * pad, 1.0), max(style.max_height - 2 * pad, 1.0)
    scale = min(room_w / widest if widest else np.inf, room_h / tallest if tallest else np.inf)
    scale = 1.0 if not np.isfinite(scale) else scale
    m, lh = style.margin, style.font_size * 1.3
    columns = max(1, min(style.columns, len(lines)))
    cells: list[Cell] = []
    top = m
    for row in range(0, len(lines), columns):
        members = range(row, min(row + columns, len(lines)))
        ink = max(sizes[i, 1] * scale for i in members) + 2 * pad
        n_caption = max(len(captions[i].split("\n")) if captions[i] else 0 for i in members)
        for col, i in enumerate(members):
            x = m + col * (style.cell_width + style.gutter)
            placed = points[i].copy()
            placed[:, :2] = (placed[:, :2] - boxes[i, :2]) * scale + (x + pad, top + pad)
            caption = captions[i].split("\n") if captions[i] else []  # only \n: a dataset's control bytes stay text
            cells.append(Cell(placed, caption, x, top, top + ink + 0.4 * lh + style.font_size))
        top += ink + (0.4 * lh + n_caption * lh if n_caption else 0) + m
    width = 2 * m + columns * style.cell_width + (columns - 1) * style.gutter
    return Layout(cells, width, top, style)


def _clip_captions(dwg, placed: Layout, i: int, cell: Cell):
    """With several columns, a ``clip-path`` keeping caption ``i`` inside its cell; else None."""
    if not placed.several_columns:
        return None
    clip = dwg.defs.add(dwg.clipPath(id=f"caption-{i}"))
    clip.add(dwg.rect((cell.x, cell.y), (placed.style.cell_width, placed.height - cell.y)))
    return f"url(#caption-{i})"


def _fit_text(draw, text: str, font, width: float) -> str:
    """``text`` cut (with an ellipsis) to at most ``width`` pixels in ``font``."""
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with its ellipsis
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "…", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def air_moves(points: np.ndarray) -> np.ndarray:
    """``(m, 2, 2)`` start and end of every pen-up move: from a stroke's end to the next point."""
    lifts = np.flatnonzero(points[:-1, PEN_UP] > 0.5)
    return np.stack([points[lifts, :2], points[lifts + 1, :2]], axis=1)


def stroke_colour(style: Style, k: int) -> str:
    if style.colour == "stroke":
        return PALETTE[k % len(PALETTE)]
    return INK if style.colour == "pen" else style.colour


def _fmt(xy: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)


def smooth_path(xy: np.ndarray, tolerance: float = SMOOTH_TOLERANCE) -> str:
    """SVG path data of a stroke's smooth curve (``curves.smooth``: within ``tolerance`` of every point)."""
    return curves.svg_path(curves.smooth(xy, tolerance), digits=1)


def smooth_polyline(xy: np.ndarray, tolerance: float = SMOOTH_TOLERANCE, steps: int = 6) -> np.ndarray:
    """The curve of ``smooth_path`` flattened to ``(m, 2)`` points, for rasterisers."""
    return curves.flatten(curves.smooth(xy, tolerance), steps)


def lines_svg(lines: Sequence[np.ndarray], captions: Sequence[str] | None = None, style: Style = Style()) -> str:
    """An SVG document: one ``<g class="line">`` per line, one ``<path>`` per stroke,
    caption ``<text>`` under each line."""
    return layout_svg(layout(lines, captions, style))


def layout_svg(placed: Layout) -> str:
    import svgwrite

    style = placed.style
    dwg = svgwrite.Drawing(size=(f"{placed.width:.0f}px", f"{placed.height:.0f}px"), debug=False)
    dwg.viewbox(0, 0, round(placed.width), round(placed.height))
    dwg.add(dwg.rect((0, 0), ("100%", "100%"), fill="white"))
    for i, cell in enumerate(placed.cells):
        group = dwg.g(class_="line", id=f"line-{i}")
        ink = dwg.g(fill="none", stroke_width=style.width, stroke_linecap="round", stroke_linejoin="round")
        if style.colour == "pen" and len(cell.points) > 1:
            d = " ".join(f"M{_fmt(a[None])} L{_fmt(b[None])}" for a, b in air_moves(cell.points))
            if d:
                ink.add(dwg.path(d=d, stroke=AIR, stroke_width=style.width / 2, stroke_dasharray="3,3"))
        for k, stroke in enumerate(points_to_strokes(cell.points)):
            ink.add(dwg.path(d=smooth_path(stroke), stroke=stroke_colour(style, k)))
        group.add(ink)
        svg_captions(dwg, group, cell, placed, i)
        dwg.add(group)
    return dwg.tostring()


def lines_png(
    lines: Sequence[np.ndarray],
    captions: Sequence[str] | None = None,
    style: Style = Style(),
    width: int | None = None,
):
    """A ``PIL.Image`` (RGB) ``width`` pixels wide (default: the canvas width)."""
    return layout_png(layout(lines, captions, style), width)


def layout_png(placed: Layout, width: int | None = None):
    """Rasterise a layout: drawn at up to 4x, then downscaled (Pillow lines are not anti-aliased)."""
    from PIL import Image, ImageDraw

    style = placed.style
    out_w = int(width or round(placed.width))
    out_h = max(1, round(placed.height * out_w / placed.width))
    sample = int(max(1, min(4, np.sqrt(40e6 / (out_w * out_h)))))
    k = out_w / placed.width * sample  # canvas px -> supersampled px
    image = Image.new("RGB", (out_w * sample, out_h * sample), "white")
    draw = ImageDraw.Draw(image)

    def line(xy: np.ndarray, colour: str, w: float) -> None:
        pts = [tuple(p) for p in (xy * k).tolist()]
        pen = max(1, round(w * k))
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=pen, joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=colour)

    fonts = {}
    clip = placed.several_columns  # captions kept inside their cells, as in SVG
    for cell in placed.cells:
        if style.colour == "pen" and len(cell.points) > 1:
            for a, b in air_moves(cell.points):
                line(np.stack([a, b]), AIR, style.width / 2)
        for j, stroke in enumerate(points_to_strokes(cell.points)):
            line(smooth_polyline(stroke), stroke_colour(style, j), style.width)
        for j, text in enumerate(cell.caption):
            size = round((style.font_size if j == 0 else style.font_size * 0.85) * k)
            font = fonts.setdefault(size, caption_font(size))
            xy = (cell.x * k, (cell.caption_y + j * placed.line_height) * k)
            text = _fit_text(draw, text, font, style.cell_width * k) if clip else text
            draw.text(xy, text, fill=CAPTION if j == 0 else NOTE, font=font, anchor="ls")
    return image.resize((out_w, out_h), Image.Resampling.LANCZOS) if sample > 1 else image


def caption_font(size: int):
    """DejaVu Sans, which matplotlib (a dependency) ships: it has every Latin-1 letter, dashes and curly
    quotes, where Pillow's built-in font draws boxes for "café" or "–". Pillow's font if it is missing."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


@dataclass(frozen=True)
class Histogram:
    """One chart panel: a step histogram per named series, sharing bins."""

    title: str
    xlabel: str
    series: Mapping[str, np.ndarray]
    log_x: bool = False  # log-spaced bins; values <= 0 are left out
    log_y: bool = False
    bins: int = 50


def histograms(panels: Sequence[Histogram], path: str | Path) -> Path:
    """Draw panels side by side into ``path`` (SVG or PNG by its suffix)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg/SVG picked by suffix
    from matplotlib.ticker import FuncFormatter, NullFormatter

    path = Path(path)
    fig = Figure(figsize=(5.2 * len(panels), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, panel in zip(axes, panels):
        series = {name: np.asarray(v, dtype=np.float64).ravel() for name, v in panel.series.items()}
        if panel.log_x:
            series = {name: v[v > 0] for name, v in series.items()}
        values = np.concatenate([v for v in series.values() if len(v)] or [np.zeros(1)])
        if panel.log_x and values.min() > 0:
            bins = np.geomspace(values.min(), max(values.max(), values.min() * 1.01), panel.bins + 1)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            bins = np.histogram_bin_edges(values, panel.bins)
        for name, v in series.items():
            ax.hist(v, bins=bins, histtype="step", linewidth=1.4, label=f"{name} ({len(v):,})")
        if panel.log_y:
            ax.set_yscale("log")
        ax.set_title(panel.title)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel("count")
        if len(series) > 1:
            ax.legend(frameon=False)
    if path.suffix.lower() == ".png":  # opaque RGB, like every other PNG hwkit writes
        from io import BytesIO

        from PIL import Image

        buf = BytesIO()
        fig.savefig(buf, format="png", dpi=110, facecolor="white")
        buf.seek(0)
        with Image.open(buf) as image:  # opaque already (white face): drop the alpha channel
            image.convert("RGB").save(path)
    else:
        fig.savefig(path, dpi=110)
    return path


# -- Shading by a value per point, and helpers for renderers that add to a picture
# (added for `hwkit sample`: `--colour eos` and `hwkit.animate`).

SHADE_LOW, SHADE_HIGH = (0x1F, 0x3A, 0x93), (0xE8, 0x41, 0x2C)  # deep blue (0) to red (1)


def shade_colour(value: float) -> str:
    """The colour of ``value`` in [0, 1] (clipped), from deep blue through purple to red.

    The ramp follows the square root of the value: end-of-stroke probabilities
    sit near 0.01 mid-stroke and rarely pass 0.5 even where a stroke ends, and a
    linear ramp leaves that whole range the same blue.
    """
    v = min(max(float(value), 0.0), 1.0) ** 0.5
    return "#" + "".join(f"{round(a + (b - a) * v):02x}" for a, b in zip(SHADE_LOW, SHADE_HIGH))


def svg_canvas(placed: Layout):
    """An ``svgwrite.Drawing`` the size of ``placed``, on white."""
    import svgwrite

    dwg = svgwrite.Drawing(size=(f"{placed.width:.0f}px", f"{placed.height:.0f}px"), debug=False)
    dwg.viewbox(0, 0, round(placed.width), round(placed.height))
    dwg.add(dwg.rect((0, 0), ("100%", "100%"), fill="white"))
    return dwg


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold (control characters from a dataset) as U+FFFD:
    svgwrite escapes markup but would write them as they are, and no reader accepts the file then."""
    return _NOT_XML.sub("\ufffd", text)


def svg_captions(dwg, group, cell: Cell, placed: Layout, i: int | None = None) -> None:
    """Add ``cell``'s caption lines to ``group`` as ``layout_svg`` draws them (escaped text).

    ``i``, the cell's index, clips the captions to the cell when the layout has several columns.
    """
    style = placed.style
    clip = None if i is None or not cell.caption else _clip_captions(dwg, placed, i, cell)
    extra = {} if clip is None else {"clip_path": clip}
    for j, text in enumerate(cell.caption):
        size = style.font_size if j == 0 else style.font_size * 0.85
        group.add(
            dwg.text(
                xml_safe(text),
                insert=(cell.x, cell.caption_y + j * placed.line_height),
                font_size=f"{size:.1f}px",
                font_family="sans-serif",
                fill=CAPTION if j == 0 else NOTE,
                **extra,
            )
        )


def _point_pieces(stroke: np.ndarray, steps: int = 6) -> list[np.ndarray]:
    """The stroke's Catmull-Rom curve through every point, cut into one piece per point:
    from halfway along the span before it to halfway along the span after it."""
    stroke = np.asarray(stroke, dtype=np.float64)
    if len(stroke) < 2:
        return [np.repeat(stroke, 2, axis=0)]
    spans = curves.point_on(curves.catmull_rom(stroke), np.linspace(0, 1, 2 * steps + 1))  # (n - 1, 2 steps + 1, 2)
    first, second = spans[:, : steps + 1], spans[:, steps:]
    return [first[0], *(np.concatenate([a, b[1:]]) for a, b in zip(second[:-1], first[1:])), second[-1]]


def _shaded_cell(cell: Cell, values: np.ndarray) -> list[list[tuple[np.ndarray, str]]]:
    """Per stroke, the (piece, colour) of each of its points."""
    strokes = points_to_strokes(cell.points)
    per_stroke = np.split(np.asarray(values, dtype=np.float64), np.cumsum([len(s) for s in strokes])[:-1])
    return [
        [(piece, shade_colour(v)) for piece, v in zip(_point_pieces(s), vals)] for s, vals in zip(strokes, per_stroke)
    ]


def shaded_svg(placed: Layout, values: Sequence[np.ndarray]) -> str:
    """Like ``layout_svg``, with each point's piece of the curve coloured by its value.

    ``values[i]`` has one number in [0, 1] per row of line ``i`` (for example the
    end-of-stroke probability a network predicted, where red shows it expecting
    the pen to lift); each stroke is a ``<g class="stroke">`` of pieces.
    """
    if len(values) != len(placed.cells):
        raise ValueError(f"{len(values)} value arrays for {len(placed.cells)} lines")
    dwg = svg_canvas(placed)
    for i, (cell, vals) in enumerate(zip(placed.cells, values)):
        group = dwg.g(class_="line", id=f"line-{i}")
        ink = dwg.g(fill="none", stroke_width=placed.style.width, stroke_linecap="round", stroke_linejoin="round")
        for pieces in _shaded_cell(cell, vals):
            stroke = dwg.g(class_="stroke")
            for piece, colour in pieces:
                stroke.add(dwg.polyline([tuple(p) for p in np.round(piece, 1).tolist()], stroke=colour))
            ink.add(stroke)
        group.add(ink)
        svg_captions(dwg, group, cell, placed, i)
        dwg.add(group)
    return dwg.tostring()


def shaded_png(placed: Layout, values: Sequence[np.ndarray], width: int | None = None):
    """``shaded_svg`` as a ``PIL.Image``: the layout's PNG with the ink redrawn piece by piece."""
    from PIL import Image, ImageDraw

    if len(values) != len(placed.cells):
        raise ValueError(f"{len(values)} value arrays for {len(placed.cells)} lines")
    blank = Layout(
        [Cell(c.points[:0], c.caption, c.x, c.y, c.caption_y) for c in placed.cells],
        placed.width,
        placed.height,
        placed.style,
    )
    image = layout_png(blank, width)  # background and captions, drawn exactly as layout_png does
    sample = int(max(1, min(4, np.sqrt(40e6 / (image.width * image.height)))))  # as layout_png
    big = image.resize((image.width * sample, image.height * sample), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(big)
    k = image.width / placed.width * sample
    pen = max(1, round(placed.style.width * k))
    for cell, vals in zip(placed.cells, values):
        for pieces in _shaded_cell(cell, vals):
            for piece, colour in pieces:
                pts = [tuple(p) for p in (piece * k).tolist()]
                draw.line(pts, fill=colour, width=pen, joint="curve")
                for x, y in (pts[0], pts[-1]):
                    draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=colour)
    return big.resize(image.size, Image.Resampling.LANCZOS)
