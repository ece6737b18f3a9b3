"""Points per second delivered by StrokeDataset + collate + BucketBatchSampler.

Baseline: the obvious per-item reader, which opens the HDF5 file for every line
and reads that line's slice, with the same collate and sampler and no workers.
For scale, the last row times a stand-in training step (a 3 x 400 LSTM forward and
backward on 300-point crops, Graves' prediction net without the mixture head)
on this CPU: the rate training consumes points.

    python benchmarks/bench_dataset.py [--lines 3000] [--points 700]

Prints one markdown table; ratios are against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from hwkit.dataset import BucketBatchSampler, Item, StrokeDataset, collate
from hwkit.store import Line, Store, write_store
from hwkit.strokes import normalise

BATCH = 32
CROP = 300


class NaiveDataset(torch.utils.data.Dataset):
    """Open the file per item, read the line's bounds and points, normalise."""

    def __init__(self, store: Store, split: str):
        self.path, self.indices = store.path, store.split(split)
        self.mean, self.std, self.store = store.mean, store.std, store
        self.lengths = np.diff(store.line_offsets)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Item:
        index = int(self.indices[position])
        with h5py.File(self.path, "r") as f:
            a, b = f["line_offsets"][index : index + 2]
            x = normalise(f["points"][a:b], self.mean, self.std)
        x[0, :2] = 0
        chars = self.store.alphabet.encode(self.store.texts[index])
        return Item(torch.from_numpy(x), torch.from_numpy(chars), self.store.line_ids[index], index)


def build_store(path: Path, n_lines: int, mean_points: int) -> Path:
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz      .,"))
    lines = []
    for i in range(n_lines):
        n = int(rng.integers(mean_points // 2, mean_points * 3 // 2))
        offsets = np.column_stack([rng.normal(3, 6, n), rng.normal(0, 7, n), rng.random(n) < 0.05]).astype(np.float32)
        offsets[0, :2], offsets[-1, 2] = 0, 1
        lines.append(Line(offsets, "".join(rng.choice(letters, n // 25)), f"l{i:05d}", i % 200))
    n_train = n_lines * 9 // 10
    return write_store(path, lines, {"train": range(n_train), "valid": range(n_train, n_lines)}, source="demo")


def points_per_second(dataset, workers: int, repeats: int = 2) -> float:
    """Best of ``repeats`` epochs (the machine is shared; the best run is the least disturbed)."""
    best = 0.0
    for epoch in range(repeats):
        sampler = BucketBatchSampler(dataset.lengths, BATCH, seed=0)
        sampler.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
        start = time.perf_counter()
        points = sum(int(batch.point_mask.sum()) for batch in loader)
        best = max(best, points / (time.perf_counter() - start))
    return best


def training_consumption(steps: int = 2) -> float:
    """Points per second a 3 x 400 LSTM trains on (forward + backward) on this CPU."""
    lstm = torch.nn.LSTM(3, 400, num_layers=3, batch_first=True)
    head = torch.nn.Linear(400, 121)
    x = torch.randn(BATCH, CROP, 3)
    best = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        out, _ = lstm(x)
        head(out).square().mean().backward()
        best = max(best, BATCH * CROP / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--points", type=int, default=700, help="mean points per line")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_store(Path(tmp) / "bench.h5", args.lines, args.points)
        store = Store(path)
        rows = [("baseline: open file + read per item, 0 workers", points_per_second(NaiveDataset(store, "train"), 0))]
        for in_memory in (False, True):
            for crop in (None, CROP):
                for workers in (0, 2):
                    ds = StrokeDataset(Store(path), "train", in_memory=in_memory, crop=crop)
                    mode = (" in_memory" if in_memory else "") + (f" crop={crop}" if crop else "")
                    name = f"StrokeDataset{mode}, {workers} workers"
                    rows.append((name, points_per_second(ds, workers)))
        consumption = training_consumption()
    base = rows[0][1]
    print(
        f"{args.lines} lines x ~{args.points} points, batch {BATCH}, bucketed sampler, one epoch per run (best of 2)\n"
    )
    print("| loader | points/s | x baseline |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f} |")
    reference = f"(reference) 3x400 LSTM fwd+bwd, batch {BATCH} x {CROP} points, CPU"
    print(f"| {reference} | {consumption:,.0f} | {consumption / base:.2f} |")


if __name__ == "__main__":
    main()
