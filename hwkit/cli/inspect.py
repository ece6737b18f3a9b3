"""``hwkit inspect``: statistics and pictures of a stroke store and of the batches it yields."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stderr_console, stdout_console

@click.command()
@click.argument("store", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n", "n", type=click.IntRange(min=1),
              help="Lines to draw.  [default: 20, or all the lines of a smaller split]")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="train", show_default=True,
              help="Split to draw lines and the batch from.")
@click.option("--seed", type=int,
              help="Pick the --n lines at random with this seed; also seeds --batch [default: the first n lines].")
@click.option("--colour", type=click.Choice(["stroke", "black", "pen"]), default="stroke", show_default=True,
              help="One colour per stroke, all black, or black ink with pen-up moves shown faintly.")
@click.option("--columns", type=click.IntRange(min=1), default=1, show_default=True, help="Lines side by side.")
@click.option("--png", is_flag=True, help="Also write PNG copies of the pictures.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the pictures [default: cache/<store-stem>-inspect/].")
@click.option("--batch", is_flag=True, help="Also draw one training batch exactly as the model receives it.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Lines in that batch.")
@click.option("--crop", type=click.IntRange(min=2),
              help="Cut batch lines to random windows of this many points, each from a stroke's start "
                   "(only with --batch).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON on stdout instead of tables.")
def inspect(store: Path | None, split: str, as_json: bool, **options) -> None:
    """Show what a stroke store holds: statistics, lines, histograms, a batch.

    STORE defaults to cache/iamondb.h5 when it exists, else cache/demo.h5, else the
    newest cache/*.h5. Tables (or --json) and the paths of the pictures written go
    to stdout (with --json the paths are in its "pictures" only); pictures (SVG,
    and PNG with --png) go to --out: lines.svg (the --n lines with their transcriptions and
    ids), histograms.svg (line lengths per split, step lengths with pen down and
    up) and, with --batch, batch.svg (one batch from the Dataset and collate,
    de-normalised back to pen units, padding left out).

    \b
    Example:
      hwkit inspect cache/demo.h5 --n 12 --colour pen --batch --crop 300 --png
    """
    import json

    from hwkit.inspection import inspect_store

    result = inspect_store(store, split=split, **options)
    for note in result.pop("notes"):
        stderr_console().print(f"note: {escape(note)}")
    if as_json:  # stdout stays pure JSON: the paths are in its "pictures"
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_tables(result, split)
    for target in result["pictures"].values():
        click.echo(f"wrote {target}")  # data, so stdout; plain: a long path must not wrap


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _print_tables(r: dict, split: str) -> None:
    import json

    from rich.table import Table

    console = stdout_console()
    about = Table(title="store", show_header=False, title_justify="left")
    about.add_column()
    about.add_column(overflow="fold")  # paths and hashes whole, never cut short
    for key in ("path", "source", "format_version", "created_utc", "hwkit_version", "content_sha256"):
        about.add_row(key, _fmt(r[key]))
    about.add_row("prepare_params", escape(json.dumps(r["prepare_params"], sort_keys=True)))
    console.print(about)

    sizes = Table("split", "lines", "points", "characters", "writers", title="splits", title_justify="left")
    for name, s in r["splits"].items():
        sizes.add_row(name, *(_fmt(s[k]) for k in ("lines", "points", "characters", "writers")))
    sizes.add_row("all", *(_fmt(r[k]) for k in ("lines", "points", "characters", "writers")), style="bold")
    console.print(sizes)

    shape = Table("", "min", "median", "p95", "max", "overall", title="lengths", title_justify="left")
    ppl = r["points_per_line"]
    shape.add_row("points per line", *(_fmt(ppl[k]) for k in ("min", "median", "p95", "max")), "")
    ppc = r["points_per_char"]
    shape.add_row("points per character", "", _fmt(ppc["median"]), "", "", _fmt(ppc["overall"]))
    console.print(shape)

    scale = Table("offset", "mean", "std", title="normalisation (train split)", title_justify="left")
    for axis in ("dx", "dy"):
        scale.add_row(axis, _fmt(r["offset_mean"][axis]), _fmt(r["offset_std"][axis]))
    console.print(scale)

    counts = r["alphabet"]["counts"]
    per_row = max(1, min(console.width, 160) // 14)
    alphabet = Table.grid(padding=(0, 1))
    for _ in range(per_row):
        alphabet.add_column(justify="right", style="bold", min_width=3)
        alphabet.add_column(justify="right", min_width=7)
    cells = [(escape(ch if ch.isprintable() and not ch.isspace() else repr(ch)), f"{c:,}") for ch, c in counts.items()]
    for row in range(0, len(cells), per_row):
        chunk = cells[row : row + per_row]
        alphabet.add_row(*(x for pair in chunk for x in pair))
    console.print(f"[italic]alphabet: {len(counts)} characters[/italic]")
    console.print(alphabet)

    skipped = r["skipped"]
    if skipped["total"]:
        table = Table(
            "reason", "lines", "examples", title=f"skipped at prepare: {skipped['total']:,}", title_justify="left"
        )
        for reason, entry in skipped["by_reason"].items():
            table.add_row(escape(reason), _fmt(entry["count"]), escape(", ".join(entry["examples"])))
        console.print(table)
    else:
        console.print("[italic]skipped at prepare: none[/italic]")

    drawn = Table("id", "writer", "points", "text", title=f"lines drawn ({split})", title_justify="left")
    for s in r["shown"]:
        drawn.add_row(escape(s["line_id"]), str(s["writer_id"]), _fmt(s["points"]), escape(s["text"]))
    console.print(drawn)

    if "batch" in r:
        b = r["batch"]
        crop = f", crop {b['crop']}" if b["crop"] else ""
        console.print(
            f"batch: {b['size']} lines x {b['steps']} steps{crop}, padding {b['padding_fraction']:.1%} of the grid"
        )
