"""How well does a recognizer read text no corpus line holds? The judge's own score on fresh sentences.

Each line of TEXTS is drawn by the demo generator in the hand of a held-out writer
of the default demo corpus (its test split's writers, never trained on), then
read back. A judge that reads only its corpus's words would score far worse here
than on the store's test lines; ``hwkit evaluate --text-file TEXTS`` is only as
good as this number.

    python tools/read_fresh.py benchmarks/fresh_texts.txt --reader hwkit/pretrained/demo-recognizer.pt
"""

from __future__ import annotations

import argparse

from hwkit.cer import cer, error_breakdown
from hwkit.checkpoint import Checkpoint
from hwkit.config import DemoParams
from hwkit.demo import held_out_writers, writer_lines
from hwkit.reading import Reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", help="a text file, one line of text per line")
    parser.add_argument("--reader", required=True, help="recognizer checkpoint")
    args = parser.parse_args()
    texts = [t.strip() for t in open(args.texts, encoding="utf-8") if t.strip()]
    demo = DemoParams()
    writers = held_out_writers(demo.seed, demo.writers)
    lines = [line for k, text in enumerate(texts) for line in writer_lines(writers[k % len(writers)], [text], line_seed=k)]
    read = Reader(Checkpoint.load(args.reader), "cpu").read([line.offsets for line in lines])
    rates = error_breakdown(texts, read)["error_rate"]
    print(f"{args.reader}: CER {cer(texts, read):.2%} on {len(texts)} fresh lines by held-out writers {writers}; "
          + ", ".join(f"{k} {v:.1%}" for k, v in rates.items()))


if __name__ == "__main__":
    main()
