"""Character error rate: how a recogniser's transcriptions are judged.

Pure Python, no torch or numpy, so a CLI or a report can score transcriptions
without importing a framework. CER is pooled over the corpus (total edits over
total reference characters), the way handwriting recognition results are
usually quoted, so long lines weigh more than short ones; ``line_cers`` gives
the per-line rates for finding the worst lines.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (unit-cost insertions, deletions, substitutions).

    Keeps one row of the dynamic-programming table, over the shorter sequence,
    so memory is ``O(min(len(ref), len(hyp)))``: whole-corpus scoring never holds
    a ``len x len`` table.
    """
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref  # the distance is symmetric; iterate over the longer one
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Total edits over total reference characters.

    Empty references contribute no characters but still count their edits (every
    hypothesised character is an insertion), so transcribing blank lines as text
    is punished. If *all* references are empty the rate is ``0.0`` when every
    hypothesis is empty too and ``inf`` otherwise (errors over nothing).
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    chars = sum(len(r) for r in refs)
    if chars == 0:
        return 0.0 if edits == 0 else float("inf")
    return edits / chars


def line_cers(refs: Sequence[str], hyps: Sequence[str]) -> list[float]:
    """Per-line CER, each line scored as ``cer([ref], [hyp])`` (so an empty reference gives 0 or inf)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return [cer([r], [h]) for r, h in zip(refs, hyps)]
