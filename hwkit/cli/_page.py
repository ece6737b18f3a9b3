"""``hwkit sample --page``: the page options and the page flow (``hwkit.letter`` + ``outputs.write_pages``)."""

from __future__ import annotations

import click

from hwkit.cli._common import escape, given, progress_bar, stderr_console

# sample's options that mean nothing on a page; given with --page they are refused
LINE_ONLY = ("width", "n", "length", "strokes", "keep_prime", "animate", "npz", "as_json", "inkml",
             "plot_attention", "plot_density", "captions")  # fmt: skip
PAGE_ONLY = ("margin", "size", "line_spacing", "align", "indent", "straighten", "pdf", "plotter", "gcode", "hpgl",
             "gcode_profile", "gcode_set", "hpgl_device", "hpgl_paper", "tolerance", "batch")  # fmt: skip
SHARED = ("store", "bias", "seed", "tries", "replace_unknown", "device")  # sample's options that pages use too

_OPTIONS = [
    click.option("--page", metavar="SIZE", help="Lay the text out on pages: A3, A4, A5, A6, letter, legal or WxH "
                 "with a unit (120x180mm, 5x7in). Blank line: new paragraph; form feed: new page."),
    click.option("--margin", default="20mm", show_default=True, help="Page margins, 1-4 lengths as in CSS."),
    click.option("--size", type=click.FloatRange(min=0, min_open=True), default=3.5, show_default=True,
                 help="x-height of the writing, mm."),
    click.option("--line-spacing", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
                 help="Baseline to baseline, in x-heights."),
    click.option("--align", type=click.Choice(["left", "centre", "right"]), default="left", show_default=True,
                 help="Where lines sit between the margins."),
    click.option("--indent", default="0mm", show_default=True, help="Indent of each paragraph's first line."),
    click.option("--straighten", is_flag=True, help="Level each line (default: keep the hand's drift)."),
    click.option("--pdf", is_flag=True, help="Page mode: write one PDF of all pages."),
    click.option("--plotter", is_flag=True, help="Page mode: single-line SVG in mm, strokes in plotting order."),
    click.option("--gcode", is_flag=True, help="Page mode: write G-code (see --gcode-profile)."),
    click.option("--hpgl", is_flag=True, help="Page mode: write HPGL (see --hpgl-device)."),
    click.option("--gcode-profile", default="hwkit-z", show_default=True,
                 help="hwkit-z (pen as Z heights), hwkit-servo (M3 S servo), or a gwrite profile of ~/.vpype.toml."),
    click.option("--gcode-set", multiple=True, metavar="KEY=VALUE",
                 help="Change a profile value: feed, z_up, z_down, plunge; pen_up, pen_down, dwell (servo); "
                      "origin=top-left|bottom-left."),
    click.option("--hpgl-device", default="hp7475a", show_default=True, help="A plotter vpype knows."),
    click.option("--hpgl-paper", metavar="FORMAT", help="The plotter's paper format, by vpype's name (a4, a3, a, b, "
                 "...) [default: the one of the page's size, else the device's first that holds the page]."),
    click.option("--tolerance", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
                 help="Page mode: how far a smoothed stroke may pass from a sampled point, mm."),
    click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
                 help="Page mode: lines per network batch."),
]


def page_options(command):
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def run(ctx: click.Context, text: str, page: dict, *, checkpoint, styles, store, bias, seed, tries, replace_unknown,
        device, output, colour, stroke_width, svg, png) -> None:  # fmt: skip
    """Write ``text`` on pages and the chosen page files; print the paths."""
    from hwkit import outputs
    from hwkit.errors import OptionError
    from hwkit.letter import write_document
    from hwkit.page import Setting, parse_length, parse_margins, parse_paper

    wrong = given(ctx, LINE_ONLY)
    if wrong:
        raise OptionError(wrong[0].lstrip("-").replace("-", "_"), "does not apply to pages (--page)")
    outputs.check_colour(colour, pages=True)
    if len(styles) > 1:
        raise OptionError("style", "a page is written in one hand: give one --style")
    settings = {}
    for item in page["gcode_set"]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OptionError("gcode_set", f"{item!r}: give KEY=VALUE, e.g. feed=3000")
        settings[key] = value
    setting = Setting(paper=parse_paper(page["page"]), margins=parse_margins(page["margin"]), size=page["size"],
                      line_spacing=page["line_spacing"], indent=parse_length(page["indent"], "indent"),
                      align=page["align"], straighten=page["straighten"])  # fmt: skip
    chosen = [name for name in outputs.PAGE_FORMATS if (svg if name == "svg" else png if name == "png" else page[name])]
    targets = outputs.plan(chosen, output, table=outputs.PAGE_FORMATS)
    if "gcode" in chosen or "hpgl" in chosen:  # the plotter's settings are checked before the writing
        from hwkit import plotter

        if "gcode" in chosen:
            plotter.gcode_profile(page["gcode_profile"], settings)
        if "hpgl" in chosen:
            plotter.check_hpgl_reach(page["hpgl_device"], *setting.paper, setting.margins, page["hpgl_paper"])
    err = stderr_console()
    with progress_bar("writing", unit="lines") as advance:
        last = [0]

        def progress(event: dict) -> None:
            advance(event["done"] - last[0], total=event["total"], status=f"round {event['round']}")
            last[0] = event["done"]

        letter = write_document(text, setting, checkpoint, style=styles[0] if styles else None, store=store,
                                bias=bias, seed=seed, tries=tries, batch=page["batch"], replace_unknown=replace_unknown,
                                device=device, progress=progress)  # fmt: skip
    for note in letter.notes:
        err.print(f"note: {escape(note)}")
    doc = letter.document
    written = outputs.write_pages(doc.pages, targets, colour=colour, pen_width=stroke_width or 0.4,
                                  tolerance=page["tolerance"], gcode_profile=page["gcode_profile"],
                                  gcode_settings=settings, hpgl_device=page["hpgl_device"],
                                  hpgl_paper=page["hpgl_paper"])  # fmt: skip
    err.print(f"{len(doc.pages)} page(s), {len(doc.lines)} line(s) in {doc.rounds} round(s) of writing and "
              f"measuring ({doc.written} lines written), seed {letter.seed}, bias {bias:g}, "
              f"with {escape(str(letter.checkpoint))}")  # fmt: skip
    stale = outputs.stale_pages(targets, len(doc.pages))
    if stale:
        err.print(f"note: left from an earlier run, not this one's: {escape(', '.join(str(p) for p in stale))}")
    for target in written:
        click.echo(str(target))
