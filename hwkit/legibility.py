"""Writing that reads back as its text: the hands a model writes best, and the best of a few tries.

A synthesis network's line is a random draw, and some draws misread: a letter
skipped, a capital scribbled, two words run together. Both levers here are
judged by a recognizer (``hwkit.reading``) and were chosen by measurement
(BENCHMARKS.md, quality):

- House hands (``house_hands``): the model writes the same valid texts primed
  with each candidate hand (a train line of each writer), and the hands whose
  writing reads back best travel inside the checkpoint (``Checkpoint.hands``).
  ``--style auto`` primes with one of them, chosen by the seed. Priming is what
  starts a line warm and holds one hand along it.
- Tries (``best_of``): each line is written ``tries`` times in the same batch
  and the draw the reader reads closest to its text is kept; among draws read
  alike, one that holds one hand and the hand of its prime. A line none of whose
  draws reads right is drawn as many times again, once. Choosing and
  judging with the same reader flatters the choice, so ``hwkit evaluate`` says
  when its judge is the reader that chose.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit.alphabet import Alphabet
from hwkit.cer import cer, edit_distance
from hwkit.checkpoint import BUNDLED, BUNDLED_READER, Checkpoint
from hwkit.handstyle import Calibration, prime_distance, switches
from hwkit.progress import Progress, ignore
from hwkit.sample import Prime, SampledLine, SampleResult, sample_text

# Draws per line when a reader is at hand: on the stage 4 bundled model 4 tries took the CER an
# independent reader measures from 8.9% to 4.3%. On stage 12, 8 tries read better than 4 (0.50% against
# 0.64%) and 4 with a second round for the lines none reads right as well as 8 (0.48%), for a tenth more
# draws where 8 take twice as many (BENCHMARKS.md, quality).
DEFAULT_TRIES = 4
SECOND_ROUND_SEED = 2**32  # added to the first round's seed: its draws are not any first round's
HOUSE_HANDS = 8  # hands a bundled model carries
HAND_TEXTS = 30  # valid texts each candidate hand writes when house hands are chosen


def store_reader_dir(fingerprint: str, models_dir: str | os.PathLike) -> Path:
    """The run folder of the recognizer ``hwkit evaluate`` trains for a store that has none."""
    return Path(models_dir) / f"reader-{fingerprint[:12]}"


def reader_for_store(store: dict | None, models_dir: str | os.PathLike) -> Path | None:
    """The recognizer of a store (a checkpoint's ``store`` record): the one ``hwkit evaluate`` trained for it,
    else the bundled reader for a demo-corpus store (it learnt the demo generator's hands, on other writers
    and a drill of capitals and numbers); None when there is neither."""
    store = store or {}
    if store.get("fingerprint"):
        cached = store_reader_dir(store["fingerprint"], models_dir) / "best.pt"
        if cached.is_file():
            return cached
    if store.get("source") == "demo" and BUNDLED_READER.is_file():
        return BUNDLED_READER
    return None


def find_reader(writer: Checkpoint, models_dir: str | os.PathLike) -> Path | None:
    """A recognizer for the ink ``writer`` writes: the bundled reader for the bundled model (both learnt
    the demo corpus's hands), else the reader of the writer's store (``reader_for_store``)."""
    if writer.path is not None and writer.path.resolve() == BUNDLED.resolve():
        return BUNDLED_READER
    return reader_for_store(writer.store, models_dir)


def chooser(writer: Checkpoint, tries: int | None, models_dir: str | os.PathLike, device: str = "cpu"):
    """``(tries, reader)`` for a request: ``tries`` None means ``DEFAULT_TRIES`` when ``writer`` has a
    reader, else 1; the reader (a ``hwkit.reading.Reader``) is None for one try. ``OptionError`` when
    tries are asked of a model without a reader, or of a model that writes no text."""
    from hwkit.errors import OptionError

    found = find_reader(writer, models_dir) if writer.kind == "synthesis" else None
    if tries is None:
        tries = DEFAULT_TRIES if found is not None else 1
    if tries > 1 and writer.kind != "synthesis":
        raise OptionError("tries", f"only for a synthesis model ({writer.name} is a {writer.kind} model)")
    if tries > 1 and found is None:
        raise OptionError("tries", f"no recognizer for the store of {writer.name} to choose among tries; "
                                   "`hwkit evaluate` trains one on first use")  # fmt: skip
    return tries, (_reader(str(found.resolve()), found.stat().st_mtime_ns, device) if tries > 1 else None)


@functools.lru_cache(maxsize=4)
def _reader(path: str, mtime_ns: int, device: str):
    """A recognizer loaded once per file version and device: the studio asks for one on every request
    (loading took about 30 ms of each)."""
    from hwkit.reading import Reader

    return Reader(Checkpoint.load(path), device)


def best_of(
    model,
    alphabet: Alphabet,
    texts: Sequence[str],
    *,
    tries: int,
    reader=None,
    primes: Prime | Sequence[Prime | None] | None = None,
    hold: Sequence[float] = (),
    rooms: Sequence[float] | None = None,
    **options,
) -> SampleResult:
    """``sample_text``, each text drawn ``tries`` times in one batch, keeping the draw ``reader`` (a
    ``hwkit.reading.Reader``) reads with the fewest errors; a text none of whose draws is read right is
    drawn ``tries`` times more, once, and the best of all its draws kept. Ties go to a draw that keeps one
    hand by ``hold`` (a model's ``hand_thresholds``; empty: any), then to one whose ink is at most as wide
    as its text's ``rooms`` entry (pen units; none: any), then to the draw whose style is closest to its
    prime's (measured in units of ``hold``), then to a line stopped by the attention rule, then to the
    first draw. Read-equal draws are common, so the tie-break holds the hand, keeps a page's line inside
    its margins and holds the prime's hand at no cost in legibility; the second round gives the misread
    tenth of lines eight tries' legibility for about a tenth more draws (BENCHMARKS.md, quality).
    ``options`` go to ``sample_text``; the second round has the first's seed plus ``SECOND_ROUND_SEED``
    and streams nothing to ``on_rows``."""
    if tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    if tries == 1:
        return sample_text(model, alphabet, texts, primes=primes, **options)
    if reader is None:
        raise ValueError("choosing among tries needs a reader")
    if primes is None or isinstance(primes, Prime):
        primes = [primes] * len(texts)
    draws, seed = _draw(model, alphabet, texts, primes, tries, reader, options)
    again = [k for k, drawn in enumerate(draws) if min(d.errors for d in drawn) > 0]
    if again:
        options = {**options, "seed": seed + SECOND_ROUND_SEED, "on_rows": None}
        more, _ = _draw(model, alphabet, [texts[k] for k in again], [primes[k] for k in again], tries, reader, options)
        for k, extra in zip(again, more):
            draws[k] += extra

    def tie_break(draw: _Draw, room: float) -> tuple:  # only among the draws read best: about 1 ms a draw
        line = draw.line
        written = line.offsets[line.prime_rows :]
        overruns = bool(len(written)) and bool(np.ptp(np.cumsum(written[:, 0])) > room)  # nothing written fits
        if not hold:
            return False, overruns, 0.0, line.stop != "rule"
        off = prime_distance(draw.prime.offsets, written, hold) if draw.prime is not None else 0.0
        return switches(written, hold), overruns, off, line.stop != "rule"

    keep = []
    for drawn, room in zip(draws, rooms if rooms is not None else [np.inf] * len(texts)):
        fewest = min(d.errors for d in drawn)  # min keeps the first of equals: the earliest draw, first round first
        keep.append(min((d for d in drawn if d.errors == fewest), key=lambda d: tie_break(d, room)).line)
    return SampleResult(keep, seed)


@dataclass
class _Draw:
    line: SampledLine  # knows the text it was asked for (with its prime's under keep_prime)
    prime: Prime | None
    errors: int  # edits between that text and the reader's reading


def _draw(model, alphabet: Alphabet, texts: Sequence[str], primes: Sequence[Prime | None], tries: int, reader,
          options: dict) -> tuple[list[list[_Draw]], int]:  # fmt: skip
    """Each text drawn ``tries`` times in one batch, and read: its draws in order, per text; with the seed
    drawn with."""
    drawn = [p for p in primes for _ in range(tries)]
    result = sample_text(model, alphabet, [t for t in texts for _ in range(tries)], primes=drawn, **options)
    read = reader.read([line.offsets for line in result.lines])
    draws = [_Draw(line, prime, edit_distance(line.text, r)) for line, prime, r in zip(result.lines, drawn, read)]
    return [draws[k * tries : (k + 1) * tries] for k in range(len(texts))], result.seed


def hand_thresholds(store, lines: int = 300) -> list[float]:
    """Style thresholds for ``best_of``'s ``hold``: from up to ``lines`` train lines of ``store``, the hands
    a model trained on it learnt (its valid and test splits hold too few writers to say how much one hand varies)."""
    return Calibration.from_real([store.offsets(int(i)) for i in store.split("train")[:lines]]).thresholds.tolist()


def house_hands(
    writer: Checkpoint,
    store,
    reader,
    *,
    count: int = HOUSE_HANDS,
    texts: int = HAND_TEXTS,
    bias: float = 1.0,
    seed: int = 1,
    device: str = "cpu",
    progress: Progress = ignore,
) -> list[dict]:
    """The ``count`` hands ``writer`` writes most legibly, as ``Checkpoint.hands`` entries, best first.

    Candidates are one train line of each writer of ``store`` fit to prime with
    (``generate.hand_lines``), chosen by ``seed``. Each writes the first ``texts``
    valid transcriptions at ``bias``; ``reader`` reads them back and the hands are
    ranked by that CER. Valid texts, so that test texts stay unseen by the choice.
    """
    import torch

    from hwkit.distributed import pick_device
    from hwkit.generate import encodable, hand_lines

    model = writer.build_model(pick_device(device, None))
    asked = [t.strip() for t in (store.texts[i] for i in store.split("valid")[:texts]) if t.strip()]
    if not asked:
        raise ValueError(f"{store.path}: no valid transcriptions to try hands on")
    first_of_writer: dict[int, int] = {}
    for i in np.random.default_rng(seed).permutation(hand_lines(store)):
        first_of_writer.setdefault(int(store.writer_ids[i]), int(i))
    ranked = []
    for n, i in enumerate(first_of_writer.values()):
        prime = Prime(store.offsets(i), encodable(writer.alphabet, store.texts[i], True, []))
        result = sample_text(model, writer.alphabet, asked, stats=writer.stats, bias=bias, seed=seed, primes=prime)
        score = cer(asked, reader.read([line.offsets for line in result.lines]))
        ranked.append((score, i, prime))
        progress({"event": "hand", "done": n + 1, "total": len(first_of_writer), "line_id": store.line_ids[i],
                  "cer": score})  # fmt: skip
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [{"line_id": store.line_ids[i], "writer_id": int(store.writer_ids[i]), "text": prime.text,
             "offsets": torch.from_numpy(np.asarray(prime.offsets, np.float32)), "cer": float(score)}
            for score, i, prime in ranked[:count]]  # fmt: skip
