"""``hwkit style``: keep a real line as a style file to write in that hand later."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stderr_console, threads_option


@click.group()
def style() -> None:
    """Save handwriting styles (a real line and its text) for `hwkit sample --style`.

    \b
    Examples:
      hwkit style export a01-000u-01 -o styles/mine.json
      hwkit style house models/mine
    """


@style.command("export")
@click.argument("line_id")
@click.argument("store", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Style file to write (JSON).")
@click.option("--force", is_flag=True, help="Replace an existing style file.")
def export(line_id: str, store: Path | None, output: Path, force: bool) -> None:
    """Save one line of a store (strokes in pen units + text) as a style file.

    STORE defaults to cache/iamondb.h5 when it exists, else cache/demo.h5, else the
    newest cache/*.h5. The file is JSON and primes `hwkit sample --style FILE`
    without the store. Its path is printed on stdout.

    \b
    Examples:
      hwkit style export a01-000u-01 cache/iamondb.h5 -o styles/a01.json
      hwkit sample --text "same hand, new words" --style styles/a01.json
    """
    from hwkit.errors import OptionError
    from hwkit.style import save_style, style_from_store

    if output.suffix and output.suffix.lower() != ".json":
        raise OptionError("output", f"{output}: a style file is JSON; name it .json (a line as InkML: "
                                    "hwkit prepare reads InkML, hwkit sample --inkml writes it)")  # fmt: skip
    if store is None:
        from hwkit.paths import default_store

        store = default_store()
    prime, about = style_from_store(store, line_id)
    path = save_style(output, prime, about, force=force)
    stderr_console().print(f"{escape(line_id)}: {len(prime.offsets)} points, text {escape(repr(prime.text))}")
    click.echo(str(path))


@style.command("house")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              help="Store whose train lines are tried [default: the one the checkpoint was trained on].")
@click.option("--hands", "count", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many house hands the model carries.")
@click.option("--texts", type=click.IntRange(min=1), default=30, show_default=True,
              help="Valid transcriptions each candidate hand writes.")
@click.option("--reader", type=click.Path(path_type=Path),
              help="Recognizer that reads the candidates back [default: the one that chooses among the model's "
                   "tries, else as hwkit evaluate's judge, trained on the store on first use].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the model with its house hands goes [default: the checkpoint file itself].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present, else CPU.")
@threads_option
def house(checkpoint: Path, store: Path | None, count: int, texts: int, reader: Path | None, output: Path | None,
          device: str) -> None:  # fmt: skip
    """Give a synthesis model the house hands it writes most legibly.

    One train line of each writer of the store primes the model, which writes
    the same valid transcriptions in it; a recognizer reads them back, and the
    hands read best are saved inside the checkpoint. `hwkit sample` then writes
    in one of them, chosen by the seed, unless --style says otherwise: priming
    starts a line warm and holds one hand (BENCHMARKS.md, quality). Style
    thresholds from the store's train lines are saved too: among tries read
    equally well, `hwkit sample` keeps a draw within them (one hand per line). Takes
    about 3 s per writer on one CPU thread. The checkpoint's path is printed on
    stdout.

    \b
    Examples:
      hwkit style house models/mine
      hwkit style house models/mine/best.pt --hands 4 -o mine-housed.pt
    """
    from hwkit.checkpoint import Checkpoint, find_checkpoint, find_store
    from hwkit.errors import CheckpointError
    from hwkit.evaluation import ensure_reader
    from hwkit.files import check_can_write
    from hwkit.legibility import find_reader, hand_thresholds, house_hands
    from hwkit.paths import MODELS_DIR
    from hwkit.reading import Reader
    from hwkit.store import Store

    err = stderr_console()
    path = find_checkpoint(checkpoint)
    ckpt = Checkpoint.load(path)
    if ckpt.kind != "synthesis":
        raise CheckpointError(f"{path}: a {ckpt.kind} model writes no text to prime; house hands are for synthesis")
    opened = Store(find_store(ckpt, store))
    check_can_write(output or path)  # before the minutes of writing every candidate hand

    def show(event: dict) -> None:
        if event["event"] == "note":
            err.print(escape(event["text"]))
        elif event["event"] == "hand":
            err.print(f"candidate {event['done']}/{event['total']}: {escape(event['line_id'])}  CER {event['cer']:.1%}")

    if reader is None:  # the chooser's eyes, not the judge's: hwkit evaluate then grades hands it did not pick
        reader = find_reader(ckpt, MODELS_DIR)
    picker = Reader(Checkpoint.load(ensure_reader(reader, opened, MODELS_DIR, show)), device)
    ckpt.hands = house_hands(ckpt, opened, picker, count=count, texts=texts, device=device, progress=show)
    ckpt.hand_thresholds = hand_thresholds(opened)
    err.print("house hands: " + ", ".join(f"{escape(h['line_id'])} ({h['cer']:.1%})" for h in ckpt.hands))
    click.echo(str(ckpt.save(output or path)))
