"""``hwkit compare``: a thin click wrapper around ``hwkit.evaluation.compare_reports``."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stdout_console

_LABELS = {"cer": "CER", "capitals": "capitals misread", "digits": "digits misread",
           "lower case": "lower case misread", "spaces": "spaces lost", "first words": "first words not exact",
           "later words": "later words not exact", "prime hand": "lines off their prime's hand"}  # fmt: skip


@click.command()
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout instead of tables.")
def compare(old: Path, new: Path, as_json: bool) -> None:
    """Say whether NEW writes more legibly than OLD, text by text, with 95% intervals.

    OLD and NEW are `hwkit evaluate --json` reports of two synthesis models
    that wrote the same texts (the same --text-file or --texts); seeds may
    differ. For each bias both wrote at: CER, the shares of capitals, digits,
    lower case and spaces misread and of words not read exactly (and, both
    primed, of lines in another hand than their prime's), and NEW minus OLD in
    points. The difference is paired by text, so a hard text costs
    neither model, and a difference whose interval holds 0 is called no clear
    difference: a hundred sentences hold only about 130 capitals.

    \b
    Examples:
      hwkit evaluate models/a --text-file texts.txt --seed 1 --seed 2 --json > a.json
      hwkit evaluate models/b --text-file texts.txt --seed 1 --seed 2 --json > b.json
      hwkit compare a.json b.json
    """
    import json

    from hwkit.errors import HwkitError
    from hwkit.evaluation import compare_reports

    reports = []
    for path in (old, new):
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HwkitError(f"{path}: not a JSON report ({exc})") from None
    try:
        compared = compare_reports(*reports)
    except HwkitError as exc:
        raise HwkitError(f"{old} and {new}: {exc}") from None
    if as_json:
        click.echo(json.dumps({"old": str(old), "new": str(new), "biases": compared}, indent=2))
        return
    from rich.table import Table

    out = stdout_console()
    for entry in compared:
        table = Table("", "old", "new", "new - old (95% interval)", "",
                      title=escape(f"bias {entry['bias']:g}: {old} ({entry['old_lines']} lines) against {new} "
                                   f"({entry['new_lines']} lines), paired by text"), title_justify="left")  # fmt: skip
        for share, row in entry["shares"].items():
            if row is None:
                continue
            interval = ("one text: no interval" if row["low"] is None
                        else f"{row['low'] * 100:+.1f} to {row['high'] * 100:+.1f}")  # fmt: skip
            points = f"{row['difference'] * 100:+.1f} ({interval}) points"
            table.add_row(_LABELS[share], f"{row['old']:.1%}", f"{row['new']:.1%}", points, row["verdict"])
        out.print(table)
