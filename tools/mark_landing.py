"""Where do a synthesis model's deferred dots and bars land, and where does its next word start? Sampled lines
against its writers.

Each sampled line, primed by a house hand as ``hwkit sample`` does, is measured
against the same text written by that hand's demo writer, by kind of hand
(joined-up writers defer their marks, print writers place them as they go).

Marks' landing errors and word gaps are ``hwkit.placement``'s, in letter widths.
The writers' window is the model's, teacher-forced over their lines.

    python tools/mark_landing.py hwkit/pretrained/demo-synthesis.pt --texts 30
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hwkit.checkpoint import Checkpoint
from hwkit.dataset import model_input
from hwkit.demo import WRITER_ID_BASE, writer_lines, writer_style
from hwkit.generate import auto_hands, encodable
from hwkit.placement import RUN_ON, landing_errors, word_gaps
from hwkit.sample import Prime, sample_text


def teacher_forced_phi(model, ck: Checkpoint, offsets: np.ndarray, text: str) -> np.ndarray:
    """The window when each row of a real line was drawn (row i: after step i - 1)."""
    mean, std = (np.asarray(ck.stats[k], np.float32) for k in ("mean", "std"))
    x = torch.from_numpy(model_input(offsets, mean, std))[None]
    chars = torch.from_numpy(ck.alphabet.encode(text).astype(np.int64))[None]
    with torch.no_grad():
        _, _, attention = model(x[:, :-1], chars, chars != 0)
    return np.concatenate([np.zeros((1, len(text) + 1)), attention.phi[0].numpy()])


def report(name: str, marks: list[float], gaps: list[float]) -> None:
    e, g = np.array(marks), np.array(gaps)
    stray, e, g = int(np.isnan(e).sum()), e[~np.isnan(e)], g[~np.isnan(g)]
    landing = "none"
    if len(e):
        landing = f"median {np.median(e):.2f}, within half a letter {np.mean(e < 0.5):.0%}, beyond one {np.mean(e > 1):.0%}"
    print(f"{name}: {len(e) + stray} marks, {stray} after a word that owes none; landing error (letter widths) "
          f"{landing}; {len(g)} word gaps, median {np.median(g):.2f} letters, {np.sum(g < RUN_ON)} "
          f"({np.mean(g < RUN_ON):.1%}) under {RUN_ON}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a synthesis checkpoint with house hands of the default demo corpus")
    parser.add_argument("--text-file", default="benchmarks/fresh_texts.txt")
    parser.add_argument("--texts", type=int, default=30, help="the first N texts")
    parser.add_argument("--seed", type=int, action="append", help="sampling seeds (default: 1 and 2)")
    parser.add_argument("--bias", type=float, default=1.0)
    args = parser.parse_args()
    texts = [t.strip() for t in open(args.text_file) if t.strip()][: args.texts]
    ck = Checkpoint.load(args.checkpoint)
    if not ck.hands:
        parser.error(f"{args.checkpoint}: has no house hands to prime with")
    model = ck.build_model(torch.device("cpu")).eval()
    # by hand kind: joined-up writers defer their marks; print writers place them as they go
    found = {(who, joined): ([], []) for who in ("sampled", "writers") for joined in (True, False)}
    for seed in args.seed or [1, 2]:
        primes, _ = auto_hands(ck, None, seed, len(texts))
        hands = [next(k for k, h in enumerate(ck.hands) if np.array_equal(h["offsets"].numpy(), p.offsets))
                 for p in primes]  # fmt: skip
        primes = [Prime(p.offsets, encodable(ck.alphabet, p.text, True, [])) for p in primes]
        lines = sample_text(model, ck.alphabet, texts, stats=ck.stats, bias=args.bias, seed=seed, primes=primes).lines
        for text, hand, line in zip(texts, hands, lines):
            writer = int(ck.hands[hand]["writer_id"]) - WRITER_ID_BASE
            real = writer_lines(writer, [text], line_seed=seed)[0]
            joined = writer_style(0, writer).defer_marks
            for who, offsets, phi in (("sampled", line.offsets, line.phi),
                                      ("writers", real.offsets, teacher_forced_phi(model, ck, real.offsets, text))):
                marks, gaps = found[who, joined]
                marks += landing_errors(offsets, phi, text)
                gaps += word_gaps(offsets, phi, text)
    for joined in (True, False):
        for who in ("sampled", "writers"):
            what = "sampled at bias {:g}, one try".format(args.bias) if who == "sampled" else "their writers' lines"
            report(f"{'joined-up' if joined else 'print'} hands, {what}", *found[who, joined])


if __name__ == "__main__":
    main()
