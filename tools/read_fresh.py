"""How well does a recognizer read text no corpus line holds? The judge's own score on fresh sentences.

Each line of TEXTS is drawn by the demo generator in the hand of a held-out writer
of the default demo corpus (its test split's writers, never trained on), then
read back. A judge that reads only its corpus's words would score far worse here
than on the store's test lines; ``hwkit evaluate --text-file TEXTS`` is only as
good as this number.

    python tools/read_fresh.py benchmarks/fresh_texts.txt --reader hwkit/pretrained/demo-judge.pt

With ``--hands MODEL`` every line is drawn instead by each of the writers of
MODEL's house hands (``--seed`` varies the strokes; several are pooled): the real writing that model
imitates, read by the same judge, which is the most its own writing can score. ``--against
REPORT`` (``hwkit evaluate MODEL --text-file TEXTS --json``) then counts how many more errors the
model's lines have than its writers' would have on the same texts, text by text:

    hwkit evaluate hwkit/pretrained/demo-synthesis.pt --store cache/demo.h5 --text-file benchmarks/fresh_texts.txt \
        --seed 1 --seed 2 --seed 3 --bias 1 --json > report.json
    python tools/read_fresh.py benchmarks/fresh_texts.txt --reader hwkit/pretrained/demo-judge.pt \
        --hands hwkit/pretrained/demo-synthesis.pt --seed 1 --seed 2 --seed 3 --against report.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwkit.cer import SHARES, excess, pooled
from hwkit.checkpoint import Checkpoint
from hwkit.config import DemoParams
from hwkit.demo import WRITER_ID_BASE, held_out_writers, writer_lines
from hwkit.reading import Reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", help="a text file, one line of text per line")
    parser.add_argument("--reader", required=True, help="recognizer checkpoint")
    parser.add_argument("--hands", help="a synthesis checkpoint: its house hands' demo writers draw every line")
    parser.add_argument("--seed", type=int, action="append", help="with --hands: the strokes' seed; repeatable, "
                                                                  "pooled (default: 1)")
    parser.add_argument("--against", help="with --hands: an `hwkit evaluate --json` report of the model writing TEXTS")
    parser.add_argument("--bias", type=float, default=1.0, help="with --against: the report's runs at this bias")
    args = parser.parse_args()
    if args.against and not args.hands:
        parser.error("--against needs --hands")
    texts = asked = [t.strip() for t in open(args.texts, encoding="utf-8") if t.strip()]
    model = _report_readings(args.against, args.reader, args.bias, asked) if args.against else None
    demo = DemoParams()
    if args.hands:
        hands = Checkpoint.load(args.hands).hands
        writers = [int(hand.get("writer_id", -1)) - WRITER_ID_BASE for hand in hands]
        if not hands or not all(0 <= w < demo.writers for w in writers):
            parser.error(f"{args.hands}: its house hands are not all writers of the default demo corpus")
        seeds = args.seed or [1]
        lines = [line for seed in seeds for w in writers for line in writer_lines(w, texts, line_seed=seed)]
        clusters = list(range(len(texts))) * len(writers) * len(seeds)  # a text one writer misreads, all often do
        texts, who = texts * len(writers) * len(seeds), f"each of the {len(writers)} house hands' writers {writers}"
    else:
        writers = held_out_writers(demo.seed, demo.writers)
        lines = [line for k, text in enumerate(texts)
                 for line in writer_lines(writers[k % len(writers)], [text], line_seed=k)]  # fmt: skip
        who, clusters = f"held-out writers {writers}", None
    read = Reader(Checkpoint.load(args.reader), "cpu").read([line.offsets for line in lines])
    if model is not None:
        _compare(model, args.bias, asked, texts, read, clusters)
        return
    shares = pooled(texts, read, clusters)
    print(f"{args.reader} on {len(texts)} fresh lines by {who}, misread (95% interval):")
    for name in SHARES:
        s = shares[name]
        print(f"  {name}: " + ("n/a" if s is None else f"{s['rate']:.1%} ({s['low']:.1%}-{s['high']:.1%}), "
                                                         f"{s['wrong']} of {s['count']}"))


def _report_readings(report_path: str, reader: str, bias: float, asked: list[str]) -> tuple[list[str], int]:
    """The readings of the report's runs at ``bias`` and how many runs they are; exits when the report wrote
    other texts or was read by another judge than ``reader`` (two judges' errors do not compare)."""
    writing = json.loads(Path(report_path).read_text(encoding="utf-8"))["writing"]
    runs = [run for run in writing["runs"] if run["bias"] == bias]
    if not runs or writing.get("asked") != asked:
        raise SystemExit(f"{report_path}: no runs at bias {bias:g} of these {len(asked)} texts")
    if Path(writing["reader"]).resolve() != Path(reader).resolve():
        raise SystemExit(f"{report_path}: read by {writing['reader']}, not {reader}")
    return [reading for run in runs for reading in run["readings"]], len(runs)


def _compare(model: tuple[list[str], int], bias: float, asked: list[str], texts: list[str], read: list[str],
             clusters: list[int]) -> None:
    """The model's errors (``_report_readings``) against its writers' rate on each text."""
    readings, runs = model
    found = excess(asked * runs, readings, list(range(len(asked))) * runs, texts, read, clusters)
    print(f"the model's {len(readings)} lines at bias {bias:g} against its writers' {len(read)} "
          "(errors; expected at the writers' rate on the same texts; the excess with its 95% interval):")
    for name, share in found.items():
        if share is not None:
            print(f"  {name}: {share['wrong']} against {share['expected']:.1f} expected: "
                  f"{share['excess']:+.1f} +- {share['half_width']:.1f}")


if __name__ == "__main__":
    main()
