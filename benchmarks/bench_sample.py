"""Sampling speed on the CPU, as ratios measured in one run.

1. Incremental sampling (``hwkit.sample``: one ``models.Stepper`` step per
   point, state carried) against the seed notebook's way: for every new point, run the
   network over the whole prefix again and sample from its last output. The
   baseline is timed in full (one to two minutes for 700 points), not
   extrapolated.
2. 16 lines in one batch against a single line, both incremental.

Same network for both: Graves' 3 x 400 prediction net with 20 mixtures (random
weights: speed does not depend on them), same distribution (the baseline
samples with ``mdn.sample``, ``hwkit.sample`` with ``mdn.sample_outputs``). The
baseline keeps torch's defaults (oneDNN's fused LSTM, its fastest path over a
whole sequence).

The machine is shared and its load swings by several times within a minute,
so the cases are interleaved: the baseline line is written in ``--rounds``
chunks of prefixes, and before each chunk (and after the last) one line and a
batch of 16 are sampled incrementally. The baseline's time is the sum of its
chunks; the incremental time is the median of its runs; the batch ratio is
the median of the ratios of back-to-back pairs. Prints one table.

``--clock cpu`` (one thread only) times with the process's CPU clock, which
time spent waiting for a core does not advance: the steady choice on a
crowded machine.

    python benchmarks/bench_sample.py [--length 700] [--rounds 7] [--threads 1] [--clock cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hwkit import mdn
from hwkit.config import ModelConfig
from hwkit.models import build_model
from hwkit.sample import sample_unconditional

STATS = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}


@torch.inference_mode()
def baseline(model, rows: torch.Tensor, points: range, generator: torch.Generator) -> None:
    """The notebook's sampler, for rows ``points`` of ``rows``: each re-runs the network over every row before it."""
    for t in points:
        out, _ = model(rows[:, :t])
        rows[:, t] = mdn.sample(mdn.split_params(out[:, -1]), generator)


def time_of(fn, clock=time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=700, help="points per line")
    parser.add_argument("--rounds", type=int, default=7, help="chunks of the baseline, with incremental runs between")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"], help="cpu: process CPU time (1 thread only)")
    args = parser.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig("prediction", hidden=400, layers=3, mixtures=20)).eval()

    def lines(n: int):
        return lambda: sample_unconditional(model, n, stats=STATS, length=args.length, seed=0)

    lines(1)()  # warm-up (allocator, kernels)
    single, batch16 = [], []
    slow = 0.0
    rows, generator = torch.zeros(1, args.length, 3), torch.Generator().manual_seed(0)
    cuts = np.linspace(1, args.length, args.rounds + 1).round().astype(int)
    for r in range(args.rounds + 1):
        single.append(time_of(lines(1), clock))
        batch16.append(time_of(lines(16), clock))
        if r < args.rounds:
            slow += time_of(lambda: baseline(model, rows, range(cuts[r], cuts[r + 1]), generator), clock)
    one = float(np.median(single))
    batch_ratio = float(np.median(np.divide(batch16, single)))
    sixteen = float(np.median(batch16))

    table = [
        (f"incremental, 1 line x {args.length} points", one, "1.00x (reference)"),
        (f"incremental, 16 lines x {args.length} points, one batch", sixteen, f"{batch_ratio:.2f}x the single line (median pair)"),
        (f"baseline (prefix re-run), 1 line x {args.length} points", slow, f"{slow / one:.0f}x the incremental time"),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.clock} clock, 3 x 400 LSTM, 20 mixtures, CPU; "
          f"incremental {one / (args.length - 1) * 1e3:.2f} ms per point, "
          f"baseline {slow / (args.length - 1) * 1e3:.1f} ms per point on average")  # fmt: skip
    print(f"| {'case':<56} | {'seconds':>8} | ratio")
    print(f"|{'-' * 58}|{'-' * 10}|{'-' * 30}")
    for name, seconds, ratio in table:
        print(f"| {name:<56} | {seconds:8.2f} | {ratio}")


if __name__ == "__main__":
    main()
