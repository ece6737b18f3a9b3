"""Give a synthesis model a jump table fitted on a store, the rest of the network frozen (``hwkit.jumpfit``).

The model must read the stroke context (``--stroke-context``). The result holds the
weights only, with the initial model's house hands: choose them again for the new
weights with ``hwkit style house``.

    python tools/fit_jump_table.py stage5.pt cache/demo-caps5.h5 -o models/stage6/best.pt --threads 2
    hwkit style house models/stage6 --store cache/demo.h5 --reader hwkit/pretrained/demo-recognizer.pt
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from hwkit.checkpoint import Checkpoint
from hwkit.jumpfit import fit_jump_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a synthesis checkpoint with the stroke context")
    parser.add_argument("store", help="the store whose train lines it is fitted on (valid lines choose the epoch)")
    parser.add_argument("-o", "--output", required=True, help="where the new checkpoint goes")
    parser.add_argument("--lines", type=int, default=None, help="train lines to use [default: all]")
    parser.add_argument("--word-table", action="store_true",
                        help="fit a word table too: at a space, the letters of the word before it (models.word_before)")
    parser.add_argument("--window-pen", action="store_true",
                        help="let the tables read where the pen has moved since the window came to its character")
    parser.add_argument("--keep-table", action="store_true",
                        help="with --word-table: fit the word table alone, the model's jump table as it is")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started, shown = time.monotonic(), [0.0]

    def progress(event: dict) -> None:
        now = time.monotonic()
        if event["event"] == "epoch" or now - shown[0] > 10 or event["done"] == event["total"]:
            shown[0] = now
            extra = f", valid {event['valid']:.4f} nats per move" if "valid" in event else ""
            what = event.get("split", "epoch")
            print(f"{now - started:6.0f}s {what} {event['done']}/{event['total']}{extra}", file=sys.stderr)

    fit = fit_jump_table(Checkpoint.load(args.model), args.store, lines=args.lines, word_table=args.word_table,
                         window_pen=args.window_pen, keep_table=args.keep_table, epochs=args.epochs, lr=args.lr,
                         progress=progress)  # fmt: skip
    fit.checkpoint.save(args.output)
    started_with = f", {fit.valid_start:.3f} with the table it had" if fit.valid_start != fit.valid_before else ""
    print(f"{args.output}: air moves in valid lines {fit.valid_before:.3f} nats without a table{started_with}, "
          f"{fit.valid_after:.3f} fitted "
          f"(epoch {fit.epoch} of {args.epochs}, {fit.train_moves:,} train moves); valid "
          f"{fit.valid_nats_per_line:.1f} nats per line; {time.monotonic() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
