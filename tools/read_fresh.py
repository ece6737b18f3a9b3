"""How well does a recognizer read text no corpus line holds? The judge's own score on fresh sentences.

Each line of TEXTS is drawn by the demo generator in the hand of a held-out writer
of the default demo corpus (its test split's writers, never trained on), then
read back. A judge that reads only its corpus's words would score far worse here
than on the store's test lines; ``hwkit evaluate --text-file TEXTS`` is only as
good as this number.

    python tools/read_fresh.py benchmarks/fresh_texts.txt --reader hwkit/pretrained/demo-recognizer.pt

With ``--hands MODEL`` every line is drawn instead by each of the writers of
MODEL's house hands (``--seed`` varies the strokes): the real writing that model
imitates, read by the same judge, which is the most its own writing can score.
"""

from __future__ import annotations

import argparse

from hwkit.cer import cer, error_breakdown
from hwkit.checkpoint import Checkpoint
from hwkit.config import DemoParams
from hwkit.demo import WRITER_ID_BASE, held_out_writers, writer_lines
from hwkit.reading import Reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", help="a text file, one line of text per line")
    parser.add_argument("--reader", required=True, help="recognizer checkpoint")
    parser.add_argument("--hands", help="a synthesis checkpoint: its house hands' demo writers draw every line")
    parser.add_argument("--seed", type=int, default=1, help="with --hands: the strokes' seed")
    args = parser.parse_args()
    texts = [t.strip() for t in open(args.texts, encoding="utf-8") if t.strip()]
    demo = DemoParams()
    if args.hands:
        hands = Checkpoint.load(args.hands).hands
        writers = [int(hand.get("writer_id", -1)) - WRITER_ID_BASE for hand in hands]
        if not hands or not all(0 <= w < demo.writers for w in writers):
            parser.error(f"{args.hands}: its house hands are not all writers of the default demo corpus")
        lines = [line for w in writers for line in writer_lines(w, texts, line_seed=args.seed)]
        texts, who = texts * len(writers), f"each of the {len(writers)} house hands' writers {writers}"
    else:
        writers = held_out_writers(demo.seed, demo.writers)
        lines = [line for k, text in enumerate(texts)
                 for line in writer_lines(writers[k % len(writers)], [text], line_seed=k)]  # fmt: skip
        who = f"held-out writers {writers}"
    read = Reader(Checkpoint.load(args.reader), "cpu").read([line.offsets for line in lines])
    errors = error_breakdown(texts, read)
    words = errors["word_accuracy"]
    print(f"{args.reader}: CER {cer(texts, read):.2%} on {len(texts)} fresh lines by {who}; "
          + ", ".join(f"{k} {v:.1%}" for k, v in errors["error_rate"].items())
          + "; first / later words read exactly "
          + " / ".join("n/a" if words[k] is None else f"{words[k]:.0%}" for k in ("first", "later")))


if __name__ == "__main__":
    main()
