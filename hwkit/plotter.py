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
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hwkit import curves
from hwkit.errors import HwkitError, OptionError
from hwkit.page import Line, Page

TOLERANCE = 0.05  # mm
CUT_ALLOWED = 0.002  # of a page's ink that HPGL may lose to rounding to whole plotter units before it is an error
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


def gcode_profile(profile: str, settings: Mapping[str, str]) -> tuple[str, dict]:
    """The gwrite profile to write with and the values to give it, checked: the profile exists, each key
    of ``settings`` is one of its values (or ``origin``), and a value whose default is a number is one.
    ``origin`` picks a variant of the profile with the y axis the other way."""
    vp, _ = _vpype()
    import vpype_gcode.gwrite  # noqa: F401  (loads vpype-gcode's own profiles into vpype's config)

    config = vp.config_manager.config.setdefault("gwrite", {})
    for name, values in GCODE_PROFILES.items():
        config.setdefault(name, values)
    if profile not in config or profile == "default_profile":
        known = ", ".join(sorted(k for k in config if k != "default_profile"))
        raise OptionError("gcode_profile", f"{profile!r}: no such profile (known: {known}; or add one to ~/.vpype.toml)")
    settings = dict(settings)
    origin = settings.pop("origin", None)
    defaults = config[profile].get("default_values", {})
    for key, value in settings.items():
        if defaults and key not in defaults:
            raise OptionError("gcode_set", f"{key}: not a value of {profile} (its values: {', '.join(defaults)}, origin)")
        if isinstance(defaults.get(key), (int, float)):
            try:
                float(value)
            except ValueError:
                raise OptionError("gcode_set", f"{key}={value}: give a number") from None
    if origin is not None:  # a variant of the profile with the y axis the other way
        if origin not in ("bottom-left", "top-left"):
            raise OptionError("gcode_set", f"origin={origin}: bottom-left (y up) or top-left (y down)")
        config[f"{profile}@{origin}"] = {**config[profile], "vertical_flip": origin == "bottom-left"}
        profile = f"{profile}@{origin}"
    return profile, settings


def write_gcode(page: Page, path: str | Path, *, profile: str = "hwkit-z", settings: Mapping[str, str] = (),
                tolerance: float = TOLERANCE) -> None:  # fmt: skip
    """G-code (or any vpype-gcode profile's format) for the page; ``settings`` override the profile's values
    (``gcode_profile``)."""
    _, vpype_cli = _vpype()
    profile, settings = gcode_profile(profile, settings)
    defaults = " ".join(f"-d {shlex.quote(str(k))} {shlex.quote(str(v))}" for k, v in settings.items())
    document = vpype_document(page, tolerance)
    vpype_cli.execute(f"gwrite -p {shlex.quote(profile)} {defaults} {shlex.quote(str(path))}", document=document)


def hpgl_paper(device: str, width: float, height: float, paper: str | None = None) -> str:
    """The paper format of plotter ``device`` that a ``width`` x ``height`` mm page is plotted on:
    ``paper`` if given (the device must take it, and it must hold the page), else the device's format of
    the page's size, else its first format if that holds the page, else the smallest that does (either
    way round). A page no format holds is refused: vpype would leave out whatever falls off the paper."""
    vp, _ = _vpype()
    try:
        plotter = vp.config_manager.get_plotter_config(device)
    except ValueError as exc:  # vpype's own entry for the device does not load
        raise OptionError("hpgl_device", f"{device!r}: vpype's settings for it do not load ({exc})") from None
    if plotter is None:
        known = ", ".join(vp.config_manager.config.get("device", {}))
        raise OptionError("hpgl_device", f"{device!r}: unknown plotter (known: {known})")
    sizes = {p.name: sorted(round(v * 25.4 / 96, 1) for v in p.paper_size) for p in plotter.paper_configs if p.paper_size}
    page = sorted((width, height))
    holds = sorted((size[0] * size[1], name) for name, size in sizes.items()
                   if all(a + 0.5 >= b for a, b in zip(size, page)))  # fmt: skip
    if paper is not None:
        if paper not in sizes:
            raise OptionError("hpgl_paper", f"{paper!r}: {device} takes {', '.join(sizes)}")
        if paper not in (name for _, name in holds):
            raise OptionError("hpgl_paper", f"a {width:g} x {height:g} mm page does not fit {device}'s {paper} paper "
                              f"({sizes[paper][1]:g} x {sizes[paper][0]:g} mm)")  # fmt: skip
        return paper
    exact = [name for name, size in sizes.items() if all(abs(a - b) < 1.5 for a, b in zip(size, page))]
    if not exact and not holds:
        raise OptionError("hpgl_device", f"a {width:g} x {height:g} mm page is larger than any paper {device} takes "
                          f"({', '.join(f'{n} {s[1]:g} x {s[0]:g} mm' for n, s in sizes.items())})")  # fmt: skip
    first = next(iter(sizes))  # the device's first format, what it plotted on before the page had a say
    return exact[0] if exact else first if any(name == first for _, name in holds) else holds[0][1]


