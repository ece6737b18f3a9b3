"""``hwkit prepare``: IAM-OnDB or the demo corpus -> ``cache/<name>.h5``."""

from __future__ import annotations

import json
import signal
from contextlib import ExitStack
from pathlib import Path

import click

from hwkit.cli._common import escape, progress_bar, stderr_console, stdout_console

DEMO_OPTIONS = ("lines", "writers", "seed", "capitals", "numbers")
EXAMPLES_SHOWN = 3  # skipped names listed per reason in the summary


@click.command(short_help="Turn IAM-OnDB, InkML or the demo corpus into a stroke store.")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Store to write.  [default: cache/iamondb.h5; cache/demo.h5 for the demo corpus; cache/NAME.h5 for "
         "InkML NAME.inkml or NAME/]",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1),
    help="Processes generating the demo corpus and parsing stroke files.  [default: number of CPUs]",
)
@click.option("--force", is_flag=True, help="Replace an existing store.")
@click.option(
    "--min-points", type=click.IntRange(min=1), help="Leave out lines with fewer points after cleaning.  [default: 40]"
)
@click.option(
    "--max-jump", type=click.FloatRange(min=0, min_open=True),
    help="Split a stroke at a pen-down step longer than this (raw units).  [default: 500]",
)
@click.option("--demo", is_flag=True, help="Prepare the built-in demo corpus (generated into data/demo/).")
@click.option("--lines", type=click.IntRange(min=1), help="Demo corpus: number of lines.  [default: 3000]")
@click.option("--writers", type=click.IntRange(min=1), help="Demo corpus: number of writers.  [default: 40]")
@click.option("--seed", type=int, help="Demo corpus: random seed.  [default: 0]")
@click.option("--capitals", type=click.FloatRange(0, 1),
              help="Demo corpus: share of lower-case words to give a capital, to drill capitals.  [default: 0]")
@click.option("--numbers", type=click.FloatRange(0, 1),
              help="Demo corpus: share of words to write as numbers of 1-4 digits, to drill digits.  [default: 0]")
@click.option("--inkml-group", metavar="TYPE",
              help="InkML: take the groups annotated with this type as lines (Textline for IAMonDo) "
                   "[default: each innermost transcribed group].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
def prepare(
    source: Path | None,
    output: Path | None,
    jobs: int | None,
    force: bool,
    min_points: int | None,
    max_jump: float | None,
    demo: bool,
    lines: int | None,
    writers: int | None,
    seed: int | None,
    capitals: float | None,
    numbers: float | None,
    inkml_group: str | None,
    as_json: bool,
) -> None:
    """Turn IAM-OnDB or InkML (or the built-in demo corpus) into a stroke store.

    SOURCE is an InkML file or a folder of them (each transcribed trace group
    is a line; hwkit sample --inkml writes them), or an IAM-OnDB root holding
    lineStrokes/ and ascii/ (and optionally
    original/ and the task lists trainset.txt, testset_v.txt, testset_t.txt,
    testset_f.txt), or the archives lineStrokes-all.tar.gz, ascii-all.tar.gz
    and original-xml-all.tar.gz, which are read without unpacking. Without
    SOURCE, data/iamondb/ is used when it exists; otherwise the demo corpus is
    generated into data/demo/ and prepared.

    Repeated points are dropped, strokes are split at implausible pen jumps,
    and lines that are too short or have no transcription are left out; each
    input left out is listed in the store with its reason. A truncated archive
    and an empty train or valid split are warned about on stderr.

    \b
    Examples:
      hwkit prepare                              # data/iamondb/, else the demo corpus
      hwkit prepare ~/iamondb -o cache/iam.h5 --jobs 4
      hwkit prepare ~/my-ink/ -o cache/mine.h5        # InkML from a tablet or an app
      hwkit prepare --demo --lines 500 --writers 10 --force
      hwkit prepare --demo --lines 12000 --writers 400 --capitals 0.5 -o cache/caps.h5
      hwkit prepare --demo --lines 12000 --writers 400 --numbers 0.2 -o cache/digits.h5
    """
    from hwkit.config import DemoParams, PrepareParams
    from hwkit.prepare import prepare

    chosen = {k: v for k, v in zip(DEMO_OPTIONS, (lines, writers, seed, capitals, numbers)) if v is not None}
    demo_flags = [f"--{name}" for name in chosen]
    if demo_flags and not demo:
        raise click.UsageError(f"{', '.join(demo_flags)}: only with --demo")
    if demo and source is not None:
        raise click.UsageError("give either SOURCE or --demo, not both")
    if output is not None and output.suffix.lower() not in (".h5", ".hdf5"):
        raise click.BadParameter(f"{output}: a store is an HDF5 file; give a name ending in .h5",
                                 param_hint="'-o' / '--output'")  # fmt: skip
    note = stderr_console()
    params = {k: v for k, v in (("min_points", min_points), ("max_jump", max_jump)) if v is not None}
    with ExitStack() as bars:
        current: dict = {}

        def report(event: dict) -> None:  # one bar for the demo lines, then one for the files parsed
            if event["event"] == "note":
                note.print(escape(event["text"]))
                return
            if current.get("kind") != event["event"]:
                unit = "lines" if event["event"] == "lines" else "files"
                label = "demo corpus" if event["event"] == "lines" else "parsing"
                current.update(kind=event["event"], done=0, advance=bars.enter_context(progress_bar(label, unit=unit)))
            status = f"{event['lines']:,} lines, {event['points']:,} points" if "points" in event else None
            current["advance"](event["done"] - current["done"], status=status, total=event["total"])
            current["done"] = event["done"]

        try:
            result = prepare(source, output, demo=DemoParams(**chosen) if demo else None, jobs=jobs, force=force,
                             params=PrepareParams(**params), inkml_group=inkml_group, progress=report)  # fmt: skip
        except KeyboardInterrupt:  # nothing half-written: the store is renamed into place only when whole
            # A Ctrl-C reaches the whole process group: when a worker's interrupt got here first, this
            # process's own may still be pending, and it would end the exit below as a death by SIGINT.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            note.print("interrupted; no store written")
            raise SystemExit(130) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        _summary(result)
    for warning in result.warnings:  # after the summary, so that they are the last thing seen
        note.print(f"warning: {escape(warning)}")


def _summary(report) -> None:
    from rich.table import Table

    out = stdout_console()
    out.print(
        f"wrote {escape(str(report.output))}: {sum(report.lines.values()):,} lines, {report.points:,} points, "
        f"{report.writers} writers, alphabet of {report.alphabet_size} (source {report.source}, "
        f"split by {report.split_rule})"
    )
    splits = Table("split", "lines", box=None)
    for name, n in report.lines.items():
        splits.add_row(name, f"{n:,}")
    out.print(splits)
    by_reason = report.skipped_by_reason()
    if not by_reason:
        out.print("nothing left out")
        return
    skipped = Table("left out because", "count", "for example", box=None)
    for reason, names in by_reason.items():
        shown = "\n".join(names[:EXAMPLES_SHOWN]) + ("\n..." if len(names) > EXAMPLES_SHOWN else "")
        skipped.add_row(escape(reason), f"{len(names):,}", escape(shown))
    out.print(skipped)
