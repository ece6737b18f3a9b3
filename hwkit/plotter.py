"""Pages (``hwkit.page``) -> pen-plotter files through vpype: single-line SVG, G-code, HPGL.

vpype is the plotter community's library for this, and hwkit uses it rather
than writing its own: page sizes, line sorting, HPGL for real devices (its
device database knows each plotter's paper, origin and units), and G-code
through the vpype-gcode plugin's profiles (templates for pen up/down, feed
rates and axes). Install with ``pip install 'hwkit[plotter]'``.

A plotter draws every stroke as a polyline: each stroke's smooth curve
(``curves.smooth``) is flattened to segments within ``tolerance`` mm. Strokes
are then ordered by vpype's ``linesort`` (nearest next stroke, drawn either
way round) to shorten pen-up travel, and the written order is kept when
sorting would not be shorter.

hwkit adds two G-code profiles, both millimetres, absolute moves, origin at
the page's bottom-left corner (y up, as GRBL machines expect):

    hwkit-z      pen up/down as Z heights (z_up 5, z_down 0), feed 2000 mm/min
    hwkit-servo  pen up/down as servo positions (M3 S<pen_up|pen_down>, dwell 0.2 s)

Any value can be changed per call (``settings``, ``--gcode-set feed=3000``), as can
the origin (``origin=top-left``: y down from the page's top-left corner), and
any profile from the user's ``~/.vpype.toml`` can be named instead.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hwkit import curves
from hwkit.errors import HwkitError, OptionError
from hwkit.page import Page

TOLERANCE = 0.05  # mm
GCODE_PROFILES = {
    "hwkit-z": {
        "document_start": "G21\nG90\nG0 Z{z_up}\n",
        "segment_first": "G0 X{x:.3f} Y{y:.3f}\nG1 Z{z_down} F{plunge}\n",
        "segment": "G1 X{x:.3f} Y{y:.3f} F{feed}\n",
        "line_end": "G0 Z{z_up}\n",
        "document_end": "G0 X0 Y0\nM2\n",
        "unit": "mm",
        "vertical_flip": True,
        "default_values": {"z_up": 5, "z_down": 0, "feed": 2000, "plunge": 500},
    },
    "hwkit-servo": {
        "document_start": "G21\nG90\nM3 S{pen_up}\nG4 P{dwell}\n",
        "segment_first": "G0 X{x:.3f} Y{y:.3f}\nM3 S{pen_down}\nG4 P{dwell}\n",
        "segment": "G1 X{x:.3f} Y{y:.3f} F{feed}\n",
        "line_end": "M3 S{pen_up}\nG4 P{dwell}\n",
        "document_end": "G0 X0 Y0\nM5\nM2\n",
        "unit": "mm",
        "vertical_flip": True,
        "default_values": {"pen_up": 50, "pen_down": 30, "dwell": 0.2, "feed": 2000},
    },
}


def _vpype():
    try:
        import vpype
        import vpype_cli
    except ImportError:
        raise HwkitError("plotter output needs vpype: pip install 'hwkit[plotter]'") from None
    return vpype, vpype_cli


def polylines(page: Page, tolerance: float = TOLERANCE) -> list[np.ndarray]:
    """Each stroke as the flattened polyline a plotter draws, ``(k, 2)`` mm, in the written order."""
    return [curves.flatten(beziers, steps=4) for beziers in page.beziers(tolerance / 2)]


def travel(lines: list[np.ndarray]) -> float:
    """Pen-up distance (mm) from the end of each polyline to the start of the next."""
    return float(sum(np.hypot(*(b[0] - a[-1])) for a, b in itertools.pairwise(lines)))


def vpype_document(page: Page, tolerance: float = TOLERANCE, sort: bool = True):
    """The page as a vpype ``Document`` (vpype's units: CSS px) with its page size, strokes sorted."""
    vp, vpype_cli = _vpype()
    mm = vp.convert_length("mm")
    lines = polylines(page, tolerance)
    document = vp.Document(page_size=(page.width * mm, page.height * mm))
    document.add(vp.LineCollection([(p[:, 0] + 1j * p[:, 1]) * mm for p in lines]), layer_id=1)
    if sort and len(lines) > 1:
        sorted_doc = vpype_cli.execute("linesort", document=document)  # works on a copy
        if sorted_doc.layers[1].pen_up_length()[0] < document.layers[1].pen_up_length()[0]:
            sorted_doc.page_size = document.page_size
            document = sorted_doc
    return document


def write_svg(page: Page, path: str | Path, *, tolerance: float = TOLERANCE, pen_width: float = 0.4) -> None:
    """Single-line SVG in mm at the page's size: one polyline path per stroke, no fills, in plotting order.

    Written here rather than by ``vpype.write_svg``, which gives the size in cm
    and the coordinates in CSS px; plotter software reads mm directly.
    """
    import svgwrite

    vp, _ = _vpype()
    document = vpype_document(page, tolerance)
    to_mm = 1 / vp.convert_length("mm")
    dwg = svgwrite.Drawing(size=(f"{page.width:g}mm", f"{page.height:g}mm"), debug=False)
    dwg.viewbox(0, 0, page.width, page.height)
    ink = dwg.g(fill="none", stroke="black", stroke_width=pen_width, stroke_linecap="round", stroke_linejoin="round")
    for line in document.layers.get(1, []):
        xy = " ".join(f"{z.real * to_mm:.3f},{z.imag * to_mm:.3f}" for z in line)
        ink.add(dwg.path(d=f"M{xy.split(' ', 1)[0]} L{xy}"))
    dwg.add(ink)
    Path(path).write_text(dwg.tostring(), encoding="utf-8")


def write_gcode(page: Page, path: str | Path, *, profile: str = "hwkit-z", settings: Mapping[str, str] = (),
                tolerance: float = TOLERANCE) -> None:  # fmt: skip
    """G-code (or any vpype-gcode profile's format) for the page; ``settings`` override the profile's values."""
    vp, vpype_cli = _vpype()
    import vpype_gcode.gwrite  # noqa: F401  (loads vpype-gcode's own profiles into vpype's config)

    config = vp.config_manager.config.setdefault("gwrite", {})
    for name, values in GCODE_PROFILES.items():
        config.setdefault(name, values)
    if profile not in config or profile == "default_profile":
        known = ", ".join(sorted(k for k in config if k != "default_profile"))
        raise OptionError("gcode_profile", f"{profile!r}: no such profile (known: {known}; or add one to ~/.vpype.toml)")
    settings = dict(settings)
    origin = settings.pop("origin", None)
    if origin is not None:  # a variant of the profile with the y axis the other way
        if origin not in ("bottom-left", "top-left"):
            raise OptionError("gcode_set", f"origin={origin}: bottom-left (y up) or top-left (y down)")
        config[f"{profile}@{origin}"] = {**config[profile], "vertical_flip": origin == "bottom-left"}
        profile = f"{profile}@{origin}"
    defaults = " ".join(f"-d {shlex.quote(str(k))} {shlex.quote(str(v))}" for k, v in settings.items())
    document = vpype_document(page, tolerance)
    vpype_cli.execute(f"gwrite -p {shlex.quote(profile)} {defaults} {shlex.quote(str(path))}", document=document)


def write_hpgl(page: Page, path: str | Path, *, device: str = "hp7475a", paper: str | None = None,
               tolerance: float = TOLERANCE) -> None:  # fmt: skip
    """HPGL for a plotter vpype knows (``device``), on its paper format ``paper`` (default: the page's A-size)."""
    vp, _ = _vpype()
    plotter = vp.config_manager.get_plotter_config(device)
    if plotter is None:
        known = ", ".join(vp.config_manager.config.get("device", {}))
        raise OptionError("hpgl_device", f"{device!r}: unknown plotter (known: {known})")
    document = vpype_document(page, tolerance)
    formats = [p.name for p in plotter.paper_configs]
    name = paper or _paper_name(page, formats)
    if name not in formats:
        raise OptionError("hpgl_paper", f"{device} takes {', '.join(formats)}; give --hpgl-paper one of them")
    landscape = page.width > page.height
    with open(path, "w", encoding="ascii") as f:
        vp.write_hpgl(f, document, page_size=name, landscape=landscape, center=False, device=device, velocity=None,
                      absolute=True, quiet=True)  # fmt: skip


def _paper_name(page: Page, formats: list[str]) -> str:
    from hwkit.page import PAPER_SIZES

    for name, (w, h) in PAPER_SIZES.items():
        if name in formats and {round(w), round(h)} == {round(page.width), round(page.height)}:
            return name
    return formats[0]
