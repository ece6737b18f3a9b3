"""``hwkit sample``: a thin click wrapper around ``hwkit.sample``, ``hwkit.render``,
``hwkit.animate`` and ``hwkit.heatmaps``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from hwkit.cli._common import MODELS_DIR, escape, stderr_console

SAMPLES_DIR = Path("samples")
FORMATS = {"svg": ".svg", "png": ".png", "animate": ".animated.svg", "npz": ".npz", "json": ".json"}
PLOTS = {"attention": ".attention.png", "density": ".density.png"}
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
@click.option("--length", type=click.IntRange(min=2), default=700, show_default=True,
              help="Points per unconditional line.")
@click.option("--strokes", type=click.IntRange(min=1), help="End unconditional lines after this many pen lifts.")
@click.option("--bias", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Sampling bias (Graves sec. 5.4): 0 samples as trained; higher is neater and less varied.")
@click.option("--seed", type=int, help="Random seed; the same seed gives the same lines on the same machine and threads "
                                     "[default: random, reported].")
@click.option("--style", "styles", multiple=True, metavar="LINE_ID|FILE",
              help="Write in the hand of a store line or a style file (hwkit style export); repeatable.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              help="Store for --style LINE_ID [default: the checkpoint's store].")
@click.option("--keep-prime", is_flag=True, help="Show the --style line before the new writing.")
@click.option("--replace-unknown", is_flag=True,
              help="Replace characters the model lacks with the nearest it has (or a space).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present, else CPU.")
@click.option("--svg", is_flag=True, help="Write an SVG (the default when no other format is chosen).")
@click.option("--png", is_flag=True, help="Write a PNG.")
@click.option("--animate", is_flag=True, help="Write an animated SVG replaying the pen.")
@click.option("--npz", is_flag=True, help="Write the raw offsets (pen units) as .npz: offsets, line_offsets, text.")
@click.option("--json", "as_json", is_flag=True, help="Write the raw offsets (pen units) as JSON.")
@click.option("--plot-attention", is_flag=True, help="Also draw the window weights over time (synthesis).")
@click.option("--plot-density", is_flag=True, help="Also draw the predicted density along each line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: its suffix (.svg, .png, .animated.svg, .npz, .json) picks the format and must "
                   "match the format flags; without a suffix, each format's suffix is added "
                   "[default: samples/<date>-<time>].")
@click.option("--colour", default="black", show_default=True,
              help="Ink colour (a colour name or #rrggbb), 'stroke' (one per stroke) or 'eos' "
                   "(shaded blue to red by the predicted end-of-stroke probability).")
@click.option("--stroke-width", type=click.FloatRange(min=0, min_open=True), default=1.6, show_default=True,
              help="Pen width in pixels.")
@click.option("--captions/--no-captions", default=True, show_default=True, help="Write each line's text under it.")
def sample(
    checkpoint: Path | None,
    texts: tuple[str, ...],
    text_file,
    width: int,
    n: int,
    length: int,
    strokes: int | None,
    bias: float,
    seed: int | None,
    styles: tuple[str, ...],
    store: Path | None,
    keep_prime: bool,
    replace_unknown: bool,
    device: str,
    svg: bool,
    png: bool,
    animate: bool,
    npz: bool,
    as_json: bool,
    plot_attention: bool,
    plot_density: bool,
    output: Path | None,
    colour: str,
    stroke_width: float,
    captions: bool,
) -> None:
    """Write handwriting with a trained network: from text, or freely.

    CHECKPOINT is a .pt file or a run folder [default: the newest
    models/*/best.pt; with --text the newest synthesis one, else the bundled
    demo model].
    A synthesis checkpoint writes --text (or --text-file), wrapped to --width
    characters a line; a line ends when the attention window has passed its
    last character, or at 40 points per character + 100 as a safety net. A
    prediction checkpoint writes --n lines of --length points without text.
    All lines run as one batch. --style primes the network with a real line
    (Graves sec. 5.5) and continues in that hand. -o out/page writes
    out/page.svg (and .png, .npz, ... for each format flag); -o page.png alone
    picks PNG; a suffix that contradicts the format flags is refused. Missing
    folders are created. The file paths written are printed on stdout; notes go
    to stderr.

    \b
    Examples:
      hwkit sample --text "hello world" --bias 1 --seed 7 --png
      hwkit sample models/synthesis-20240101-120000 --text-file poem.txt --animate
      hwkit sample --text "in my hand" --style a01-000u-01 --n 3 -o hand.svg
    """
    from hwkit import sample as lib
    from hwkit.alphabet import Alphabet
    from hwkit.checkpoint import BUNDLED, find_checkpoint, load_checkpoint, model_from_checkpoint
    from hwkit.errors import CheckpointError

    if colour not in ("stroke", "eos"):
        _check_colour(colour)
    if keep_prime and not styles:
        raise click.UsageError("--keep-prime: only with --style")
    if store is not None and not styles:
        raise click.UsageError("--store: only with --style LINE_ID")
    flags = {"svg": svg, "png": png, "animate": animate, "npz": npz, "json": as_json}
    plots = [name for name, on in (("attention", plot_attention), ("density", plot_density)) if on]
    targets = _targets(flags, output, plots)  # bad -o: exit 2 before any work
    err = stderr_console()
    if colour == "eos" and "animate" in targets:
        err.print("note: the animation is drawn in one colour (black); --colour eos shades the SVG and PNG only")

    requested = [*texts, *(text_file.read().splitlines() if text_file else [])]
    path = find_checkpoint(checkpoint, MODELS_DIR, kind="synthesis" if requested else None)
    if path == BUNDLED:
        err.print(f"note: no {MODELS_DIR}/*/best.pt yet: using the bundled demo model (`hwkit train` makes your own)")
    ckpt = load_checkpoint(path)
    kind = ckpt["model_config"].get("kind")
    alphabet = Alphabet(ckpt["alphabet"])

    lines_text = [line for t in requested if t.strip() for line in lib.wrap(t, width)]
    if kind == "prediction" and requested:
        raise CheckpointError(
            f"{path}: a prediction model writes without text; drop --text or use a synthesis checkpoint"
        )
    if kind == "synthesis":
        given = [f"--{name}" for name in ("length", "strokes") if _given(name)]
        if given:
            raise CheckpointError(
                f"{' and '.join(given)}: only for a prediction model ({path} is a synthesis model; "
                "its lines end by the attention rule)"
            )
        if not lines_text:
            raise CheckpointError(f"{path}: a synthesis model needs --text or --text-file")
    if plot_attention and kind != "synthesis":
        raise CheckpointError(f"{path}: --plot-attention needs a synthesis model")

    primes = _primes(styles, store, ckpt, path) or [None]
    if kind == "synthesis":
        lines_text = [_encodable(alphabet, t, replace_unknown, err) for t in lines_text]
        primes = [
            p if p is None else lib.Prime(p.offsets, _encodable(alphabet, p.text, replace_unknown, err, "style text"))
            for p in primes
        ]

    torch_device = _device(device)
    model = model_from_checkpoint(ckpt, torch_device)
    common = dict(stats=ckpt["stats"], bias=bias, seed=seed, keep_prime=keep_prime)
    err.print(f"sampling {kind} on {torch_device} with {escape(str(path))}")
    if kind == "synthesis":
        batch = [(p, t) for p in primes for t in lines_text for _ in range(n)]
        result = lib.sample_text(model, alphabet, [t for _, t in batch], primes=[p for p, _ in batch], **common)
    else:
        batch_primes = [p for p in primes for _ in range(n)]
        result = lib.sample_unconditional(model, len(batch_primes), length=length, strokes=strokes,
                                          primes=batch_primes, **common)  # fmt: skip

    written = _write(result, targets, colour, stroke_width, captions)

    summary = ", ".join(f"{c} {STOP_WORDS[r]}" for r, c in sorted(result.stop_counts().items()))
    err.print(f"{len(result.lines)} line(s), seed {result.seed}, bias {bias:g}: {summary}")
    for target in written:
        click.echo(str(target))


def _encodable(alphabet, text: str, replace: bool, err, what: str = "text") -> str:
    from hwkit.errors import TextError
    from hwkit.sample import replace_unknown

    missing = alphabet.unknown(text)
    if not missing:
        return text
    if not replace:
        shown = " ".join(repr(c) for c in missing)
        raise TextError(f"{what} has characters the model's alphabet lacks: {shown} (use --replace-unknown)")
    new, made = replace_unknown(alphabet, text)
    err.print(escape(f"replaced in {what}: " + ", ".join(f"{a!r} -> {b!r}" for a, b in made.items())))
    return new


def _check_colour(colour: str) -> None:
    from PIL import ImageColor

    try:
        ImageColor.getrgb(colour)
    except ValueError:
        raise click.BadParameter(f"{colour!r} is not a colour name or #rrggbb", param_hint="--colour") from None


def _device(name: str):
    import torch

    from hwkit.errors import HwkitError

    if name == "cuda" and not torch.cuda.is_available():
        raise HwkitError("--device cuda: no CUDA device is available (torch sees none)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def _given(name: str) -> bool:
    """Whether option ``name`` was set by the user rather than left at its default."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


def _primes(styles: tuple[str, ...], store: Path | None, ckpt: dict, path: Path) -> list:
    """The ``--style`` primes: style files, or line ids of ``--store`` (else of the checkpoint's store)."""
    from hwkit.errors import StoreError, StyleError
    from hwkit.store import Store
    from hwkit.style import load_style, style_from_store

    primes, found = [], None
    for spec in styles:
        if Path(spec).is_file():
            primes.append(load_style(spec))
            continue
        if found is None:
            if store is not None:
                if not store.is_file():
                    raise StoreError(f"--store {store}: no such file")
                found = store
            else:
                recorded = ckpt.get("store") or {}
                if not recorded.get("path"):
                    raise StyleError(f"--style {spec}: no such style file, and the checkpoint records no store "
                                     "to look it up as a line id; pass --store FILE")  # fmt: skip
                found = _checkpoint_store(Path(recorded["path"]), recorded.get("fingerprint", ""), path)
                if found is None:
                    raise StyleError(f"--style {spec}: no such style file, and the checkpoint's store "
                                     f"{recorded['path']} not found (from here); pass --store FILE")  # fmt: skip
            found = Store(found)  # opened once for every --style that names one of its lines
        primes.append(style_from_store(found, spec)[0])
    return primes


def _checkpoint_store(recorded: Path, fingerprint: str, checkpoint: Path) -> Path | None:
    """The store a checkpoint was trained on: its recorded path as given (from here), else that
    relative path under a folder above the checkpoint (the checkout it was trained in).
    A candidate whose content fingerprint matches wins; else the first that exists."""
    from hwkit.errors import HwkitError
    from hwkit.store import Store

    candidates = [recorded]
    if not recorded.is_absolute():
        candidates += [folder / recorded for folder in checkpoint.resolve().parents]
    existing = list(dict.fromkeys(c for c in candidates if c.is_file()))
    if not fingerprint:
        return existing[0] if existing else None
    for candidate in existing:
        try:
            if Store(candidate).fingerprint == fingerprint:
                return candidate
        except HwkitError:
            continue
    return existing[0] if existing else None


def _targets(flags: dict[str, bool], output: Path | None, plots: list[str]) -> dict[str, Path]:
    """Where each chosen format and plot goes.

    No ``-o``: ``samples/<date>-<time>`` + each suffix. ``-o`` without a suffix: it is the
    stem. ``-o`` with a format's suffix (any case): with no format flags that suffix picks
    the format, and ``-o`` is its file; with flags the suffix must be one of theirs (an
    animation may also be ``.svg``), and the other formats share its stem. Anything else
    is a ``click.BadParameter``.
    """
    chosen = [name for name, on in flags.items() if on]
    exact = None
    if output is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        stem, k = SAMPLES_DIR / stamp, 1
        while any(stem.with_name(stem.name + s).exists() for s in (*FORMATS.values(), *PLOTS.values())):
            k += 1
            stem = SAMPLES_DIR / f"{stamp}-{k}"
        formats = chosen or ["svg"]
    else:
        name = output.name
        by_length = sorted(FORMATS, key=lambda f: len(FORMATS[f]), reverse=True)
        matched = next((f for f in by_length if name.lower().endswith(FORMATS[f]) and len(name) > len(FORMATS[f])), None)
        if matched is None:
            if Path(name).suffix:
                known = ", ".join(FORMATS.values())
                raise click.BadParameter(
                    f"{output}: unknown suffix {Path(name).suffix!r} (known: {known}; or none, to add each "
                    "format's own)", param_hint="-o/--output"
                )  # fmt: skip
            stem, formats = output, chosen or ["svg"]
        else:
            suffix = name[len(name) - len(FORMATS[matched]):]
            stem = output.with_name(name[: len(name) - len(suffix)])
            formats = chosen or [matched]
            if matched in formats:
                exact = matched
            elif matched == "svg" and "animate" in formats and "svg" not in formats:
                exact = "animate"
            else:
                picked = " ".join(f"--{f}" for f in formats)
                raise click.BadParameter(
                    f"{output}: the suffix {suffix} does not fit {picked}; give -o without a suffix "
                    f"(e.g. {stem}) or one of {', '.join(FORMATS[f] for f in formats)}", param_hint="-o/--output"
                )  # fmt: skip
    targets = {name: stem.with_name(stem.name + FORMATS[name]) for name in formats}
    if exact is not None:
        targets[exact] = output
    targets.update({name: stem.with_name(stem.name + PLOTS[name]) for name in plots})
    return targets


def _write(result, targets: dict[str, Path], colour: str, stroke_width: float, captions: bool) -> list[Path]:
    import json

    import numpy as np

    from hwkit import render
    from hwkit.errors import HwkitError

    lines = [line.offsets for line in result.lines]
    texts = [line.text for line in result.lines] if captions else None
    style = render.Style(colour="black" if colour == "eos" else colour, width=stroke_width)
    placed = render.layout(lines, texts, style) if {"svg", "png"} & set(targets) else None
    shade = [line.eos for line in result.lines] if colour == "eos" else None
    for target in targets.values():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HwkitError(f"{target.parent}: cannot create the output folder ({exc.strerror or exc})") from None
    for name, target in targets.items():
        if name == "svg":
            svg = render.layout_svg(placed) if shade is None else render.shaded_svg(placed, shade)
            target.write_text(svg, encoding="utf-8")
        elif name == "png":
            image = render.layout_png(placed) if shade is None else render.shaded_png(placed, shade)
            image.save(target, format="PNG")
        elif name == "animate":
            from hwkit.animate import animated_svg

            target.write_text(animated_svg(lines, texts, style), encoding="utf-8")
        elif name == "npz":
            with open(target, "wb") as f:  # a file object: numpy adds no second .npz
                np.savez_compressed(f, **result.as_arrays())
        elif name == "json":
            target.write_text(json.dumps(result.as_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        elif name == "attention":
            from hwkit.heatmaps import attention_figure

            attention_figure(result.lines, target)
        elif name == "density":
            from hwkit.heatmaps import density_figure

            density_figure(result.lines, target)
    return list(targets.values())
