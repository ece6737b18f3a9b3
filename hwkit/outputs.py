"""Sampled handwriting -> files: which file each format goes to, and the writers.

Every front end (``hwkit sample``, the evaluation grids, a web page) names
formats and an output path the same way and gets the same files:

    svg       .svg            the lines laid out on a page, with captions
    png       .png            the same picture as a PNG
    animate   .animated.svg   the pen replaying each line
    npz       .npz            raw offsets in pen units (flat + line_offsets), no pickle
    json      .json           raw offsets in pen units, per line
    inkml     .inkml          W3C InkML: a trace group per line (its text the truth), a trace per stroke
    attention .attention.png  synthesis window weights over time (a plot)
    density   .density.png    the predicted mixture along each line (a plot)

Pages (``hwkit sample --page``) have their own formats, one file per page
(``letter-1.svg``, ``letter-2.svg``; a single page keeps the plain name) except
the PDF, which holds every page:

    svg       .svg            the page in mm, strokes as smooth curves
    png       .png            the page as a picture (150 dpi)
    pdf       .pdf            every page, for print
    plotter   .plotter.svg    single-line SVG in mm, strokes in plotting order (vpype)
    gcode     .gcode          G-code (a vpype-gcode profile)
    hpgl      .hpgl           HPGL for a plotter vpype knows

``plan`` decides the paths before any work is done (a bad ``-o`` fails fast);
``write`` and ``write_pages`` write each file atomically (a crash never leaves
half a picture).
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwkit.errors import HwkitError, OptionError
from hwkit.files import atomic_path, check_can_write
from hwkit.paths import SAMPLES_DIR, timestamp

FORMATS = {"svg": ".svg", "png": ".png", "animate": ".animated.svg", "npz": ".npz", "json": ".json",
           "inkml": ".inkml"}  # fmt: skip
PLOTS = {"attention": ".attention.png", "density": ".density.png"}
PAGE_FORMATS = {"svg": ".svg", "png": ".png", "pdf": ".pdf", "plotter": ".plotter.svg", "gcode": ".gcode",
                "hpgl": ".hpgl"}  # fmt: skip


def plan(formats: Sequence[str], output: str | os.PathLike | None, plots: Sequence[str] = (),
         table: dict[str, str] = FORMATS) -> dict[str, Path]:  # fmt: skip
    """Where each chosen format and plot goes (format name -> path).

    No ``output``: ``samples/<date>-<time>`` + each suffix (numbered when taken);
    an ``output`` that is a folder, or ends in a slash, puts the same names in it.
    ``output`` without a format's suffix is the stem, dots and all (``my.letter``,
    ``run.v2``), unless its suffix names another file type (``.jpg``, ``.txt``: by
    Python's built-in MIME table, the same on every machine), which is refused as a
    format hwkit does not write. With a format's suffix (any
    case): with no ``formats`` that suffix picks the format and ``output`` is its
    file; with ``formats`` the suffix must be one of theirs (an animation or a
    plotter SVG may also be ``.svg``) and the other formats share its stem.
    ``table`` is ``FORMATS`` or ``PAGE_FORMATS``. Anything else is an
    ``OptionError`` on ``output``. No formats means SVG. Each target is proven
    writable (``files.check_can_write``), before any sampling.
    """
    unknown = [f for f in (*formats, *plots) if f not in table and f not in PLOTS]
    if unknown:
        raise OptionError("formats", f"unknown format {unknown[0]!r} (known: {', '.join([*table, *PLOTS])})")
    chosen, exact = list(formats), None
    if output is None or str(output).endswith(("/", os.sep)) or Path(output).is_dir():
        folder = SAMPLES_DIR if output is None else Path(output)
        stamp = timestamp()
        stem, k = folder / stamp, 1
        while any(stem.with_name(stem.name + s).exists() for s in (*table.values(), *PLOTS.values())):
            k += 1
            stem = folder / f"{stamp}-{k}"
        chosen = chosen or ["svg"]
    else:
        output = Path(output)
        name = output.name
        by_length = sorted(table, key=lambda f: len(table[f]), reverse=True)
        matched = next((f for f in by_length if name.lower().endswith(table[f]) and len(name) > len(table[f])), None)
        if matched is None:
            if mimetypes.MimeTypes(filenames=()).guess_type(name)[0] is not None:  # not /etc/mime.types
                raise OptionError("output", f"{output}: unknown suffix {Path(name).suffix!r} (known: "
                                  f"{', '.join(table.values())}; or none, to add each format's own)")  # fmt: skip
            stem, chosen = output, chosen or ["svg"]
        else:
            suffix = name[len(name) - len(table[matched]) :]
            stem = output.with_name(name[: len(name) - len(suffix)])
            chosen = chosen or [matched]
            if matched in chosen:
                exact = matched
            elif matched == "svg" and "svg" not in chosen and any(table[f].endswith(".svg") for f in chosen):
                exact = next(f for f in chosen if table[f].endswith(".svg"))
            else:
                picked = " ".join(f"--{f}" for f in chosen)
                raise OptionError("output", f"{output}: the suffix {suffix} does not fit {picked}; give it without "
                                  f"a suffix (e.g. {stem}) or one of {', '.join(table[f] for f in chosen)}")  # fmt: skip
    targets = {name: stem.with_name(stem.name + table[name]) for name in chosen}
    if exact is not None:
        targets[exact] = output
    targets.update({name: stem.with_name(stem.name + PLOTS[name]) for name in plots})
    for path in targets.values():
        check_can_write(path)
    return targets


def check_colour(colour: str, pages: bool = False) -> None:
    """A colour name or #rrggbb, or (not on pages) 'stroke' (one per stroke) or 'eos' (shaded by end-of-stroke
    probability)."""
    from PIL import ImageColor

    if colour in ("stroke", "eos"):
        if pages:
            raise OptionError("colour", f"{colour!r} colours lines, not pages: give a colour name or #rrggbb")
        return
    try:
        ImageColor.getrgb(colour)
    except ValueError:
        raise OptionError("colour", f"{colour!r} is not a colour name or #rrggbb") from None


def write(
    result, targets: dict[str, Path], *, colour: str = "black", stroke_width: float = 1.6, captions: bool = True
) -> list[Path]:
    """Write a ``sample.SampleResult`` to each of ``targets`` (from ``plan``); return the paths written.

    ``colour`` 'eos' shades the SVG and PNG by the predicted end-of-stroke
    probability; the animation is then drawn in black.
    """
    from hwkit import render

    check_colour(colour)
    lines = [line.offsets for line in result.lines]
    texts = [line.text for line in result.lines] if captions else None
    style = render.Style(colour="black" if colour == "eos" else colour, width=stroke_width)
    placed = render.layout(lines, texts, style) if {"svg", "png"} & set(targets) else None
    shade = [line.eos for line in result.lines] if colour == "eos" else None
    for target in targets.values():
        _make_parent(target)
    for name, target in targets.items():
        with atomic_path(target) as tmp:
            if name == "svg":
                svg = render.layout_svg(placed) if shade is None else render.shaded_svg(placed, shade)
                tmp.write_text(svg, encoding="utf-8")
            elif name == "png":
                image = render.layout_png(placed) if shade is None else render.shaded_png(placed, shade)
                image.save(tmp, format="PNG")
            elif name == "animate":
                from hwkit.animate import animated_svg

                tmp.write_text(animated_svg(lines, texts, style), encoding="utf-8")
            elif name == "npz":
                with open(tmp, "wb") as f:  # a file object: numpy adds no second .npz
                    np.savez_compressed(f, **result.as_arrays())
            elif name == "json":
                tmp.write_text(json.dumps(result.as_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
            elif name == "inkml":
                from hwkit.inkml import write_inkml

                tmp.write_text(write_inkml([(line.offsets, line.text) for line in result.lines]), encoding="utf-8")
            elif name == "attention":
                from hwkit.heatmaps import attention_figure

                attention_figure(result.lines, tmp)
            elif name == "density":
                from hwkit.heatmaps import density_figure

                density_figure(result.lines, tmp)
    return list(targets.values())


def write_pages(pages, targets: dict[str, Path], *, colour: str = "black", pen_width: float = 0.4,
                tolerance: float = 0.05, gcode_profile: str = "hwkit-z", gcode_settings: dict | None = None,
                hpgl_device: str = "hp7475a", hpgl_paper: str | None = None) -> list[Path]:  # fmt: skip
    """Write ``page.Page`` s to each of ``targets`` (from ``plan(..., table=PAGE_FORMATS)``); return the paths.

    Every format but the PDF writes one file per page, numbered ``-1``, ``-2``
    ... when there are several pages.
    """
    from hwkit import paper, plotter

    check_colour(colour, pages=True)
    looks = {"colour": colour, "pen_width": pen_width, "tolerance": tolerance}
    written = []
    for name, target in targets.items():
        _make_parent(target)
        if name == "pdf":
            with atomic_path(target) as tmp:
                paper.write_pdf(pages, tmp, **looks)
            written.append(target)
            continue
        for k, page in enumerate(pages, 1):
            path = target if len(pages) == 1 else _numbered(target, PAGE_FORMATS[name], k)
            with atomic_path(path) as tmp:
                if name == "svg":
                    tmp.write_text(paper.page_svg(page, **looks), encoding="utf-8")
                elif name == "png":
                    paper.page_png(page, **looks).save(tmp, format="PNG")
                elif name == "plotter":
                    plotter.write_svg(page, tmp, tolerance=tolerance, pen_width=pen_width)
                elif name == "gcode":
                    plotter.write_gcode(page, tmp, profile=gcode_profile, settings=gcode_settings or {},
                                        tolerance=tolerance)  # fmt: skip
                elif name == "hpgl":
                    plotter.write_hpgl(page, tmp, device=hpgl_device, paper=hpgl_paper, tolerance=tolerance)
            written.append(path)
    return written


def stale_pages(targets: dict[str, Path], pages: int) -> list[Path]:
    """Numbered page files next to ``targets`` that a run of ``pages`` pages did not write: left from an
    earlier, longer run of the same name, and easy to send to a plotter by mistake."""
    stale = []
    for name, target in targets.items():
        if name == "pdf":
            continue
        k = 1 if pages == 1 else pages + 1
        while (path := _numbered(target, PAGE_FORMATS[name], k)).exists():
            stale.append(path)
            k += 1
    return stale


def _numbered(path: Path, suffix: str, k: int) -> Path:
    """``letter.plotter.svg`` -> ``letter-2.plotter.svg`` (the format's suffix, else the last one, kept)."""
    name = path.name
    cut = len(name) - len(suffix) if name.lower().endswith(suffix) and len(name) > len(suffix) else len(path.stem)
    return path.with_name(f"{name[:cut]}-{k}{name[cut:]}")


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwkitError(f"{target.parent}: cannot create the output folder ({exc.strerror or exc})") from None
