"""Animated SVG: the pen replays each line in time, stroke by stroke, and loops.

Every stroke is the same smooth path ``render`` draws, with ``pathLength="1"``
so a dash of length 1 covers it whatever its real length; animating
``stroke-dashoffset`` from 1 to 0 draws it in. Each row of the offsets (a pen
reading, in the air or on the paper) takes ``1 / points_per_second`` seconds,
so pauses and pen-up moves keep their place in time, as the tablet recorded
them (or the network wrote them). All strokes share one clock: each animation
lasts the whole replay, and ``keyTimes`` place its stroke inside it, so the
loop stays in step however many times it repeats. SMIL, not script or CSS:
browsers and most SVG viewers play it, and the file stays a plain picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwkit.render import Style, layout, smooth_path, stroke_colour, svg_canvas, svg_captions
from hwkit.strokes import points_to_strokes

HOLD_SECONDS = 1.5  # the finished page stays up this long before the replay starts again


def animated_svg(
    lines: Sequence[np.ndarray],
    captions: Sequence[str] | None = None,
    style: Style = Style(),
    points_per_second: float = 100.0,
) -> str:
    """An SVG document replaying ``lines`` (offsets in raw units) one after another.

    IAM-OnDB's tablet read the pen at about 100 points per second, hence the default.
    """
    if points_per_second <= 0:
        raise ValueError(f"points_per_second must be positive, got {points_per_second}")
    placed = layout(lines, captions, style)
    rows = [len(cell.points) for cell in placed.cells]
    starts = np.concatenate([[0], np.cumsum(rows)])  # first row of each line on the shared clock
    total = starts[-1] / points_per_second + HOLD_SECONDS
    dur = f"{total:.3f}s"

    def key(row: float) -> float:
        return min(1.0, row / points_per_second / total)

    dwg = svg_canvas(placed)
    for i, cell in enumerate(placed.cells):
        group = dwg.g(class_="line", id=f"line-{i}")
        ink = dwg.g(fill="none", stroke_width=style.width, stroke_linecap="round", stroke_linejoin="round")
        row = int(starts[i])
        for k, stroke in enumerate(points_to_strokes(cell.points)):
            begin, end = key(row), key(row + len(stroke))
            row += len(stroke)
            path = dwg.path(
                d=smooth_path(stroke),
                stroke=stroke_colour(style, k),
                pathLength=1,
                stroke_dasharray="1 1",
            )
            # Without SMIL the static attributes show the finished page. Round caps would
            # show a dot at a hidden stroke's start, so it stays hidden until it begins.
            path.add(
                dwg.animate(
                    attributeName="visibility",
                    values="hidden;visible;visible",
                    keyTimes=f"0;{begin:.5f};1",
                    calcMode="discrete",
                    dur=dur,
                    repeatCount="indefinite",
                )
            )
            path.add(
                dwg.animate(
                    attributeName="stroke-dashoffset",
                    values="1;1;0;0",
                    keyTimes=f"0;{begin:.5f};{max(end, begin):.5f};1",
                    dur=dur,
                    repeatCount="indefinite",
                )
            )
            ink.add(path)
        group.add(ink)
        svg_captions(dwg, group, cell, placed, i)
        dwg.add(group)
    return dwg.tostring()
