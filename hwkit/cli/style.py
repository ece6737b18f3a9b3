"""``hwkit style``: keep a real line as a style file to write in that hand later."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stderr_console


@click.group()
def style() -> None:
    """Save handwriting styles (a real line and its text) for `hwkit sample --style`.

    \b
    Example:
      hwkit style export a01-000u-01 -o styles/mine.json
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
    from hwkit.style import save_style, style_from_store

    if store is None:
        from hwkit.paths import default_store

        store = default_store()
    prime, about = style_from_store(store, line_id)
    path = save_style(output, prime, about, force=force)
    stderr_console().print(f"{escape(line_id)}: {len(prime.offsets)} points, text {escape(repr(prime.text))}")
    click.echo(str(path))
