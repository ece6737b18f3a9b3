"""Torch threads on a busy machine: why ``--threads`` exists.

Times training steps of the demo-preset prediction net (2 x 256 LSTM, batch 32,
300-point crops) with 1 and with 2 torch threads, on an idle machine and while
another process keeps one core busy (a Python spin loop, standing in for a
second training or the studio). Each cell is the median of ``--steps`` steps
after one warm-up; the ratio column is against 2 threads on the same machine
state.

    python benchmarks/bench_threads.py [--steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from hwkit import mdn
from hwkit.config import make_configs
from hwkit.models import build_model

SPIN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


def step_seconds(threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model_config, _ = make_configs("prediction", "demo")
    model = build_model(model_config)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(32, 300, 3)
    x[..., 2] = (torch.rand(32, 300) < 0.05).float()
    mask = torch.ones(32, 299, dtype=torch.bool)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        out, _ = model(x[:, :-1])
        mdn.sequence_nll(mdn.split_params(out), x[:, 1:], mask).mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    points = 32 * 299
    rows = []
    for state in ("idle", "one core busy"):
        spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if state != "idle" else None
        try:
            time.sleep(0.5 if spinner else 0)
            measured = {threads: step_seconds(threads, args.steps) for threads in (2, 1)}
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()
        for threads, seconds in measured.items():
            rows.append((state, threads, seconds, measured[2] / seconds))
    print(f"demo-preset prediction training step, batch 32 x 300 points, median of {args.steps}")
    print()
    print("| machine | threads | s/step | points/s | x 2 threads |")
    print("|---|---:|---:|---:|---:|")
    for state, threads, seconds, ratio in rows:
        print(f"| {state} | {threads} | {seconds:.3f} | {points / seconds:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