def write_hpgl(page: Page, path: str | Path, *, device: str = "hp7475a", paper: str | None = None,
               tolerance: float = TOLERANCE) -> None:  # fmt: skip
    """HPGL for a plotter vpype knows (``device``), on its paper format ``paper`` (see ``hpgl_paper``)."""
    Path(path).write_text(_hpgl(page, device, paper, tolerance), encoding="ascii")


def check_hpgl_reach(device: str, width: float, height: float, margins: tuple[float, float, float, float],
                     paper: str | None = None) -> None:  # fmt: skip
    """Refuse, before any writing, a page whose area inside its ``margins`` (top right bottom left, mm)
    the device cannot reach on its paper: the HPGL of that area's outline loses ink."""
    top, right, bottom, left = margins
    corners = np.array([[left, top], [width - right, top], [width - right, height - bottom], [left, height - bottom]])
    outline = np.concatenate([np.linspace(corners[k], corners[(k + 1) % 4], 100) for k in range(4)])
    _hpgl(Page(width, height, [Line("", [outline])]), device, paper, TOLERANCE)


def _hpgl(page: Page, device: str, paper: str | None, tolerance: float) -> str:
    """The HPGL text of a page, refused where vpype would crop ink the device cannot reach (it says nothing)."""
    import io

    vp, _ = _vpype()
    name = hpgl_paper(device, page.width, page.height, paper)
    document = vpype_document(page, tolerance)
    out = io.StringIO()
    vp.write_hpgl(out, document, page_size=name, landscape=page.width > page.height, center=False, device=device,
                  velocity=None, absolute=True, quiet=True)  # fmt: skip
    unit = vp.config_manager.get_plotter_config(device).plotter_unit_length / vp.convert_length("mm")
    drawn, ink = _pen_down_length(out.getvalue()) * unit, document.length() / vp.convert_length("mm")
    if drawn < ink * (1 - CUT_ALLOWED):
        raise OptionError("hpgl_paper", f"{device} on its {name} paper reaches only part of the page: {ink - drawn:.0f} "
                          f"of {ink:.0f} mm of ink would be cut off (wider margins, or another --hpgl-paper)")  # fmt: skip
    return out.getvalue()


def _pen_down_length(hpgl: str) -> float:
    """Pen-down path length of absolute HPGL (PU/PD with coordinates), in plotter units."""
    total, pos = 0.0, None
    for cmd in hpgl.replace("\n", "").split(";"):
        if cmd[:2] not in ("PU", "PD"):
            continue
        xy = np.array([int(v) for v in re.findall(r"-?\d+", cmd[2:])], float).reshape(-1, 2)
        if cmd[:2] == "PD" and len(xy) and pos is not None:
            total += float(np.hypot(*np.diff(np.vstack([pos, xy]), axis=0).T).sum())
        if len(xy):
            pos = xy[-1]
    return total
