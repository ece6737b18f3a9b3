"""Checkpoint + options -> handwriting as stroke arrays (no file IO).

Sampling is incremental: one network step per point with the recurrent state
carried (``models.Stepper``, the same maths as a ``T = 1`` forward), so a line
costs ``length`` network steps rather than the ``length**2 / 2`` of re-running
the network over the prefix for every new point.

All lines of a request run as one batch: one forward per step serves every
line, whatever its text, prime or length. Lines that have stopped ride along
until the last one stops; their further points are simply not recorded. A line
primed with a real line (Graves sec. 5.5) is teacher-forced through its prime
inside the same step loop, so primes of different lengths share the batch too.

Lines come back in raw pen units (the units of the store the model was trained
on), with what the network predicted for each point: the end-of-stroke
probability, the mixture it was drawn from and, for synthesis, the window
weights. Those feed the eos shading, the density and the attention pictures.
"""

from __future__ import annotations

import secrets
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hwkit import mdn
from hwkit.alphabet import Alphabet
from hwkit.errors import TextError
from hwkit.models import Attention, Stepper, SynthesisNet, finished
from hwkit.strokes import PEN_UP, denormalise, model_input

# Safety net for synthesis when Graves' stop rule never fires: about 25 points
# per character in IAM-OnDB, so 40 per character plus a tail is generous.
POINTS_PER_CHAR_CAP = 40
CAP_EXTRA_POINTS = 100
# Graves' rule fires while the pen may still be on the paper; the line goes on to that stroke's pen lift,
# at most this many points (measured: 2-5; BENCHMARKS.md, quality), else it ends where the rule fired.
STROKE_TAIL = 20
# After that lift a joined-up hand may go back over the line for the last word's i-dots and t-bars, which
# it defers (BENCHMARKS.md, quality): up to MARKS strokes of at most MARK_POINTS points each, each reached by
# a move to the left, are the line's; the first other stroke is not (what a net writes past its text heads on
# to the right).
MARKS = 3
MARK_POINTS = 12

STOP_REASONS = ("rule", "cap", "length", "strokes")
OnRows = Callable[[list[np.ndarray]], None]  # each line's newly drawn rows of its own ink: see ``sample_text``
_RULE, _CAP, _LENGTH, _STROKES = range(1, 5)

# Nearest stand-ins for characters an alphabet commonly lacks (typographic
# punctuation); letters with accents fall back to their base letter (NFKD).
_LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\t": " ", "\u2026": ".",
    # brackets and slashes: the nearest bracket or stroke the alphabet has, in order of preference
    "[": "(", "]": ")", "(": "[", ")": "]", "{": "([", "}": ")]", "<": "([", ">": ")]",
    "/": "-", "\\": "/-", "|": "lI!", "_": "-", "~": "-",
}  # fmt: skip


@dataclass(frozen=True)
class Prime:
    """A real line to continue from: offsets ``(n, 3)`` in raw pen units and its text."""

    offsets: np.ndarray
    text: str = ""


@dataclass
class Density:
    """The mixture each point was drawn from, in raw pen units (see ``hwkit.mdn``).

    Row ``i`` predicts row ``i``'s ``(dx, dy)``, i.e. the move from point ``i - 1``;
    row 0 has no previous point and carries no prediction worth drawing.
    """

    weights: np.ndarray  # (n, M)
    mu: np.ndarray  # (n, M, 2)
    sigma: np.ndarray  # (n, M, 2)
    rho: np.ndarray  # (n, M)


@dataclass
class SampledLine:
    """One generated line, row-aligned with what the network predicted.

    ``offsets`` follow the package convention (row 0 at the origin, ``pen_up``
    on every stroke's last point, so on the last row too). With ``keep_prime``
    the first ``prime_rows`` rows are the prime, copied exactly. ``phi[i, u]``
    is the window weight on character ``u`` of ``text`` when row ``i`` was
    drawn (the last column is the position past the text); it is ``None`` for
    unconditional lines.
    """

    offsets: np.ndarray  # (n, 3) float32, raw units
    eos: np.ndarray  # (n,) predicted P(pen_up) of each row
    density: Density
    stop: str  # one of STOP_REASONS
    text: str = ""
    phi: np.ndarray | None = None  # (n, len(text) + 1)
    prime_rows: int = 0


