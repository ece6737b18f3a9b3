"""Where do a synthesis model's deferred dots and bars land, on its own history? Sampled lines against its writers.

A joined-up hand writes an i's dot or a t's bar after the word. Teacher-forced loss
cannot see where a model's marks land when it writes, on a history of its own
(BENCHMARKS.md, quality, "Stage 11 without its levers"), so this samples lines and
measures them. A mark is a stroke of at most ``MARK_POINTS`` points reached by a move
to the left while the window is on a space or past the text. Its landing error is the
distance along the line from its centre to the centre of the nearest letter of the
word before that owns a mark (``MARKED``; a letter's centre is the mean x of the points
drawn while the window peaked on it), in the line's median letter widths. A mark
after a word that owes none is counted apart. The same is measured on the lines of
the demo writers who defer their marks, the window taken from the model teacher-forced.

    python tools/mark_landing.py hwkit/pretrained/demo-synthesis.pt --texts 30
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hwkit.checkpoint import Checkpoint
from hwkit.dataset import model_input
from hwkit.demo import writer_lines, writer_style
from hwkit.generate import generate

MARKED = set("ijtfxFET")  # letters whose demo glyphs have a dot or bar a joined-up writer defers
MARK_POINTS = 12


def landing_errors(offsets: np.ndarray, phi: np.ndarray, text: str) -> list[float]:
    """Each mark's landing error in letter widths (NaN: the word owes no mark); ``phi[i]`` is the window when
    row ``i`` of ``offsets`` was drawn."""
    pen = np.cumsum(offsets[:, :2], 0)
    pos = phi.argmax(1)
    lifts = np.flatnonzero(offsets[:, 2] > 0.5)
    centre, widths = {}, []
    for u, ch in enumerate(text):
        rows = np.flatnonzero(pos == u)
        if ch != " " and len(rows):
            centre[u] = pen[rows, 0].mean()
            widths.append(np.ptp(pen[rows, 0]))
    width = float(np.median([w for w in widths if w > 0] or [1.0]))
    errors = []
    for start, end in zip(lifts[:-1] + 1, lifts[1:]):
        u = pos[start - 1]
        if end - start + 1 > MARK_POINTS or offsets[start, 0] >= 0 or (u < len(text) and text[u] != " "):
            continue
        first = text.rfind(" ", 0, min(u, len(text))) + 1  # the word before the space (or the text's end)
        owners = [v for v in range(first, min(u, len(text))) if text[v] in MARKED and v in centre]
        x = pen[start : end + 1, 0].mean()
        errors.append(min(abs(x - centre[v]) for v in owners) / width if owners else float("nan"))
    return errors


def report(name: str, errors: list[float]) -> None:
    e = np.array(errors)
    stray = int(np.isnan(e).sum())
    e = e[~np.isnan(e)]
    print(f"{name}: {len(e) + stray} marks, {stray} after a word that owes none; landing error (letter widths) "
          f"median {np.median(e):.2f}, within half a letter {np.mean(e < 0.5):.0%}, beyond one {np.mean(e > 1):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a synthesis checkpoint with house hands (it primes each line)")
    parser.add_argument("--text-file", default="benchmarks/fresh_texts.txt")
    parser.add_argument("--texts", type=int, default=30, help="the first N texts")
    parser.add_argument("--seed", type=int, action="append", help="sampling seeds (default: 1 and 2)")
    parser.add_argument("--bias", type=float, default=1.0)
    parser.add_argument("--writer-texts", type=int, default=10, help="texts each joined-up demo writer writes")
    args = parser.parse_args()
    texts = [t.strip() for t in open(args.text_file) if t.strip()][: args.texts]
    errors: list[float] = []
    for seed in args.seed or [1, 2]:
        lines = generate(args.checkpoint, texts, seed=seed, bias=args.bias, tries=1, attention=True, width=1000)
        for line in lines.result.lines:
            errors += landing_errors(line.offsets, line.phi, line.text)
    report(f"sampled, bias {args.bias}, one try", errors)

    ck = Checkpoint.load(args.checkpoint)
    model = ck.build_model(torch.device("cpu")).eval()
    mean, std = (np.asarray(ck.stats[k], np.float32) for k in ("mean", "std"))
    errors = []
    for writer in range(40):  # the default demo corpus's writers (seed 0)
        if not writer_style(0, writer).defer_marks:
            continue
        for line in writer_lines(writer, texts[: args.writer_texts], line_seed=7):
            x = torch.from_numpy(model_input(line.offsets, mean, std))[None]
            chars = torch.from_numpy(ck.alphabet.encode(line.text).astype(np.int64))[None]
            with torch.no_grad():
                _, _, attention = model(x[:, :-1], chars, chars != 0)
            phi = np.concatenate([np.zeros((1, len(line.text) + 1)), attention.phi[0].numpy()])  # row i: step i - 1
            errors += landing_errors(line.offsets, phi, line.text)
    report("the joined-up demo writers' own lines, window teacher-forced", errors)


if __name__ == "__main__":
    main()
