"""``hwkit sample``: a thin click wrapper around ``hwkit.generate`` and ``hwkit.outputs``."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import (
    escape,
    given,
    read_lines,
    read_text,
    stderr_console,
    threads_option,
)
from hwkit.cli._page import PAGE_ONLY, page_options

STOP_WORDS = {
    "rule": "stopped by the attention rule",
    "cap": "hit the length cap",
    "length": "reached --length",
    "strokes": "reached --strokes",
}


@click.command()
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@click.option("--text", "texts", multiple=True, help="Text to write (synthesis); repeat for several lines.")
@click.option("--text-file", type=click.File("r", encoding="utf-8"), help="Text to write, from a file ('-': stdin).")
@click.option("--width", type=click.IntRange(min=1), default=50, show_default=True,
              help="Wrap text into lines of at most this many characters.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1, show_default=True,
              help="Lines to write (prediction), or versions of each text line (synthesis).")
@click.option("--length", type=click.IntRange(min=2), help="Points per unconditional line.  [default: 700]")
@click.option("--strokes", type=click.IntRange(min=1), help="End unconditional lines after this many pen lifts.")
@click.option("--bias", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Sampling bias (Graves sec. 5.4): 0 samples as trained; higher is neater and less varied.")
@click.option("--seed", type=int, help="Random seed; the same seed gives the same lines on the same machine and threads "
                                     "[default: random, reported].")
@click.option("--style", "styles", multiple=True, metavar="LINE_ID|FILE",
              help="Write in the hand of a store line or a style file (hwkit style export); 'auto': one of the "
                   "model's house hands (else a train line of its store) chosen by the seed; 'none': unprimed. "
                   "Repeatable.  [default: auto for a model with house hands, as the bundled one]")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              help="Store for --style LINE_ID [default: the checkpoint's store].")
@click.option("--keep-prime", is_flag=True, help="Show the --style line before the new writing.")
@click.option("--tries", type=click.IntRange(min=1),
              help="Synthesis: write each line this many times and keep the one the model's recognizer reads best "
                   "(a line none of them reads right, that many times more, once). "
                   "[default: 4 when the model has one (the bundled model does, and hwkit evaluate trains one "
                   "for a store), else 1]")
@click.option("--replace-unknown", is_flag=True,
              help="Replace characters the model lacks with the nearest it has (or a space).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present, else CPU.")
@threads_option
@click.option("--svg", is_flag=True, help="Write an SVG (the default when no other format is chosen).")
@click.option("--png", is_flag=True, help="Write a PNG.")
@click.option("--animate", is_flag=True, help="Write an animated SVG replaying the pen.")
@click.option("--npz", is_flag=True, help="Write the raw offsets (pen units) as .npz: offsets, line_offsets, text.")
@click.option("--json", "as_json", is_flag=True, help="Write the raw offsets (pen units) as JSON.")
@click.option("--inkml", is_flag=True, help="Write W3C InkML (hwkit prepare reads it back).")
@click.option("--plot-attention", is_flag=True, help="Also draw the window weights over time (synthesis).")
@click.option("--plot-density", is_flag=True, help="Also draw the predicted density along each line.")
@click.option("-o", "--output", type=click.Path(),
              help="Output file: its suffix (.svg, .png, .animated.svg, .npz, .json, .inkml) picks the format and must "
                   "match the format flags; without one (a dot in the name is kept: my.letter), each format's suffix is "
                   "added; a folder (or a name "
                   "ending in /) gets <date>-<time> files [default: samples/<date>-<time>].")
@click.option("--colour", default="black", show_default=True,
              help="Ink colour (a colour name or #rrggbb), 'stroke' (one per stroke) or 'eos' "
                   "(shaded blue to red by the predicted end-of-stroke probability).")
@click.option("--stroke-width", type=click.FloatRange(min=0, min_open=True),
              help="Pen width: pixels, or mm with --page.  [default: 1.6 px, 0.4 mm]")
@click.option("--captions/--no-captions", default=True, show_default=True, help="Write each line's text under it.")
@page_options
@click.pass_context
def sample(ctx: click.Context, checkpoint: Path | None, texts: tuple[str, ...], text_file, styles: tuple[str, ...], svg: bool, png: bool,
           animate: bool, npz: bool, as_json: bool, inkml: bool, plot_attention: bool, plot_density: bool,
           output: str | None,
           colour: str, stroke_width: float, captions: bool, **options) -> None:  # fmt: skip
    """Write handwriting with a trained network: from text, or freely.

    CHECKPOINT is a .pt file or a run folder [default: the newest
    models/*/best.pt; with --text the newest synthesis one, else the bundled
    demo model].
    A synthesis checkpoint writes --text (or --text-file), wrapped to --width
    characters a line; a line ends when the attention window has passed its
    last character, or at 40 points per character + 100 as a safety net. A
    prediction checkpoint writes --n lines of --length points without text.
    All lines run as one batch. --style primes the network with a real line
    (Graves sec. 5.5) and continues in that hand; a model that carries house
    hands (the bundled one) writes in one of them unless --style says
    otherwise. --tries draws each line several times and keeps the draw its
    recognizer reads closest to the text (a line no draw reads right is
    drawn as often again, once). -o out/page writes
    out/page.svg (and .png, .npz, ... for each format flag); -o page.png alone
    picks PNG; a suffix that contradicts the format flags is refused. Missing
    folders are created. --page lays the text out on paper instead, in one
    hand, wrapped by the measured width of the words (blank line: paragraph;
    form feed: page), to SVG/PNG/PDF and plotter SVG, G-code or HPGL. The file paths written are printed on stdout; notes go
    to stderr.

    \b
    Examples:
      hwkit sample --text "hello world" --bias 1 --seed 7 --png
      hwkit sample --text "hello world" --style none --tries 1 --png
      hwkit sample models/synthesis-20240101-120000 --text-file poem.txt --animate
      hwkit sample --text "in my hand" --style a01-000u-01 --store cache/demo.h5 --n 3 -o hand.svg
      hwkit sample --page A5 --text-file letter.txt --bias 1 --png --pdf --gcode
    """
    from hwkit import outputs
    from hwkit.errors import OptionError, TextError
    from hwkit.generate import generate

    page = {name: options.pop(name) for name in ("page", *PAGE_ONLY)}
    if page["page"] is not None:
        from hwkit.cli import _page

        text = "\n".join([*texts, *([read_text(text_file, "--text-file")] if text_file else [])])
        return _page.run(ctx, text, page, checkpoint=checkpoint, styles=styles, output=output, colour=colour,
                         stroke_width=stroke_width, svg=svg, png=png, **{k: options[k] for k in _page.SHARED})
    wrong = given(ctx, PAGE_ONLY)
    if wrong:
        raise OptionError(wrong[0].lstrip("-").replace("-", "_"), "only with --page")
    chosen = [name for name, on in (("svg", svg), ("png", png), ("animate", animate), ("npz", npz),
                                    ("json", as_json), ("inkml", inkml)) if on]  # fmt: skip
    plots = [name for name, on in (("attention", plot_attention), ("density", plot_density)) if on]
    outputs.check_colour(colour)
    targets = outputs.plan(chosen, output, plots)  # a bad -o: exit 2 before any work
    err = stderr_console()
    if colour == "eos" and "animate" in targets:
        err.print("note: the animation is drawn in one colour (black); --colour eos shades the SVG and PNG only")
    requested = [*texts, *(read_lines(text_file, "--text-file") if text_file else [])]
    if text_file and not any(line.strip() for line in requested):
        raise TextError(f"{text_file.name}: the text to write is empty")
    made = generate(checkpoint, requested, styles=styles, attention=plot_attention, **options)
    for note in made.notes:
        err.print(f"note: {escape(note)}")
    err.print(f"sampled {made.kind} on {made.device} with {escape(str(made.checkpoint))}")
    written = outputs.write(made.result, targets, colour=colour, stroke_width=stroke_width or 1.6, captions=captions)
    summary = ", ".join(f"{c} {STOP_WORDS[r]}" for r, c in sorted(made.result.stop_counts().items()))
    err.print(f"{len(made.result.lines)} line(s), seed {made.result.seed}, bias {made.bias:g}: {summary}")
    blank = sum(len(line.offsets) - line.prime_rows < 2 for line in made.result.lines)
    if blank:
        err.print(f"warning: {blank} line(s) came out empty: the model ended them before writing (undertrained?)")
    for target in written:
        click.echo(str(target))