@dataclass
class SampleResult:
    lines: list[SampledLine]
    seed: int

    def stop_counts(self) -> Counter:
        """How many lines stopped for each reason (``rule``, ``cap``, ``length``, ``strokes``)."""
        return Counter(line.stop for line in self.lines)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The lines in the store's ragged layout (flat offsets + CSR ``line_offsets``), for ``np.savez``.

        Plain arrays only (no objects), so ``np.load`` reads them without pickle.
        """
        offsets = [line.offsets for line in self.lines]
        return {
            "offsets": np.concatenate(offsets) if offsets else np.zeros((0, 3), np.float32),
            "line_offsets": np.concatenate([[0], np.cumsum([len(o) for o in offsets])]).astype(np.int64),
            "eos": np.concatenate([line.eos for line in self.lines]) if offsets else np.zeros(0, np.float32),
            "text": np.array([line.text for line in self.lines], dtype=str),
            "stop": np.array([line.stop for line in self.lines], dtype=str),
            "prime_rows": np.array([line.prime_rows for line in self.lines], dtype=np.int64),
            "seed": np.array(self.seed),
        }

    def as_dict(self) -> dict:
        """JSON-ready: per line its text, stop reason and offsets ``[[dx, dy, pen_up], ...]`` in raw pen units."""
        return {
            "units": "raw pen units, y down; row 0 at the origin",
            "seed": self.seed,
            "lines": [
                {
                    "text": line.text,
                    "stop": line.stop,
                    "prime_rows": line.prime_rows,
                    "offsets": np.round(line.offsets.astype(np.float64), 4).tolist(),
                }
                for line in self.lines
            ],
        }


def wrap(text: str, width: int) -> list[str]:
    """Split running text into lines of at most ``width`` characters at spaces.

    Graves' network was trained on single handwritten lines of about 25-50
    characters; longer texts must become several lines, not one long one.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    return textwrap.wrap(" ".join(text.split()), width) or [""]


def replace_unknown(alphabet: Alphabet, text: str) -> tuple[str, dict[str, str]]:
    """``text`` with every character the alphabet lacks replaced by its nearest stand-in.

    Tries typographic look-alikes (curly quotes, dashes, brackets: ``[`` -> ``(``,
    ``/`` -> ``-``), each in order of preference, then the base letter
    of an accented one, then the other case, and falls back to a space. Returns
    the new text and the replacements made (``{original: replacement}``).
    """
    made: dict[str, str] = {}
    for c in alphabet.unknown(text):
        base = "".join(ch for ch in unicodedata.normalize("NFKD", c) if not unicodedata.combining(ch))
        candidates = [*_LOOKALIKES.get(c, ""), base, c.swapcase()]
        made[c] = next((r for r in candidates if len(r) == 1 and not alphabet.unknown(r)), " ")
    return "".join(made.get(c, c) for c in text), made


def _resolve_seed(seed: int | None) -> int:
    return secrets.randbelow(2**31) if seed is None else int(seed)


def _primes(primes: Prime | Sequence[Prime | None] | None, n: int) -> list[Prime | None]:
    """One prime (or ``None``) per line."""
    primes = [primes] * n if primes is None or isinstance(primes, Prime) else list(primes)
    if len(primes) != n:
        raise ValueError(f"{len(primes)} primes for {n} lines")
    if any(p is not None and len(p.offsets) == 0 for p in primes):
        raise ValueError("a prime needs at least one point")
    return primes


