"""Pages: how full the lines are, and what filling them costs, over several seeds.

Writes ``bench_pages.py``'s letter (A5, 15 mm margins, 3.5 mm x-height, the
bundled demo model, bias 1, batch 32, the model's default tries) once per seed,
or with ``--postcard`` a short text of a few lines (A6, 10 mm margins, 3 mm),
and prints, per seed: pages, lines, lines written (re-flowed lines count again)
in rounds, seconds, and how much of the measure the lines take (median, min,
max), leaving out the last line of each hard line of the text, which is short
by nature. To compare with an older layout, run the same script with
``PYTHONPATH`` pointing at a checkout of it.

    OMP_NUM_THREADS=1 python benchmarks/bench_fill.py --threads 1 --seeds 1,2,3,4,5,6 [--postcard]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench_pages import TEXT as LETTER
from hwkit.checkpoint import BUNDLED
from hwkit.letter import write_document
from hwkit.page import PAPER_SIZES, Setting, parse_text

POSTCARD = (
    "Dear Jo,\n\nthe weather has been kind all week and we walk along the cliffs every morning. "
    "The cottage is small but warm.\n\nLove, Sam"
)
SETTINGS = {
    LETTER: Setting(paper=PAPER_SIZES["a5"], margins=(15.0,) * 4, size=3.5),
    POSTCARD: Setting(paper=PAPER_SIZES["a6"], margins=(10.0,) * 4, size=3.0),
}


def fills(text: str, lines, setting: Setting) -> list[float]:
    """Each line's ink width over the measure, but for the lines that end a hard line of the text."""
    ends, n = set(), 0
    for block in parse_text(text):
        n += len(block.words)
        ends.add(n)
    out, n = [], 0
    for line in lines:
        n += len(line.text.split())
        if n not in ends:
            out.append(float(np.ptp(np.concatenate(line.strokes)[:, 0])) / setting.measure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--postcard", action="store_true", help="the short text on A6 instead of the letter")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = POSTCARD if args.postcard else LETTER
    setting = SETTINGS[text]
    for seed in map(int, args.seeds.split(",")):
        start = time.perf_counter()
        doc = write_document(text, setting, BUNDLED, bias=1.0, seed=seed, batch=32).document
        seconds = time.perf_counter() - start
        f = fills(text, doc.lines, setting)
        print(f"seed {seed}: {len(doc.pages)} pages, {len(doc.lines)} lines, {doc.written} written in "
              f"{doc.rounds} rounds, {seconds:.1f} s; lines fill {statistics.median(f):.2f} of the measure "
              f"(min {min(f):.2f}, max {max(f):.2f})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
