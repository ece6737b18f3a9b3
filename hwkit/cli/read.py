"""``hwkit read``: a thin click wrapper around ``hwkit.reading.read``."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stderr_console, threads_option


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              help="Store for --lines and --split [default: the store the recognizer was trained on].")
@click.option("--lines", "line_ids", multiple=True, metavar="ID", help="A line of the store to read; repeatable.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), help="Read every line of this split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present, else CPU.")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the readings (and CER) as JSON.")
def read(checkpoint: Path, files: tuple[Path, ...], line_ids: tuple[str, ...], as_json: bool, **options) -> None:
    """Read online handwriting as text with a trained recognizer.

    CHECKPOINT is a recognizer's .pt file or run folder (hwkit train --model
    recognizer). FILES are .npz, .json or .inkml files written by hwkit sample
    (or InkML from other tools), style files, or IAM-OnDB stroke files (.xml,
    as a recorder writes them). Lines of
    a store are named with --lines or a whole --split, and are scored against
    their transcriptions: the character error rate (edits / characters) goes
    to stderr. Each reading is printed on stdout as SOURCE<TAB>TEXT, where
    SOURCE is the store line's id, the file's name, or NAME#k for the k-th
    line (from 0) of a file of several.

    \b
    Examples:
      hwkit read models/reader samples/20240101-120000.npz
      hwkit read models/reader --split test --json
    """
    import json

    from hwkit.cer import cer
    from hwkit.reading import read as read_ink

    if not files and not line_ids and options["split"] is None:
        ink = checkpoint.suffix.lower() in (".npz", ".json", ".inkml", ".xml")
        raise click.UsageError("nothing to read: give the recognizer first (CHECKPOINT), then FILES, --lines or "
                               "--split" + (f" ({checkpoint} is ink, not a recognizer)" if ink else ""))  # fmt: skip
    readings = read_ink(checkpoint, files=files, line_ids=line_ids, **options)
    known = [r for r in readings if r.truth is not None]
    score = cer([r.truth for r in known], [r.text for r in known]) if known else None
    if as_json:
        doc = {"readings": [vars(r) for r in readings], "cer": score, "scored_lines": len(known)}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for r in readings:
            click.echo(f"{r.source}\t{r.text}")
    err = stderr_console()
    for r in readings:
        if r.scaled != 1.0:
            err.print(escape(f"note: {r.source} is in other units than the recognizer's: read scaled by {r.scaled:.3g}"))
    if score is not None:
        err.print(escape(f"CER {score:.2%} over {len(known)} line(s) with a known text"))
