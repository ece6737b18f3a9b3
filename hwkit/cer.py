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


def align(ref: str, hyp: str) -> list[tuple[int | None, int | None]]:
    """One minimal edit alignment of ``hyp`` to ``ref``: pairs ``(ref index, hyp index)``, ``None`` on
    the side that has no character (an insertion or a deletion). Equal characters pair as matches.
    Holds the whole ``len(ref) x len(hyp)`` table: for lines, not corpora."""
    n, m = len(ref), len(hyp)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        table[i][0] = i
    for j in range(m + 1):
        table[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i or j:
        if i and j and table[i][j] == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and table[i][j] == table[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


CLASSES = {"capitals": str.isupper, "digits": str.isdigit, "lower case": str.islower, "spaces": str.isspace}


def error_breakdown(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Where the errors are: the share of each class of reference characters not read as written
    (capitals, digits, lower case, spaces: substituted or dropped), and the share of first words and
    of later words read exactly (every character matched, and nothing but spaces inserted inside
    the word or at its edges); and, per character other than the space, ``[misread, count]``, which
    is what tells a capital drawn in three strokes from one drawn in one.

    Insertions belong to no class; ``cer`` counts them.
    """
    wrong = {name: 0 for name in CLASSES}
    total = {name: 0 for name in CLASSES}
    by_char: dict[str, list[int]] = {}
    words = {"first": [0, 0], "later": [0, 0]}  # [read exactly, count]
    for ref, hyp in zip(refs, hyps, strict=True):
        pairs = align(ref, hyp)
        ok = [False] * len(ref)
        inserted = [""] * (len(ref) + 1)  # characters inserted between ref[k - 1] and ref[k], at k
        k = 0
        for r, h in pairs:
            if r is None:
                inserted[k] += hyp[h]
            else:
                ok[r] = h is not None and ref[r] == hyp[h]
                k = r + 1
        for c, good in zip(ref, ok):
            if not c.isspace():
                counts = by_char.setdefault(c, [0, 0])
                counts[0] += not good
                counts[1] += 1
            for name, test in CLASSES.items():
                if test(c):
                    total[name] += 1
                    wrong[name] += not good
        start, first = 0, True
        for word in ref.split(" "):
            end = start + len(word)
            if word:
                inside = "".join(inserted[start + 1 : end])
                edges = (inserted[start] + inserted[end]).strip()  # a space inserted beside a word is the gap's
                exact = all(ok[start:end]) and not inside and not edges
                slot = words["first" if first else "later"]
                slot[0] += exact
                slot[1] += 1
                first = False
            start = end + 1
    return {
        "error_rate": {name: (wrong[name] / total[name] if total[name] else None) for name in CLASSES},
        "characters": total,
        "word_accuracy": {name: (good / count if count else None) for name, (good, count) in words.items()},
        "by_character": dict(sorted(by_char.items())),
    }


def most_misread(breakdowns: Sequence[dict], top: int = 12, at_least: int = 5) -> list[tuple[str, int, int]]:
    """``(character, misread, count)`` summed over ``error_breakdown`` results, worst share first: the
    ``top`` characters asked for at least ``at_least`` times that were misread at all."""
    summed: dict[str, list[int]] = {}
    for b in breakdowns:
        for c, (bad, n) in b["by_character"].items():
            s = summed.setdefault(c, [0, 0])
            s[0] += bad
            s[1] += n
    rows = [(c, bad, n) for c, (bad, n) in summed.items() if n >= at_least and bad]
    return sorted(rows, key=lambda r: (-r[1] / r[2], -r[2], r[0]))[:top]
