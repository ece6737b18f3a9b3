"""Pages: how long a two-page letter takes, lines in batches against one line at a time.

Writes the same two-page text (A5, 3.5 mm x-height, bundled demo model, bias
1, seed 1) twice: with ``--batch 32`` (every line of a round in one network
batch) and with ``--batch 1`` (the straightforward loop: one line per network
call). Reports seconds per page and written lines per second (re-flowed lines
that were written again count), and the ratio of the two. Also times the page
outputs (SVG, PNG, PDF, plotter SVG, G-code, HPGL) for one page. ``--tries``
(default: the bundled model's default, 4) is each line's draws (best kept).

    OMP_NUM_THREADS=1 python benchmarks/bench_pages.py [--threads 1] [--tries 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from hwkit import outputs
from hwkit.checkpoint import BUNDLED
from hwkit.letter import write_document
from hwkit.page import PAPER_SIZES, Setting

PARAGRAPH = (
    "It was a bright cold day in April, and the clocks were striking thirteen. We walked down to the river "
    "before breakfast and watched the boats come in with the morning tide. The water was grey and very still, "
    "and the gulls were quiet for once. After lunch we went up the hill behind the house and sat in the long "
    "grass until the sun went down."
)
TEXT = "Dear Sam,\n\n" + "\n\n".join([PARAGRAPH] * 2) + "\n\nWith love,\nAlex"  # two A5 pages


def timed(batch: int, setting: Setting, tries: int | None):
    start = time.perf_counter()
    letter = write_document(TEXT, setting, BUNDLED, bias=1.0, seed=1, batch=batch, tries=tries)
    return time.perf_counter() - start, letter.document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tries", type=int, help="draws per line [default: the model's default]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    setting = Setting(paper=PAPER_SIZES["a5"], margins=(15.0,) * 4, size=3.5)
    rows = []
    for batch in (32, 1):
        seconds, doc = timed(batch, setting, args.tries)
        rows.append((batch, seconds, doc))
        print(f"batch {batch:>2}: {len(doc.pages)} pages, {len(doc.lines)} lines ({doc.written} written in "
              f"{doc.rounds} rounds): {seconds:.1f} s, {seconds / len(doc.pages):.1f} s/page, "
              f"{doc.written / seconds:.2f} lines/s")  # fmt: skip
    print(f"one batch is {rows[1][1] / rows[0][1]:.2f}x faster than one line at a time "
          f"({args.threads} thread(s))")  # fmt: skip
    page = rows[0][2].pages[:1]
    with tempfile.TemporaryDirectory() as tmp:
        for name in outputs.PAGE_FORMATS:
            start = time.perf_counter()
            outputs.write_pages(page, {name: Path(tmp) / f"page{outputs.PAGE_FORMATS[name]}"})
            print(f"  {name:8s} {time.perf_counter() - start:.2f} s for one page")


if __name__ == "__main__":
    main()
