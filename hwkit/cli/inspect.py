"""``hwkit inspect``: statistics and pictures of a stroke store and of the batches it yields."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, stderr_console, stdout_console
from hwkit.paths import CACHE_DIR, default_store

DEFAULT_N = 20  # lines drawn when --n is not given (all of them when the split has fewer)


@click.command()
@click.argument("store", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=None,
    help=f"Lines to draw.  [default: {DEFAULT_N}, or all the lines of a smaller split]",
)
@click.option(
    "--split",
    type=click.Choice(["train", "valid", "test"]),
    default="train",
    show_default=True,
    help="Split to draw lines and the batch from.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Pick the --n lines at random with this seed; also seeds --batch [default: the first n lines].",
)
@click.option(
    "--colour",
    type=click.Choice(["stroke", "black", "pen"]),
    default="stroke",
    show_default=True,
    help="One colour per stroke, all black, or black ink with pen-up moves shown faintly.",
)
@click.option("--columns", type=click.IntRange(min=1), default=1, show_default=True, help="Lines side by side.")
@click.option("--png", is_flag=True, help="Also write PNG copies of the pictures.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the pictures [default: cache/<store-stem>-inspect/].",
)
@click.option("--batch", is_flag=True, help="Also draw one training batch exactly as the model receives it.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Lines in that batch.")
@click.option(
    "--crop",
    type=click.IntRange(min=2),
    default=None,
    help="Cut batch lines to random windows of this many points (only with --batch).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON on stdout instead of tables.")
def inspect(
    store: Path | None,
    n: int | None,
    split: str,
    seed: int | None,
    colour: str,
    columns: int,
    png: bool,
    out: Path | None,
    batch: bool,
    batch_size: int,
    crop: int | None,
    as_json: bool,
) -> None:
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

    import numpy as np

    from hwkit import render
    from hwkit.errors import StoreError
    from hwkit.stats import step_lengths, store_stats
    from hwkit.store import Store

    if crop is not None and not batch:
        raise click.UsageError("--crop: only with --batch (it cuts the lines of the batch)")
    path = store if store is not None else default_store()
    st = Store(path).load()
    indices = st.split(split)
    if not len(indices):
        raise StoreError(f"{path}: split {split!r} has no lines")
    if n is None:
        n = min(DEFAULT_N, len(indices))
        if n < DEFAULT_N:
            stderr_console().print(f"note: split {split!r} has {n} lines: drawing all of them")
    elif n > len(indices):
        raise StoreError(f"{path}: --n {n} is more than the {len(indices)} lines of split {split!r}")
    chosen = indices[:n] if seed is None else np.sort(np.random.default_rng(seed).choice(indices, n, replace=False))
    out = out if out is not None else CACHE_DIR / f"{path.stem}-inspect"
    out.mkdir(parents=True, exist_ok=True)
    style = render.Style(colour=colour, columns=columns)
    pictures: dict[str, str] = {}

    def save(name: str, lines: list, captions: list[str]) -> None:
        placed = render.layout(lines, captions, style)
        target = out / f"{name}.svg"
        target.write_text(render.layout_svg(placed), encoding="utf-8")
        pictures[name] = str(target)
        if png:
            render.layout_png(placed).save(out / f"{name}.png")
            pictures[f"{name}_png"] = str(out / f"{name}.png")

    shown = [
        {
            "index": int(i),
            "line_id": st.line_ids[i],
            "writer_id": int(st.writer_ids[i]),
            "points": len(st.offsets(int(i))),
            "text": st.texts[i],
        }
        for i in chosen
    ]
    save(
        "lines",
        [st.offsets(s["index"]) for s in shown],
        [f"{s['text']}\n{s['line_id']} · writer {s['writer_id']} · {s['points']} points" for s in shown],
    )

    lengths = np.diff(st.line_offsets)
    down, up = step_lengths(st)
    panels = [
        render.Histogram(
            "points per line",
            "points",
            {name: lengths[idx] for name, idx in st.splits.items() if len(idx)},
        ),
        render.Histogram(
            "step length", "raw pen units (log)", {"pen down": down, "pen up": up}, log_x=True, log_y=True
        ),
    ]
    for suffix in (".svg", ".png") if png else (".svg",):
        target = render.histograms(panels, out / f"histograms{suffix}")
        pictures["histograms" + ("_png" if suffix == ".png" else "")] = str(target)

    result = store_stats(st)
    result["shown"] = shown
    if batch:
        result["batch"] = _draw_batch(st, split, batch_size, crop, seed, save)
    result["pictures"] = pictures

    if as_json:  # stdout stays pure JSON: the paths are in its "pictures"
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_tables(result, split)
    for target in pictures.values():
        click.echo(f"wrote {target}")  # data, so stdout; plain: a long path must not wrap


def _draw_batch(st, split: str, batch_size: int, crop: int | None, seed: int | None, save) -> dict:
    """The first batch of epoch 0, through the same Dataset, sampler and collate as training."""
    import torch

    from hwkit.dataset import BucketBatchSampler, StrokeDataset, collate, unbatch

    dataset = StrokeDataset(st, split, crop=crop, seed=seed or 0)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, seed=seed or 0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    batch = next(iter(loader))
    lines = unbatch(batch, st.mean, st.std)
    width = batch.offsets.shape[1]
    captions = [
        f"{st.texts[i]}\n{line_id} · {len(line)} of {width} steps" + (f" (crop {crop})" if crop else "")
        for i, line_id, line in zip(batch.indices.tolist(), batch.line_ids, lines)
    ]
    save("batch", lines, captions)
    return {
        "size": len(lines),
        "steps": width,
        "crop": crop,
        "padding_fraction": batch.padding_fraction,
        "line_ids": batch.line_ids,
    }


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
