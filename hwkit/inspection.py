"""What ``hwkit inspect`` shows of a store: its statistics, and pictures of its lines and batches.

``inspect_store`` is the one call: it reads the store, draws the pictures into a
folder (lines, histograms, and optionally the first training batch exactly as
the model receives it) and returns ``stats.store_stats`` plus what was drawn, as
JSON-ready values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwkit import render
from hwkit.errors import OptionError, StoreError
from hwkit.files import atomic_path, check_can_write
from hwkit.paths import CACHE_DIR, default_store
from hwkit.stats import step_lengths, store_stats
from hwkit.store import Store

DEFAULT_N = 20  # lines drawn when n is not given (all of them when the split has fewer)
LOAD_BYTES = 256 << 20  # a store's points up to this size are read into memory at once; bigger ones line by line
HISTOGRAM_POINTS = 2_000_000  # step histograms of a bigger store are drawn from a random sample of its lines


def inspect_store(
    store: str | os.PathLike | None = None,
    *,
    n: int | None = None,
    split: str = "train",
    seed: int | None = None,
    colour: str = "stroke",
    columns: int = 1,
    png: bool = False,
    out: str | os.PathLike | None = None,
    batch: bool = False,
    batch_size: int = 16,
    crop: int | None = None,
) -> dict:
    """Statistics of ``store`` (default: ``paths.default_store()``) and pictures in ``out``.

    Draws ``n`` lines of ``split`` (the first ones, or a random pick with ``seed``)
    to ``lines.svg``, length and step histograms to ``histograms.svg`` and, with
    ``batch``, one batch through the training Dataset to ``batch.svg`` (PNG copies
    with ``png``). ``out`` defaults to ``cache/<store-stem>-inspect/``. The result
    holds ``shown`` (the lines drawn), ``pictures`` (name -> path), ``batch`` and
    ``notes`` (one line each, for a person) beside the statistics.
    """
    if crop is not None and not batch:
        raise OptionError("crop", "only with --batch (it cuts the lines of the batch)")
    path = Path(store) if store is not None else default_store()
    st = Store(path)
    if st.n_points * 12 <= LOAD_BYTES:
        st.load()
    st.verify()  # a damaged store is named before anything is drawn from it (in chunks: memory stays flat)
    notes: list[str] = []
    chosen = pick_lines(st, split, n, seed, notes)
    out = Path(out) if out is not None else CACHE_DIR / f"{path.stem}-inspect"
    check_can_write(out / "lines.svg")  # one line for a folder that cannot be made or written, not a traceback
    out.mkdir(parents=True, exist_ok=True)
    style = render.Style(colour=colour, columns=columns)
    pictures: dict[str, str] = {}

    def save(name: str, lines: list, captions: list[str]) -> None:
        placed = render.layout(lines, captions, style)
        with atomic_path(out / f"{name}.svg") as tmp:
            tmp.write_text(render.layout_svg(placed), encoding="utf-8")
        pictures[name] = str(out / f"{name}.svg")
        if png:
            with atomic_path(out / f"{name}.png") as tmp:
                render.layout_png(placed).save(tmp, format="PNG")
            pictures[f"{name}_png"] = str(out / f"{name}.png")

    shown = [{"index": int(i), "line_id": st.line_ids[i], "writer_id": int(st.writer_ids[i]),
              "points": len(st.offsets(int(i))), "text": st.texts[i]} for i in chosen]  # fmt: skip
    save("lines", [st.offsets(s["index"]) for s in shown],
         [f"{s['text']}\n{s['line_id']} · writer {s['writer_id']} · {s['points']} points" for s in shown])  # fmt: skip
    panels = histogram_panels(st, notes)  # read once, drawn as SVG (and PNG)
    for suffix in (".svg", ".png") if png else (".svg",):
        target = out / f"histograms{suffix}"
        with atomic_path(target) as tmp:
            render.histograms(panels, tmp)
        pictures["histograms" + ("_png" if suffix == ".png" else "")] = str(target)
    result = store_stats(st)
    result["shown"] = shown
    if batch:
        lines, captions, result["batch"] = first_batch(st, split, batch_size, crop, seed)
        save("batch", lines, captions)
    result["pictures"] = pictures
    result["notes"] = notes
    return result


def pick_lines(store: Store, split: str, n: int | None, seed: int | None, notes: list[str]) -> np.ndarray:
    """Indices of the lines to draw: the first ``n`` of ``split``, or ``n`` at random with ``seed``."""
    indices = store.split(split)
    if not len(indices):
        raise StoreError(f"{store.path}: split {split!r} has no lines")
    if n is None:
        n = min(DEFAULT_N, len(indices))
        if n < DEFAULT_N:
            notes.append(f"split {split!r} has {n} lines: drawing all of them")
    elif n > len(indices):
        raise StoreError(f"{store.path}: --n {n} is more than the {len(indices)} lines of split {split!r}")
    if seed is None:
        return indices[:n]
    return np.sort(np.random.default_rng(seed).choice(indices, n, replace=False))


def histogram_panels(store: Store, notes: list[str] | None = None) -> list[render.Histogram]:
    """Points per line for each split, and step lengths with the pen down and up (of a random
    sample of lines, about ``HISTOGRAM_POINTS`` points, when the store is bigger)."""
    lengths = np.diff(store.line_offsets)
    lines = None
    if store.n_points > HISTOGRAM_POINTS:
        share = HISTOGRAM_POINTS / store.n_points
        lines = np.flatnonzero(np.random.default_rng(0).random(len(store)) < share)
        if notes is not None:
            notes.append(f"step lengths drawn from a random {len(lines):,} of the {len(store):,} lines")
    down, up = step_lengths(store, lines)
    return [
        render.Histogram("points per line", "points",
                         {name: lengths[idx] for name, idx in store.splits.items() if len(idx)}),
        render.Histogram("step length", "raw pen units (log)", {"pen down": down, "pen up": up},
                         log_x=True, log_y=True),
    ]  # fmt: skip


def first_batch(store: Store, split: str, batch_size: int, crop: int | None, seed: int | None):
    """The first batch of epoch 0, through the same Dataset, sampler and collate as training.

    Returns its lines in pen units (padding left out), a caption per line, and a summary.
    """
    import torch

    from hwkit.dataset import BucketBatchSampler, StrokeDataset, collate, unbatch

    dataset = StrokeDataset(store, split, crop=crop, seed=seed or 0)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, seed=seed or 0)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)))
    lines = unbatch(batch, store.mean, store.std)
    width = batch.offsets.shape[1]
    captions = [
        f"{store.texts[i]}\n{line_id} · {len(line)} of {width} steps" + (f" (crop {crop})" if crop else "")
        for i, line_id, line in zip(batch.indices.tolist(), batch.line_ids, lines)
    ]
    summary = {"size": len(lines), "steps": width, "crop": crop, "padding_fraction": batch.padding_fraction,
               "line_ids": batch.line_ids}  # fmt: skip
    return lines, captions, summary
