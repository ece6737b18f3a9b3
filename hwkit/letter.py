"""A document in one hand: the network writes ``page.lay_out``'s lines, all primed with the same line.

One hand for the whole document is what makes a letter look written by one
person. With a style (a style file, a store line, or ``auto``) every line is
primed with it. Without one the hand is ``auto``: one of the model's house
hands, else a train line of its store, chosen by the seed (priming is also what
makes line starts legible, see BENCHMARKS.md, quality). Where neither is to be
had, or with ``auto_hand`` False, the first words of the text are written once
unprimed and that line primes every line of the document, so the hand chosen
by that first sample is carried to the end.

That same hand line sets the scale: its x-height (``page.x_height``) is made
``--size`` mm, and its width per character seeds the word-width estimates
(which ``page.lay_out`` corrects by the first lines written).
Lines are written in batches of ``batch`` (one network batch each), with a
``{"event": "lines", "done", "total", "round"}`` progress event as each round
starts and after each batch; the counts are cumulative over the rounds of re-flowing, and ``total``
grows when a round finds lines to write again.

``write_document`` loads the model and finds the hand (``hwkit sample
--page``); ``write_in_hand`` does the writing with a model already loaded and a
hand already made (the studio, which keeps its models loaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwkit.checkpoint import Checkpoint, find_checkpoint
from hwkit.errors import CheckpointError, StoreError, StyleError, TextError
from hwkit.generate import AUTO, encodable, style_primes
from hwkit.page import Document, Setting, lay_out, parse_text, x_height
from hwkit.paths import MODELS_DIR
from hwkit.progress import Progress, ignore
from hwkit.sample import Prime, sample_text

HAND_CHARS = 40  # characters of the text written unprimed to choose the hand


@dataclass
class Letter:
    document: Document
    checkpoint: Path
    seed: int
    hand: Prime  # the line every line was primed with
    scale: float  # mm per pen unit
    notes: list[str] = field(default_factory=list)


def write_document(
    text: str,
    setting: Setting,
    checkpoint: str | os.PathLike | None = None,
    *,
    style: str | None = None,
    store: str | os.PathLike | None = None,
    bias: float = 1.0,
    seed: int | None = None,
    tries: int | None = None,
    batch: int = 32,
    replace_unknown: bool = False,
    auto_hand: bool = True,
    device: str = "auto",
    models_dir: str | os.PathLike = MODELS_DIR,
    progress: Progress = ignore,
) -> Letter:
    """Lay ``text`` out on pages (``setting``) in one hand; see the module docstring. ``tries``: each line
    is the best of that many draws, as in ``generate``."""
    import secrets

    from hwkit.distributed import pick_device
    from hwkit.legibility import chooser

    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    path = find_checkpoint(checkpoint, models_dir, kind="synthesis")
    ckpt = Checkpoint.load(path)
    if ckpt.kind != "synthesis":
        raise CheckpointError(f"{path}: pages need a synthesis model, not a {ckpt.kind}")
    notes: list[str] = []
    text = encoded_text(ckpt, text, replace_unknown, notes)
    seed = secrets.randbits(32) if seed is None else seed
    model = ckpt.build_model(pick_device(device, None))
    tries, reader = chooser(ckpt, tries, models_dir, device)
    hand = None
    if style is not None or auto_hand:
        try:
            hand = style_primes([style or AUTO], store, ckpt, seed=seed, notes=notes)[0]
        except (StoreError, StyleError):
            if style is not None or store is not None:  # what the user named must work
                raise
            notes.append("no store of the model found to take a hand from: the first words, written once "
                         "unprimed, set the hand")  # fmt: skip
    letter = write_in_hand(model, ckpt, text, setting, hand=hand, seed=seed, bias=bias, tries=tries, reader=reader,
                           batch=batch, progress=progress)  # fmt: skip
    letter.notes[:0] = notes
    letter.checkpoint = path
    return letter


def encoded_text(ckpt: Checkpoint, text: str, replace_unknown: bool, notes: list[str]) -> str:
    """``text`` with stand-ins for the characters ``ckpt`` cannot write (noted), or a ``TextError``: checked
    before any writing, so that a wrong character costs nothing."""
    words = " ".join(w for b in parse_text(text) for w in b.words)
    if not words:
        raise TextError("the text to write is empty")
    made = encodable(ckpt.alphabet, words, replace_unknown, notes)  # stand-ins are one character each
    return text.translate(str.maketrans({a: b for a, b in zip(words, made) if a != b}))


def write_in_hand(
    model,
    ckpt: Checkpoint,
    text: str,
    setting: Setting,
    *,
    hand: Prime | None,
    seed: int,
    bias: float = 1.0,
    tries: int = 1,
    reader=None,
    batch: int = 32,
    progress: Progress = ignore,
    on_rows=None,
) -> Letter:
    """``text`` (checked by ``encoded_text``) on pages, every line primed with ``hand`` (None: the first
    words, written once unprimed); a loaded ``model`` of ``ckpt``, ``tries`` and ``reader`` from
    ``legibility.chooser``. The studio calls this with the model it keeps loaded, and ``on_rows``
    (``sample_text``'s, called every few steps of the pen) to stop a writing whose client left."""
    from hwkit.legibility import best_of

    notes: list[str] = []
    common = {"stats": ckpt.stats, "bias": bias, "on_rows": on_rows}
    if hand is not None:
        hand = Prime(hand.offsets, encodable(ckpt.alphabet, hand.text, True, notes, "style text"))
    else:
        words = " ".join(w for b in parse_text(text) for w in b.words)
        first = words[:HAND_CHARS].rsplit(" ", 1)[0] if len(words) > HAND_CHARS else words
        line = sample_text(model, ckpt.alphabet, [first], seed=seed, **common).lines[0]
        hand = Prime(line.offsets, first)
    scale = setting.size / x_height(hand.offsets)
    char_width = float(np.ptp(np.cumsum(hand.offsets[:, 0]))) * scale / max(len(hand.text), 1)
    calls, rounds, before = 0, 0, 0

    def write(texts: list[str], rooms: list[float]) -> list[np.ndarray]:
        nonlocal calls, rounds, before
        rounds += 1
        progress({"event": "lines", "done": before, "total": before + len(texts), "round": rounds})
        out = []
        for start in range(0, len(texts), batch):
            calls += 1
            chunk = texts[start : start + batch]
            rooms_pen = [r / scale for r in rooms[start : start + batch]]
            result = best_of(model, ckpt.alphabet, chunk, primes=[hand] * len(chunk), seed=seed + calls, tries=tries,
                             reader=reader, hold=ckpt.hand_thresholds, rooms=rooms_pen, **common)  # fmt: skip
            out += [line.offsets for line in result.lines]
            progress({"event": "lines", "done": before + start + len(chunk), "total": before + len(texts),
                      "round": rounds})  # fmt: skip
        before += len(texts)
        return out

    document = lay_out(text, write, setting, scale=scale, char_width=char_width)
    narrowed = sum(line.narrowed for line in document.lines)
    if narrowed:
        notes.append(f"{narrowed} line(s) came out wider than the page even after re-flowing and were narrowed to fit")
    return Letter(document, ckpt.path, seed, hand, scale, notes)