def _teacher_rows(prime: Prime | None, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The rows a line is forced through before it samples: its prime, or the start token."""
    if prime is None:
        return np.zeros((1, 3), np.float32)
    return model_input(prime.offsets, mean, std)


def sample_unconditional(
    model: torch.nn.Module,
    n: int,
    *,
    stats: Mapping[str, Sequence[float]],
    length: int = 700,
    strokes: int | None = None,
    bias: float = 0.0,
    seed: int | None = None,
    primes: Prime | Sequence[Prime | None] | None = None,
    keep_prime: bool = False,
) -> SampleResult:
    """``n`` lines from a prediction network, each ``length`` new points long or ending
    after ``strokes`` pen lifts (whichever comes first).

    ``stats`` is the checkpoint's ``{"mean", "std"}``; ``primes`` (one for all
    lines, or one per line) are real lines the network reads first and then
    continues. The same ``seed`` gives the same lines; ``None`` picks one (kept
    in the result).
    """
    if length < 2 or n < 1:
        raise ValueError(f"need at least 1 line of at least 2 points, got {n} of {length}")
    primes = _primes(primes, n)
    # Without a prime the start token is the line's first point, so it counts.
    budgets = [length - (p is None) for p in primes]
    seed = _resolve_seed(seed)
    trace = _run(model, stats, primes, budgets, text=None, strokes=strokes, bias=bias, seed=seed)
    return SampleResult([_line(trace, i, p, None, keep_prime) for i, p in enumerate(primes)], seed)


def sample_text(
    model: torch.nn.Module,
    alphabet: Alphabet,
    texts: Sequence[str],
    *,
    stats: Mapping[str, Sequence[float]],
    bias: float = 0.0,
    seed: int | None = None,
    primes: Prime | Sequence[Prime | None] | None = None,
    keep_prime: bool = False,
    points_per_char: int = POINTS_PER_CHAR_CAP,
    on_rows: OnRows | None = None,
) -> SampleResult:
    """One line of handwriting per text from a synthesis network.

    A line stops by Graves' rule (``models.finished``: the window weighs the
    position past the text above every character; the stroke under way is
    finished first, see ``_stops``) or, failing that, at
    ``points_per_char * len(text) + CAP_EXTRA_POINTS`` new points. A primed
    line is conditioned on ``prime.text + " " + text`` and teacher-forced
    through the prime's strokes, so the window starts on ``text`` in the
    prime's hand; its ink starts where the window reaches ``text``, and whole
    strokes the pen finished before that (the prime's dots and bars, redrawn)
    are left out (``_prime_rows``). Texts must be encodable (see ``replace_unknown``).

    ``on_rows(chunks)`` sees the points as the pen draws them, every few steps,
    for a front end that shows writing as it happens: ``chunks[i]`` holds line
    i's rows drawn since the last call (often none), raw units, so that all its
    chunks joined are its ``SampledLine.offsets`` without ``keep_prime``. A
    primed line's rows come once its window has reached its text, and none
    come past its stop, though the batch steps on until its last line stops.
    An exception it raises stops the sampling and propagates.
    """
    if not isinstance(model, SynthesisNet):
        raise TypeError("sample_text needs a synthesis network")
    if not texts:
        raise ValueError("no texts to write")
    primes = _primes(primes, len(texts))
    for text in texts:
        if not text.strip():
            raise TextError("cannot write an empty line of text")
    if any(p is not None for p in primes) and alphabet.unknown(" "):
        raise TextError("priming reads the style's text, a space, then the text; this model's alphabet has no "
                        "space, so it cannot be primed")  # fmt: skip
    full = [text if p is None else f"{p.text} {text}" for text, p in zip(texts, primes)]
    codes = [alphabet.encode(t) for t in full]  # raises TextError naming missing characters
    budgets = [points_per_char * len(t) + CAP_EXTRA_POINTS for t in texts]
    seed = _resolve_seed(seed)
    trace = _run(model, stats, primes, budgets, text=codes, strokes=None, bias=bias, seed=seed, on_rows=on_rows)
    lines = [
        _line(trace, i, p, (full[i] if keep_prime else text, len(full[i])), keep_prime)
        for i, (text, p) in enumerate(zip(texts, primes))
    ]
    return SampleResult(lines, seed)


@dataclass
class _Trace:
    """A batch run: rows (normalised) and row-aligned predictions, all on the CPU."""

    rows: np.ndarray  # (B, T, 3)
    n_rows: list[int]  # rows each line holds (prime or start token included)
    n_prime: list[int]
    reason: list[int]  # 1-based index into STOP_REASONS
    eos: np.ndarray  # (B, T)
    density: Density  # arrays (B, T, ...) in raw units
    phi: np.ndarray | None  # (B, T, U + 1)
    mean: np.ndarray
    std: np.ndarray


# Steps between checks whether every line has stopped: the stops are worked out
# exactly afterwards (``_stops``), so checking is only about not stepping on for
# long after the last line has ended; a few spare steps cost less than a check per step.
_CHECK_EVERY = 16


def _line_generator(seed: int, line: int, device: torch.device) -> torch.Generator:
    """A generator for one line of a batch, independent of the others (SeedSequence mixes the pair)."""
    state = np.random.SeedSequence([seed % 2**64, line]).generate_state(2, np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


@torch.inference_mode()
def _run(model, stats, primes, budgets, *, text, strokes, bias, seed, on_rows=None) -> _Trace:
    """Step the batch until every line has stopped; ``text`` is the character codes per line, or None.

    The loop only steps and samples: the network's raw outputs are kept and
    split into mixtures once at the end, and where each line stops (Graves'
    rule, the cap or length, the pen lifts) is read off the stored rows and
    window weights by ``_stops``, exactly as if it had been checked after every
    point. The randomness is drawn before the loop (``mdn.draw_noise``).
    """
    device = next(model.parameters()).device
    mean = np.asarray(stats["mean"], np.float64)
    std = np.asarray(stats["std"], np.float64)
    teachers = [_teacher_rows(p, mean, std) for p in primes]
    b = len(teachers)
    n_prime = torch.tensor([len(t) for t in teachers], device=device)
    budget = torch.tensor(budgets, device=device)
    total = int((n_prime + budget).max())
    rows = torch.zeros(b, total, 3)
    for i, t in enumerate(teachers):
        rows[i, : len(t)] = torch.from_numpy(t)
    rows = rows.to(device)
    char_lengths = None
    if text is not None:
        chars = torch.zeros(b, max(map(len, text)), dtype=torch.long)
        for i, c in enumerate(text):
            chars[i, : len(c)] = torch.from_numpy(c)
        chars = chars.to(device)
        char_mask = chars != 0
        char_lengths = char_mask.sum(1)
    step = Stepper(model) if text is None else Stepper(model, chars, char_mask)
    mixtures = model.config.mixtures

    # one random stream per line, keyed by (seed, line position): adding lines after a line leaves it as it was
    streams = [_line_generator(seed, i, device) for i in range(b)]
    noise = torch.stack([mdn.draw_noise((total - 1,), mixtures, bias, g, rows.dtype, device) for g in streams], dim=1)
    max_lifts = strokes if strokes else total + 1
    limit_reason = _LENGTH if text is None else _CAP
    left = float(-mean[0] / std[0])  # a normalised dx below this is a move to the left
    primed = int(n_prime.max())  # rows before this may be a prime's, not to be overwritten
    # Without a text or a stroke count every line ends at its length: nothing to check.
    check = text is not None or bool(strokes)
    outs, phis = [], []
    rules, ruled = [], 0  # Graves' rule per step (B, T) in chunks, each step worked out once

    def rule_to(steps: int) -> torch.Tensor | None:
        """The rule for steps ``0 .. steps - 1`` (synthesis only)."""
        nonlocal ruled
        if text is None:
            return None
        if steps > ruled:
            rules.append(finished(Attention(phi=torch.stack(phis[ruled:steps], 1), kappa=None), char_lengths))
            ruled = steps
        return torch.cat(rules, 1)

    stream = None if on_rows is None else _Stream(on_rows, primes, n_prime, mean, std)
    state = None
    for t in range(total - 1):
        out, state, att = step(rows[:, t], state)
        outs.append(out)
        if text is not None:
            phis.append(att.phi[:, 0])
            if stream is not None:
                stream.step(t, att.phi[:, 0])
        if t + 1 < primed or out.dtype != rows.dtype:  # row t + 1 is a new point only for lines past their prime
            point = mdn.sample_outputs(out, noise[t], bias)
            rows[:, t + 1] = torch.where((t + 1 >= n_prime)[:, None], point, rows[:, t + 1])
        else:
            mdn.sample_outputs(out, noise[t], bias, into=rows[:, t + 1])
        if (t + 1) % _CHECK_EVERY == 0:
            ends = [None] * b
            if check:
                stopped, n_rows, _ = _stops(rows, rule_to(t + 1), t + 2, n_prime, budget, max_lifts, limit_reason, left)
                ends = [n if done else None for done, n in zip(stopped.tolist(), n_rows.tolist())]
            if stream is not None:
                stream.send(rows, t + 2, ends, n_rows.tolist())
            if check and None not in ends:
                break
    stopped, n_rows, reason = _stops(rows, rule_to(len(outs)), len(outs) + 1, n_prime, budget, max_lifts, limit_reason,
                                     left)  # fmt: skip
    assert bool(stopped.all()), "the step loop ended before every line stopped"
    if stream is not None:
        stream.send(rows, len(outs) + 1, n_rows.tolist(), n_rows.tolist())

    f32 = {"dtype": torch.float32}
    mix = mdn.split_params(torch.stack(outs, dim=1), bias)  # (B, T, ...): step t predicts row t + 1
    return _Trace(
        rows=rows.cpu().numpy(),
        n_rows=n_rows.tolist(),
        n_prime=n_prime.tolist(),
        reason=reason.tolist(),
        eos=_pad_rows(torch.sigmoid(mix.eos_logit)).numpy(),
        density=Density(
            weights=_pad_rows(mix.log_weights).exp().numpy(),
            mu=(_pad_rows(mix.mu) * torch.tensor(std, **f32) + torch.tensor(mean, **f32)).numpy(),
            sigma=(_pad_rows(mix.log_sigma).exp() * torch.tensor(std, **f32)).numpy(),
            rho=_pad_rows(mix.rho).numpy(),
        ),
        phi=_rows_of(phis).numpy() if text is not None else None,
        mean=mean,
        std=std,
    )


def _stops(rows, rule, n, n_prime, budget, max_lifts, limit_reason, left=0.0):
    """Where each line stops among rows ``1 .. n - 1``: ``(stopped, n_rows, reason)``, each ``(B,)``.

    Replays the per-point stop checks over the stored run: row ``r`` (drawn at
    step ``r - 1``) is a new point of a line once ``r >= n_prime``. The line
    stops at the first new row where Graves' rule fires (the window weights of
    that step; the row is not written, but the stroke under way is: the line
    ends at its pen lift, within ``STROKE_TAIL`` rows), or that brings its pen
    lifts to ``max_lifts`` (reason ``strokes``) or its new points to its budget
    (reason ``limit_reason``); the row is written then. A line ended by the
    rule at a pen lift also keeps the marks that follow (``_marks``; ``left``
    is the normalised dx of no move sideways). ``rule`` holds Graves'
    rule per step ``(B, n - 1)``, or None without a text. For a line with no
    stop yet, reason is 0 and ``n_rows`` the rows sure to be its own and not
    its last (whose pen must lift): all but the newest, or while it waits for
    the pen to lift after the rule, those before the row where it fired.
    """
    r = torch.arange(1, n, device=rows.device)  # (n - 1,)
    sampling = r >= n_prime[:, None]  # (B, n - 1)
    lifts = (rows[:, 1:n, PEN_UP] * sampling).cumsum(1)
    lifted = sampling & (lifts >= max_lifts)
    full = sampling & (r + 1 - n_prime[:, None] >= budget[:, None])
    ends = lifted | full
    if rule is None:
        rule = torch.zeros_like(ends)
    else:
        rule = sampling & rule
        ends = ends | rule
    stopped = ends.any(1)
    first = ends.float().argmax(1)  # the first stopping row - 1
    at = first[:, None]
    by_rule = rule.gather(1, at)[:, 0]
    # the rule's line so far ends at row ``first``: on to the first pen lift from there, once the rows are drawn
    row = torch.arange(n, device=rows.device)
    tail = torch.minimum(first + STROKE_TAIL, n_prime + budget - 1)  # never past the line's own last row
    lifts_on = (rows[:, :n, PEN_UP] > 0.5) & (row >= first[:, None]) & (row <= tail[:, None])
    lifted_on = lifts_on.any(1)
    waiting = by_rule & ~lifted_on & (tail > n - 1)
    n_rows = torch.where(by_rule, torch.where(lifted_on, lifts_on.float().argmax(1), first) + 1, first + 2)
    reason = torch.where(by_rule, _RULE, torch.where(lifted.gather(1, at)[:, 0], _STROKES, limit_reason))
    stopped = stopped & ~waiting
    n_rows = torch.where(stopped, n_rows, torch.where(waiting, first, n - 1))
    marked = (by_rule & stopped & lifted_on).nonzero()[:, 0].tolist()
    if marked:  # the rows to the CPU once, and only when some line may have marks to keep
        pen, dx = rows[marked, :n, PEN_UP].cpu().numpy(), rows[marked, :n, 0].cpu().numpy()
        ends, lasts = n_rows[marked].tolist(), (n_prime + budget - 1)[marked].tolist()
        for k, i in enumerate(marked):
            end, decided = _marks(pen[k], dx[k], ends[k] - 1, lasts[k], left)
            n_rows[i] = end + 1
            stopped[i] = decided
    reason = torch.where(stopped, reason, 0)
    return stopped, n_rows, reason


def _rows_of(steps: list[torch.Tensor]) -> torch.Tensor:
    """Per-step predictions ``[(B, ...)] * T`` -> row-aligned ``(B, T + 1, ...)`` on the CPU.

    Step ``t`` predicts row ``t + 1``; row 0 gets zeros.
    """
    return _pad_rows(torch.stack(steps, dim=1))


def _pad_rows(stacked: torch.Tensor) -> torch.Tensor:
    """Stacked per-step predictions ``(B, T, ...)`` -> row-aligned ``(B, T + 1, ...)`` on the CPU."""
    stacked = stacked.float().cpu()
    return torch.cat([torch.zeros_like(stacked[:, :1]), stacked], dim=1)


def _line(trace: _Trace, i: int, prime: Prime | None, text: tuple[str, int] | None, keep_prime: bool) -> SampledLine:
    """Line ``i`` of a run in raw units: the new part, or prime + new part with ``keep_prime``.

    ``text`` is (the text to show, the length of the text the network read), for synthesis.
    Strokes a primed line drew before its window reached its text go (``_prime_rows``);
    under ``keep_prime`` the first row after the prime then also holds their moves, which
    its ``eos`` and ``density`` (the network's prediction for its own move) do not.
    """
    n, p = trace.n_rows[i], trace.n_prime[i]
    new = denormalise(trace.rows[i, p:n], trace.mean, trace.std)
    drop = 0
    if prime is not None and text is not None:
        arrived = np.flatnonzero(trace.phi[i, p:n].argmax(1) >= len(prime.text) + 1)
        drop = _prime_rows(new[:, PEN_UP], arrived[0]) if len(arrived) else 0
    if drop:
        kept = new[drop:]
        kept[0, :2] += new[:drop, :2].sum(0)  # the pen still gets where it went
        new = kept
    if prime is None:  # the start token is the line's first point
        rows, offsets, prime_rows = np.arange(n), np.concatenate([np.zeros((1, 3), np.float32), new]), 0
    elif keep_prime:  # the prime exactly as given, not a normalise/denormalise round trip
        rows, prime_rows = np.r_[0:p, p + drop : n], p
        offsets = np.concatenate([np.asarray(prime.offsets, np.float32), new])
    else:
        rows, offsets, prime_rows = np.arange(p + drop, n), new, 0
        offsets[:1, :2] = 0.0  # the new part starts at its own origin
    offsets[-1:, PEN_UP] = 1.0  # the pen lifts after the last point
    line = SampledLine(
        offsets=offsets,
        eos=trace.eos[i, rows],
        density=Density(*(a[i, rows] for a in vars(trace.density).values())),
        stop=STOP_REASONS[trace.reason[i] - 1],
        prime_rows=prime_rows,
    )
    if text is not None:
        line.text = text[0]
        line.phi = trace.phi[i, rows, : text[1] + 1]
        if prime is not None and not keep_prime:
            line.phi = line.phi[:, len(prime.text) + 1 :]  # the requested text and its stop position
    return line


def _marks(pen: np.ndarray, dx: np.ndarray, end: int, last: int, left: float) -> tuple[int, bool]:
    """The last row of a line that Graves' rule ended at pen lift ``end``, with the marks that follow, and
    whether that is settled by the rows drawn so far (``pen`` and normalised ``dx`` of rows ``0 .. n - 1``;
    ``last`` is the last row the line may have).

    A mark is a stroke of at most ``MARK_POINTS`` points that the pen moves
    left to reach; up to ``MARKS`` of them, each after the one before.
    """
    n = len(pen)
    for _ in range(MARKS):
        start, limit = end + 1, min(end + MARK_POINTS, last)
        if start > last:
            return end, True
        lifts = np.flatnonzero(pen[start : min(limit, n - 1) + 1] > 0.5)
        if not len(lifts):
            return end, limit <= n - 1  # no lift yet: undecided until the stroke has had its points
        if dx[start] >= left:
            return end, True  # on to the right: the net writing past its text
        end = start + int(lifts[0])
    return end, True


def _prime_rows(pen_up: np.ndarray, arrival: int) -> int:
    """How many rows at the start of a primed line's new ink belong to the prime: those of the strokes the pen
    finished before row ``arrival``, where the window first reached the line's own text.

    Graves' rule ends a line where its window leaves the text; this starts it
    where the window reaches it. A net primed with a joined-up hand sometimes
    redraws the prime's deferred i-dots and t-bars there, and a reader takes
    them for a letter ("I", "T") before the first word. The stroke under way
    when the window arrives is the first letter's, and stays.
    """
    lifts = np.flatnonzero(pen_up[:arrival] > 0.5)
    return int(lifts[-1]) + 1 if len(lifts) else 0


class _Stream:
    """``sample_text``'s ``on_rows``: each line's own ink as it is drawn, exactly as ``_line`` will cut it."""

    def __init__(self, on_rows: OnRows, primes: list[Prime | None], n_prime: torch.Tensor, mean, std) -> None:
        self.on_rows, self.mean, self.std = on_rows, mean, std
        self.n_prime = n_prime
        self.primed = [p is not None for p in primes]
        self.first = torch.tensor([0 if p is None else len(p.text) + 1 for p in primes], device=n_prime.device)
        self.arrived = torch.full_like(n_prime, -1)  # the row where each line's window first reached its text
        self.start: list[int | None] = [None if p is not None else 0 for p in primes]  # first row of its own ink
        self.sent = [0] * len(primes)

    def step(self, t: int, phi: torch.Tensor) -> None:
        """Step ``t`` drew row ``t + 1`` with window weights ``phi``; nothing to do once every line's start is known."""
        if None in self.start:
            reached = (self.arrived < 0) & (phi.argmax(1) >= self.first) & (t + 1 >= self.n_prime)
            self.arrived = torch.where(reached, t + 1, self.arrived)

    def send(self, rows: torch.Tensor, upto: int, ends: list, until: list) -> None:
        """Pass on the rows drawn (``upto``) that are sure to be each line's own: line i's first ``until[i]``
        (``_stops``'s ``n_rows``); ``ends[i]`` is its number of rows once it has stopped, else None."""
        arrived, n_prime = self.arrived.tolist(), self.n_prime.tolist()
        for i, start in enumerate(self.start):
            if start is not None:
                continue
            p, end = n_prime[i], ends[i]
            if end is not None and not p <= arrived[i] < end:  # stopped before its window got there: all of it
                self.start[i] = p
            elif arrived[i] >= 0:
                self.start[i] = p + _prime_rows(rows[i, p : arrived[i], PEN_UP].cpu().numpy(), arrived[i] - p)
        spans = [(max(self.sent[i], s), until[i]) for i, s in enumerate(self.start) if s is not None]
        low = min((a for a, b in spans if b > a), default=upto)
        raw = denormalise(rows[:, low:upto].cpu().numpy(), self.mean, self.std)
        chunks = []
        for i, start in enumerate(self.start):
            if start is None:
                chunks.append(raw[i, :0])
                continue
            begin, end = max(self.sent[i], start), until[i]
            chunk = raw[i, begin - low : max(end, begin) - low].copy()
            if len(chunk) and begin == start:  # the line's first row is its origin
                chunk[0, : 3 if not self.primed[i] else 2] = 0.0
            if len(chunk) and ends[i] is not None:
                chunk[-1, PEN_UP] = 1.0  # the pen lifts after the last point
            self.sent[i] = max(end, begin)
            chunks.append(chunk)
        self.on_rows(chunks)
