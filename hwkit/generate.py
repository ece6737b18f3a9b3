"""Write handwriting from what a person names: a checkpoint (or none), texts, styles, options.

``generate`` is the one call behind ``hwkit sample`` (and any other front end):
it finds the checkpoint, turns style names into primes (style files, or line
ids of the checkpoint's store), checks that the request fits the model, makes
the texts encodable, and samples every line as one batch. Writing files is
``hwkit.outputs``' job; this module returns arrays and notes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwkit.alphabet import Alphabet
from hwkit.checkpoint import BUNDLED, Checkpoint, find_checkpoint, find_store
from hwkit.config import WRITERS
from hwkit.errors import CheckpointError, OptionError, StoreError, StyleError, TextError
from hwkit.paths import MODELS_DIR
from hwkit.sample import Prime, SampleResult, sample_unconditional, wrap
from hwkit.sample import replace_unknown as stand_ins
from hwkit.strokes import in_model_units

DEFAULT_LENGTH = 700  # points per unconditional line
DEFAULT_WIDTH = 50  # characters per written line
# A style line is one line of handwriting (~700 points in IAM-OnDB); priming steps through every point,
# so a 100k-point "style" would run for many minutes before writing anything.
MAX_PRIME_POINTS = 4000
# ``--style auto``: one of the model's house hands (``Checkpoint.hands``), else a train line of its store,
# chosen by the seed, primes every line of the request. Measured on the bundled model (BENCHMARKS.md,
# quality): priming is most of what makes a line's first word legible, and it holds one hand for the
# whole request. A model that carries house hands writes in one of them unless told otherwise.
AUTO = "auto"
NONE = "none"  # ``--style none``: no prime; the network starts cold and picks a hand as it goes
# Lines written in one request (all run as one batch): a few pages. Past this, memory and time grow
# without bound for a browser or a stray paste; write long texts in parts.
MAX_LINES = 1000


@dataclass
class Generation:
    """Sampled lines and where they came from; ``notes`` are one line each, for a person to read."""

    result: SampleResult
    checkpoint: Path
    kind: str
    device: str
    bias: float
    tries: int = 1
    notes: list[str] = field(default_factory=list)


def generate(
    checkpoint: str | os.PathLike | None = None,
    texts: Sequence[str] = (),
    *,
    width: int = DEFAULT_WIDTH,
    n: int = 1,
    length: int | None = None,
    strokes: int | None = None,
    bias: float = 0.0,
    seed: int | None = None,
    styles: Sequence[str] = (),
    store: str | os.PathLike | None = None,
    keep_prime: bool = False,
    replace_unknown: bool = False,
    attention: bool = False,
    tries: int | None = None,
    device: str = "auto",
    models_dir: str | os.PathLike = MODELS_DIR,
) -> Generation:
    """Handwriting from a checkpoint: ``texts`` (synthesis, wrapped to ``width``) or ``n`` free lines (prediction).

    ``checkpoint`` is a file or run folder; None takes the newest ``best.pt`` under
    ``models_dir`` (a synthesis one when there are texts), else the bundled demo
    model. A synthesis model writes ``n`` versions of each text line; a prediction
    model writes ``n`` lines of ``length`` points (default 700) or ``strokes`` pen
    lifts. ``styles`` are style files or line ids of ``store`` (default: the
    checkpoint's store), ``auto`` (see ``AUTO``) or ``none``; each primes its own set of
    lines; a model that carries house hands defaults to ``auto``. ``tries``: each
    text line is drawn that many times and the draw its reader reads best is kept
    (``legibility.best_of``); default ``DEFAULT_TRIES`` when the model has a
    reader (``legibility.find_reader``), else 1. ``replace_unknown``
    swaps characters the model lacks for their nearest stand-ins (noted) instead
    of refusing them. ``attention``: the window weights will be drawn, so the
    model must be a synthesis one.
    """
    from hwkit.distributed import pick_device

    from hwkit.legibility import best_of, chooser

    if store is not None and not styles:
        raise OptionError("store", "only with a style given as a line id")
    notes: list[str] = []
    asked, texts = bool(texts), [t for t in texts if t.strip()]
    if asked and not texts:
        raise TextError("the text to write is empty")
    path = find_checkpoint(checkpoint, models_dir, kind="synthesis" if texts else WRITERS)
    if checkpoint is None and path == BUNDLED:  # chosen for the user, so say why; named, it is what they asked
        notes.append(f"no {models_dir}/*/best.pt yet: using the bundled demo model (`hwkit train` makes your own)")
    ckpt = Checkpoint.load(path)
    lines = [line for t in texts for line in wrap(t, width)]
    _check_fits(ckpt, path, lines, length, strokes, attention)
    if not styles and ckpt.hands:
        styles = (AUTO,)
    if keep_prime and all(s == NONE for s in styles):
        raise OptionError("keep_prime", "only with a style")
    if AUTO in styles and seed is None:
        seed = secrets.randbits(32)  # the hand is chosen by the seed, so it is fixed now
    primes: list[Prime | None] = style_primes(styles, store, ckpt, seed=seed, notes=notes) or [None]
    total = len(primes) * n * (len(lines) if ckpt.kind == "synthesis" else 1)
    torch_device = pick_device(device, None)
    tries, reader = chooser(ckpt, tries, models_dir, device)
    if total * tries > MAX_LINES:
        drawn = f"{total:,} lines x {tries} tries" if tries > 1 else f"{total:,} lines"
        raise TextError(f"{drawn} in one request; write at most {MAX_LINES:,} at a time (split the text"
                        f"{', or fewer --tries' if tries > 1 else ''})")  # fmt: skip
    if ckpt.kind == "synthesis":
        lines = [encodable(ckpt.alphabet, t, replace_unknown, notes) for t in lines]
        primes = [p if p is None else Prime(p.offsets, encodable(ckpt.alphabet, p.text, replace_unknown, notes, "style text"))
                  for p in primes]  # fmt: skip
    model = ckpt.build_model(torch_device)
    common = dict(stats=ckpt.stats, bias=bias, seed=seed, keep_prime=keep_prime)
    if ckpt.kind == "synthesis":
        batch = [(p, t) for p in primes for t in lines for _ in range(n)]
        result = best_of(model, ckpt.alphabet, [t for _, t in batch], primes=[p for p, _ in batch], tries=tries,
                         reader=reader, hold=ckpt.hand_thresholds, **common)  # fmt: skip
    else:
        batch_primes = [p for p in primes for _ in range(n)]
        result = sample_unconditional(model, len(batch_primes), length=length or DEFAULT_LENGTH, strokes=strokes,
                                      primes=batch_primes, **common)  # fmt: skip
    return Generation(result, path, ckpt.kind, str(torch_device), bias, tries, notes)


def _check_fits(ckpt: Checkpoint, path: Path, lines: list[str], length: int | None, strokes: int | None,
                attention: bool) -> None:  # fmt: skip
    """What this checkpoint cannot do is a ``CheckpointError`` naming the option at fault."""
    if ckpt.kind not in WRITERS:
        raise CheckpointError(f"{path}: a {ckpt.kind} reads handwriting and cannot write it (try `hwkit read`)")
    if attention and ckpt.kind != "synthesis":
        raise CheckpointError(f"{path}: --plot-attention needs a synthesis model")
    if ckpt.kind == "prediction" and lines:
        raise CheckpointError(
            f"{path}: a prediction model writes without text; drop --text or use a synthesis checkpoint"
        )
    if ckpt.kind == "synthesis":
        given = [f"--{name}" for name, value in (("length", length), ("strokes", strokes)) if value is not None]
        if given:
            raise CheckpointError(f"{' and '.join(given)}: only for a prediction model ({path} is a synthesis "
                                  "model; its lines end by the attention rule)")  # fmt: skip
        if not lines:
            raise CheckpointError(f"{path}: a synthesis model needs --text or --text-file")


def encodable(alphabet: Alphabet, text: str, replace: bool, notes: list[str], what: str = "text") -> str:
    """``text`` if the alphabet has all its characters; else their stand-ins (``replace``, noted) or a ``TextError``."""
    missing = alphabet.unknown(text)
    if not missing:
        return text
    if not replace:
        shown = " ".join(repr(c) for c in missing)
        raise TextError(f"{what} has characters the model's alphabet lacks: {shown} (use --replace-unknown)")
    new, made = stand_ins(alphabet, text)
    notes.append(f"replaced in {what}: " + ", ".join(f"{a!r} -> {b!r}" for a, b in made.items()))
    return new


def hand_lines(store) -> np.ndarray:
    """Train-split lines fit to prime with: 25-60 characters (a full line, not a fragment) and at most
    ``MAX_PRIME_POINTS`` points; any train line within that size when none is (``StyleError``: none)."""
    train = store.split("train")
    lengths = np.diff(store.line_offsets)
    short = [i for i in train if lengths[i] <= MAX_PRIME_POINTS]
    fit = [i for i in short if 25 <= len(store.texts[i]) <= 60]
    if not short:
        raise StyleError(f"{store.path}: no train line of at most {MAX_PRIME_POINTS:,} points to take a hand from")
    return np.asarray(fit if fit else short)


def _names_a_file(spec: str, store_ids) -> bool:
    """A --style value that names a style file: one that is there, a ``.json`` name, or a name with a
    folder that is no line id of the store (``store_ids``, a callable, opened only then): an InkML
    corpus's line ids keep the folders of their files (``sub/letter-01``)."""
    if Path(spec).is_file() or Path(spec).suffix.lower() == ".json":
        return True
    return (os.sep in spec or "/" in spec) and spec not in store_ids()


def auto_hands(ckpt: Checkpoint, store, seed: int, n: int) -> tuple[list[Prime], list[str]]:
    """``n`` hands chosen by ``seed``: house hands when the model carries them, else train lines of ``store``
    (None when it carries them); with what each is, for a person to read."""
    rng = np.random.default_rng(seed)
    if ckpt.hands:
        picks = rng.choice(len(ckpt.hands), n)
        hands = [ckpt.hands[int(k)] for k in picks]
        return ([Prime(h["offsets"].numpy(), h["text"]) for h in hands],
                [f"house hand {k + 1} of {len(ckpt.hands)} (line {h['line_id']}, writer {h['writer_id']})"
                 for k, h in zip(picks, hands)])  # fmt: skip
    from hwkit.style import style_from_store

    picks = rng.choice(hand_lines(store), n)
    return ([style_from_store(store, store.line_ids[int(i)])[0] for i in picks],
            [f"line {store.line_ids[int(i)]} (writer {store.writer_ids[int(i)]}) of {store.path}" for i in picks])


def style_primes(styles: Sequence[str], store: str | os.PathLike | None, ckpt: Checkpoint, *,
                 seed: int | None = None, notes: list[str] | None = None) -> list[Prime | None]:  # fmt: skip
    """Style files as they are; ``auto`` as a house hand, else a train line of the store, chosen by ``seed``
    (``AUTO``); ``none`` as None (no prime); other names as line ids of ``store`` (else of the
    checkpoint's store)."""
    from hwkit.store import Store
    from hwkit.style import load_style, style_from_store

    primes, opened = [], None

    def store_ids() -> list[str]:  # the store's line ids, or none when it cannot be opened
        try:
            return Store(find_store(ckpt, store)).line_ids
        except StoreError:
            return []

    for spec in styles:
        if spec == NONE and not Path(spec).is_file():
            primes.append(None)
            continue
        if spec == AUTO and seed is not None and ckpt.hands:
            chosen, about = auto_hands(ckpt, None, seed, 1)
            primes += chosen
            if notes is not None:
                notes.append(f"--style auto: the model's {about[0]}, chosen by seed {seed}")
            continue
        if spec != AUTO and _names_a_file(spec, store_ids):
            prime = load_style(spec)  # a path that names no file: "no such style file", not "no such line"
            if len(prime.offsets) > MAX_PRIME_POINTS:
                raise StyleError(f"{spec}: {len(prime.offsets):,} points; a style is one line of handwriting, "
                                 f"at most {MAX_PRIME_POINTS:,} points")  # fmt: skip
            primes.append(_in_units(prime, ckpt, spec, notes))
            continue
        if opened is None:  # opened once for every style that names one of its lines
            try:
                opened = Store(find_store(ckpt, store))
            except StoreError as exc:
                if store is not None:
                    raise StoreError(f"--store {exc}") from None
                recorded = (ckpt.store or {}).get("path")
                where = (f"the checkpoint's store {recorded} not found (from here)" if recorded
                         else "the checkpoint records no store to look it up as a line id")  # fmt: skip
                raise StyleError(f"--style {spec}: no such style file, and {where}; pass --store FILE") from None
        if spec == AUTO and seed is not None:
            chosen, about = auto_hands(ckpt, opened, seed, 1)
            primes += chosen
            if notes is not None:
                notes.append(f"--style auto: the hand of {about[0]}, chosen by seed {seed}")
            continue
        primes.append(_in_units(style_from_store(opened, spec)[0], ckpt, spec, notes))
    return primes


def _in_units(prime: Prime, ckpt: Checkpoint, spec: str, notes: list[str] | None) -> Prime:
    """A style line in the model's pen units: one in mm (InkML with a physical scale) primed a model of
    tablet units as a dot (``strokes.in_model_units``)."""
    offsets, factor = in_model_units(prime.offsets, ckpt.stats["std"])
    if factor == 1.0:
        return prime
    if notes is not None:
        notes.append(f"--style {spec} is in other units than the model's: scaled by {factor:.3g}")
    return Prime(offsets, prime.text)
