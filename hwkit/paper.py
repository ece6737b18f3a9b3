"""Pages (``hwkit.page``) -> files for print: SVG in mm, PNG at a resolution, one PDF for all pages.

Every stroke is drawn as its smooth curve (``curves.smooth`` at ``tolerance``
mm), so the SVG, the PDF and the PNG show the same line. The SVG and PDF keep
the curves as Béziers (the printer draws them exactly); the PNG flattens them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwkit import curves
from hwkit.page import Page

TOLERANCE = 0.05  # mm: how far a drawn curve may pass from a sampled point
PEN_WIDTH = 0.4  # mm: a fine felt-tip or gel pen


def page_svg(page: Page, *, colour: str = "black", pen_width: float = PEN_WIDTH,
             tolerance: float = TOLERANCE) -> str:  # fmt: skip
    """An SVG the size of the page (mm), one ``<g class="line">`` per line and one ``<path>`` per stroke."""
    import svgwrite

    dwg = svgwrite.Drawing(size=(f"{page.width:g}mm", f"{page.height:g}mm"), debug=False)
    dwg.viewbox(0, 0, page.width, page.height)
    dwg.add(dwg.rect((0, 0), (page.width, page.height), fill="white"))
    ink = dwg.g(fill="none", stroke=colour, stroke_width=pen_width, stroke_linecap="round", stroke_linejoin="round")
    chains = iter(page.beziers(tolerance))
    for line in page.lines:
        group = dwg.g(class_="line")
        group.set_desc(title=line.text)
        for _, beziers in zip(line.strokes, chains):
            group.add(dwg.path(d=curves.svg_path(beziers, digits=3)))
        ink.add(group)
    dwg.add(ink)
    return dwg.tostring()


def page_png(page: Page, *, dpi: float = 150, colour: str = "black", pen_width: float = PEN_WIDTH,
             tolerance: float = TOLERANCE):  # fmt: skip
    """The page as a Pillow image, drawn at 3x and scaled down for smooth edges."""
    from PIL import Image, ImageDraw

    ss = 3
    px = dpi / 25.4 * ss  # pixels per mm while drawing
    size = (max(1, round(page.width * px)), max(1, round(page.height * px)))
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    width = max(1, round(pen_width * px))
    for beziers in page.beziers(tolerance):
        xy = curves.flatten(beziers, steps=6) * px
        if len(xy) == 1 or np.ptp(xy, axis=0).max() < 1:
            x, y = xy[0]
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=colour)
            continue
        draw.line([tuple(p) for p in xy], fill=colour, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round caps
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=colour)
    return image.resize((size[0] // ss, size[1] // ss), Image.LANCZOS)


def write_pdf(pages: Sequence[Page], path: str | Path, *, colour: str = "black", pen_width: float = PEN_WIDTH,
              tolerance: float = TOLERANCE) -> None:  # fmt: skip
    """One PDF page per page, at the page's size, strokes as Bézier paths (matplotlib's PDF backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    with PdfPages(path, metadata={"Creator": "hwkit"}) as pdf:
        for page in pages:
            fig = Figure(figsize=(page.width / 25.4, page.height / 25.4))
            ax = fig.add_axes((0, 0, 1, 1))
            ax.set_xlim(0, page.width)
            ax.set_ylim(page.height, 0)
            ax.axis("off")
            for beziers in page.beziers(tolerance):
                vertices = np.concatenate([beziers[:1, 0], beziers[:, 1:].reshape(-1, 2)])
                codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(vertices) - 1)
                ax.add_patch(PathPatch(MplPath(vertices, codes), fill=False, edgecolor=colour,
                                       linewidth=pen_width / 25.4 * 72, capstyle="round", joinstyle="round"))  # fmt: skip
            pdf.savefig(fig)
