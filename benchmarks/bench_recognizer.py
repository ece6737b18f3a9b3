"""Training speed of the recognizer against the straightforward bidirectional LSTM.

The baseline is what one writes first: ``nn.LSTM(bidirectional=True)`` over every
pen point, lines packed with ``pack_padded_sequence`` so the backward direction
starts at each line's end. hwkit's ``RecognizerNet`` stacks ``subsample`` points
into one frame (the recurrence runs that many times fewer steps) and reverses
each line in place by indexing instead of packing. Two more rows split the gain:
packing at the same subsampling, and index reversal without subsampling.

Each row times one training step (forward, CTC loss, backward, Adam step) on the
same batch of real demo-corpus lines; sides alternate, and each reports its
best of ``--repeats`` (other processes on a shared machine can only add time).

    python benchmarks/bench_recognizer.py [--threads 1] [--store cache/demo.h5]
"""

from __future__ import annotations

import argparse
import time
import types

import torch
import torch.nn.functional as F
from torch import nn

from hwkit.dataset import BucketBatchSampler, StrokeDataset, collate
from hwkit.recognizer import RecognizerNet, ctc_nll


class PackedBiLSTM(nn.Module):
    """The baseline: a packed bidirectional LSTM over frames of ``subsample`` points."""

    def __init__(self, hidden: int, layers: int, alphabet: int, subsample: int):
        super().__init__()
        self.subsample = subsample
        self.lstm = nn.LSTM(3 * subsample, hidden, layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, alphabet)

    def forward(self, offsets, point_mask):
        k = self.subsample
        b, t, _ = offsets.shape
        x = F.pad(offsets, (0, 0, 0, -t % k)).reshape(b, -(-t // k), 3 * k)
        frames = torch.div(point_mask.sum(1) + k - 1, k, rounding_mode="floor")
        packed = nn.utils.rnn.pack_padded_sequence(x, frames.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.head(out).log_softmax(-1), frames


def step_time(net, optimizer, batch) -> float:
    t0 = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    log_probs, frames = net(batch.offsets, batch.point_mask)
    ctc_nll(log_probs, frames, batch.chars, batch.char_mask).mean().backward()
    optimizer.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="cache/demo.h5")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = StrokeDataset(args.store, "train", in_memory=True)
    first = next(iter(BucketBatchSampler(data.lengths, args.batch, seed=0)))
    batch = collate([data[i] for i in first])
    points = int(batch.point_mask.sum())
    alphabet = len(data.store.alphabet)

    def ours(subsample: int) -> nn.Module:
        config = types.SimpleNamespace(kind="recognizer", hidden=128, layers=2, alphabet_size=alphabet, subsample=subsample)
        return RecognizerNet(config)

    sides = {
        "baseline: packed BiLSTM, every point": PackedBiLSTM(128, 2, alphabet, 1),
        "packed BiLSTM, 4 points a frame": PackedBiLSTM(128, 2, alphabet, 4),
        "RecognizerNet, every point": ours(1),
        "RecognizerNet, 4 points a frame (hwkit)": ours(4),
    }
    optimizers = {name: torch.optim.Adam(net.parameters(), 1e-3) for name, net in sides.items()}
    best = {name: float("inf") for name in sides}
    for _ in range(args.repeats):
        for name, net in sides.items():
            best[name] = min(best[name], step_time(net, optimizers[name], batch))
    base = best["baseline: packed BiLSTM, every point"]
    print(f"{args.threads} thread(s), batch {len(first)} lines x {batch.offsets.shape[1]} points "
          f"({points:,} real), 2 x 128 bidirectional, best of {args.repeats}")
    print()
    print("| training step | ms | points/s | x baseline |")
    print("|---|---:|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds * 1e3:,.0f} | {points / seconds:,.0f} | {base / seconds:.1f} |")


if __name__ == "__main__":
    main()
