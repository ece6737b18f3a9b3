"""How many lines of a new hand does fine-tuning need? Measure it on a demo writer the bundled model never trained on.

For each line count: write that many new lines in the hand of a held-out demo
writer (``hwkit.demo.writer_lines``), fine-tune the bundled synthesis model on
them with the finetune preset, and record the CPU time and the loss (raw pen
units, nats per line) on 8 further lines of that writer, against the bundled
model's own loss on them. Then draw one picture: the writer's real line, and
the same text written by the bundled model and by each fine-tuned one (bias 1,
seed 1, unprimed: the hand must come from the weights, not from a prime).

    OMP_NUM_THREADS=1 python tools/finetune_demo.py --lines 10 20 40 80 --out docs/finetune.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from hwkit import render
from hwkit.checkpoint import BUNDLED, Checkpoint
from hwkit.config import PrepareParams
from hwkit.dataset import StrokeDataset
from hwkit.demo import held_out_writers, writer_lines
from hwkit.demo_text import make_texts
from hwkit.generate import generate
from hwkit.prepare import split_lines
from hwkit.store import write_store
from hwkit.train import evaluate, start

TEXT = "Quick brown foxes write letters by hand"


def pen_nats(checkpoint: Checkpoint, store: Path) -> float:
    data = StrokeDataset(store, "test", in_memory=True, alphabet=checkpoint.alphabet, stats=checkpoint.stats)
    return evaluate(checkpoint.build_model(), data, 8, torch.device("cpu")).pen_nats_per_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10, 20, 40, 80])
    parser.add_argument("--work", type=Path, default=Path("models/finetune-demo"))
    parser.add_argument("--out", type=Path, default=Path("docs/finetune.png"))
    args = parser.parse_args()
    writer = held_out_writers(0, 40)[0]
    texts = make_texts(max(args.lines) + 8, np.random.default_rng(5))
    held_out = writer_lines(writer, texts[-8:], line_seed=9)  # the same 8 test lines for every count
    rows, captions, results = [], [], []
    real = writer_lines(writer, [TEXT], line_seed=1)[0]
    rows.append(real.offsets)
    captions.append(f"demo writer {writer}'s own hand (never trained on by the bundled model)")
    bundled = Checkpoint.load(BUNDLED)
    made = generate(BUNDLED, [TEXT], bias=1.0, seed=1)
    rows.append(made.result.lines[0].offsets)
    captions.append("bundled model, before fine-tuning")
    for n in args.lines:
        lines = writer_lines(writer, texts[:n], line_seed=3)
        splits, _ = split_lines([line.line_id for line in lines], [writer] * n, {}, PrepareParams())
        splits["train"] += splits["test"]  # the held-out lines below are the test: every count on the same ones
        splits["test"] = list(range(n, n + len(held_out)))
        store = write_store(args.work / f"hand-{n}.h5", lines + held_out, splits, source="demo", force=True)
        shutil.rmtree(args.work / f"lines-{n}", ignore_errors=True)  # this tool's own run of an earlier measurement
        started = time.process_time()
        result = start(store, init_from=BUNDLED, run_dir=args.work / f"lines-{n}", time_limit=0)
        cpu = time.process_time() - started
        tuned = Checkpoint.load(result.best_path)
        results.append({"lines": n, "train_lines": len(splits["train"]), "cpu_minutes": cpu / 60,
                        "epochs": result.epochs, "steps": result.steps, "stopped": result.stopped,
                        "held_out_pen_nats_bundled": pen_nats(bundled, store),
                        "held_out_pen_nats_tuned": pen_nats(tuned, store)})  # fmt: skip
        print(json.dumps(results[-1]), flush=True)
        made = generate(result.best_path, [TEXT], bias=1.0, seed=1)
        rows.append(made.result.lines[0].offsets)
        captions.append(f"fine-tuned on {n} lines ({cpu / 60:.1f} CPU min)")
    placed = render.layout(rows, captions, render.Style(colour="black"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    render.layout_png(placed).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
