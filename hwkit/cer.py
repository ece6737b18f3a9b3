"""Character error rate: how a recogniser's transcriptions are judged.

Pure Python, no torch or numpy, so a CLI or a report can score transcriptions
without importing a framework. CER is pooled over the corpus (total edits over
total reference characters), the way handwriting recognition results are
usually quoted, so long lines weigh more than short ones; ``line_cers`` gives
the per-line rates for finding the worst lines.
"""

from __future__ import annotations

import math
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
    is what tells a capital drawn in three strokes from one drawn in one, and in ``read_as`` what each
    misread one was read as (``""``: dropped), which tells a 7 stood up into a T from a 7 left out.
    The counts behind the shares are ``characters`` and ``misread`` per class, and ``words``:
    ``[read exactly, count]``.

    Insertions belong to no class; ``cer`` counts them.
    """
    wrong = {name: 0 for name in CLASSES}
    total = {name: 0 for name in CLASSES}
    by_char: dict[str, list[int]] = {}
    read_as: dict[str, dict[str, int]] = {}
    words = {"first": [0, 0], "later": [0, 0]}  # [read exactly, count]
    for ref, hyp in zip(refs, hyps, strict=True):
        pairs = align(ref, hyp)
        ok = [False] * len(ref)
        got = [""] * len(ref)  # what each reference character was read as ("": dropped)
        inserted = [""] * (len(ref) + 1)  # characters inserted between ref[k - 1] and ref[k], at k
        k = 0
        for r, h in pairs:
            if r is None:
                inserted[k] += hyp[h]
            else:
                got[r] = hyp[h] if h is not None else ""
                ok[r] = got[r] == ref[r]
                k = r + 1
        for c, good, as_read in zip(ref, ok, got):
            if not c.isspace():
                counts = by_char.setdefault(c, [0, 0])
                counts[0] += not good
                counts[1] += 1
                if not good:
                    seen = read_as.setdefault(c, {})
                    seen[as_read] = seen.get(as_read, 0) + 1
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
        "misread": wrong,
        "words": words,
        "word_accuracy": {name: (good / count if count else None) for name, (good, count) in words.items()},
        "by_character": dict(sorted(by_char.items())),
        "read_as": dict(sorted(read_as.items())),
    }


def most_misread(breakdowns: Sequence[dict], top: int = 12, at_least: int = 5) -> list[tuple[str, int, int, str, int]]:
    """``(character, misread, count, read most often as, that many times)`` summed over ``error_breakdown``
    results, worst share first: the ``top`` characters asked for at least ``at_least`` times that were
    misread at all (ties in the reading go to the first in character order; ``""``: dropped)."""
    summed: dict[str, list[int]] = {}
    readings: dict[str, dict[str, int]] = {}
    for b in breakdowns:
        for c, (bad, n) in b["by_character"].items():
            s = summed.setdefault(c, [0, 0])
            s[0] += bad
            s[1] += n
        for c, seen in b["read_as"].items():
            summed_readings = readings.setdefault(c, {})
            for as_read, times in seen.items():
                summed_readings[as_read] = summed_readings.get(as_read, 0) + times
    rows = []
    for c, (bad, n) in summed.items():
        if n >= at_least and bad:
            as_read, times = min(readings[c].items(), key=lambda r: (-r[1], r[0]))
            rows.append((c, bad, n, as_read, times))
    return sorted(rows, key=lambda r: (-r[1] / r[2], -r[2], r[0]))[:top]


def ratio_interval(counts: Sequence[tuple[float, float]], z: float = 1.96) -> dict | None:
    """``sum(k) / sum(n)`` over clusters ``(k, n)``, with an approximate 95% interval: ``{rate, low, high}``.

    Errors cluster: the same text written at several seeds is misread alike ("Ice" read as "lce" at
    every seed), so counting characters as independent draws would make the interval far too
    narrow. The spread between clusters (a ratio estimator's variance) sets a design effect, which
    shrinks the count to an effective one for a Wilson interval; Wilson, so that a rate of 0 still
    gets an upper bound. None when the clusters hold nothing to count.
    """
    n_total = sum(n for _, n in counts)
    if n_total <= 0:
        return None
    rate = sum(k for k, _ in counts) / n_total
    m = len(counts)
    effective = n_total
    if m > 1 and 0 < rate < 1:
        spread = m / (m - 1) * sum((k - rate * n) ** 2 for k, n in counts) / n_total**2  # var of the ratio
        binomial = rate * (1 - rate) / n_total
        effective = n_total / max(1.0, spread / binomial)
    p = min(rate, 1.0)  # CER can pass 1 (insertions); the interval is for shares
    centre = (p + z * z / (2 * effective)) / (1 + z * z / effective)
    half = z / (1 + z * z / effective) * math.sqrt(p * (1 - p) / effective + z * z / (4 * effective**2))
    return {"rate": rate, "low": max(0.0, centre - half), "high": min(1.0, centre + half)}


SHARES = ("cer", *CLASSES, "first words", "later words")  # what ``pooled`` and ``excess`` count


def _cluster_counts(refs: Sequence[str], hyps: Sequence[str], clusters: Sequence[Hashable] | None) -> dict:
    """``{cluster: {share: [wrong, count]}}`` for each of ``SHARES``: edits and characters for CER."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    keys = list(range(len(refs))) if clusters is None else list(clusters)
    if len(keys) != len(refs):
        raise ValueError(f"{len(refs)} lines but {len(keys)} clusters")
    sums: dict[Hashable, dict[str, list[int]]] = {}
    for key, ref, hyp in zip(keys, refs, hyps):
        b = error_breakdown([ref], [hyp])
        rows = {"cer": (edit_distance(ref, hyp), len(ref))}
        rows.update({name: (b["misread"][name], b["characters"][name]) for name in CLASSES})
        rows.update({f"{name} words": (count - good, count) for name, (good, count) in b["words"].items()})
        acc = sums.setdefault(key, {name: [0, 0] for name in SHARES})
        for name, (k, n) in rows.items():
            acc[name][0] += k
            acc[name][1] += n
    return sums


def pooled(refs: Sequence[str], hyps: Sequence[str], clusters: Sequence[Hashable] | None = None) -> dict:
    """CER, the shares of ``error_breakdown`` (words: the share *not* read exactly) and ``lines``, pooled
    over all lines, each a ``ratio_interval`` with its ``wrong`` and ``count`` (None: nothing to count).

    ``clusters`` names what makes lines' errors alike (``hwkit evaluate``: the text, written at
    every seed); by default each line is its own.
    """
    sums = _cluster_counts(refs, hyps, clusters)
    return {"lines": len(refs), **{name: pooled_share([acc[name] for acc in sums.values()]) for name in SHARES}}


def pooled_share(counts: Sequence[Sequence[float]]) -> dict | None:
    """``ratio_interval`` over clusters' ``(wrong, count)``, with the totals ``wrong`` and ``count``; clusters
    with neither are left out (an empty reference read as ink still counts its edits)."""
    counts = [(k, n) for k, n in counts if k or n]
    share = ratio_interval(counts)
    if share is not None:
        share.update(count=sum(n for _, n in counts), wrong=sum(k for k, _ in counts))
    return share


# Student's t, two-sided 95%, for 1-30 degrees of freedom; past 30 its Cornish-Fisher expansion
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom: the multiplier of a 95% interval
    from ``df + 1`` clusters' spread, which a normal 1.96 makes far too narrow when the clusters are few."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def excess(
    refs: Sequence[str], hyps: Sequence[str], clusters: Sequence[Hashable],
    ref_refs: Sequence[str], ref_hyps: Sequence[str], ref_clusters: Sequence[Hashable],
) -> dict:  # fmt: skip
    """How many more errors lines A (``refs``, ``hyps``) have than lines B (``ref_*``) would make in their
    place: per share, ``{wrong, expected, excess, half_width}``, paired by cluster (the text).

    Each cluster of A is charged B's rate on the same cluster, so a text that is hard for every
    writer (a bare-stem "I" read as "l") costs A nothing; the half-width of the approximate 95%
    interval comes from the spread of the clusters' excesses, times Student's t for their number
    (infinite for one cluster, whose spread says nothing). Clusters B lacks, or where B has nothing
    of a share to count, are left out.
    """
    return cluster_excess(_cluster_counts(refs, hyps, clusters), _cluster_counts(ref_refs, ref_hyps, ref_clusters))


def cluster_excess(a: dict, b: dict) -> dict:
    """``excess`` from counts already made: ``{cluster: {share: (wrong, count)}}`` for A and for B, any shares.

    Each share of A's clusters is charged B's rate on the same cluster; clusters B lacks, or where
    either has nothing of the share to count, are left out (the share is None when none is left).
    """
    out = {}
    for name in dict.fromkeys(name for acc in a.values() for name in acc):
        rows = [(a[key][name][0], a[key][name][1] * b[key][name][0] / b[key][name][1])
                for key in a if name in b.get(key, {}) and b[key][name][1] and a[key][name][1]]  # fmt: skip
        if not rows:
            out[name] = None
            continue
        diffs = [k - e for k, e in rows]
        if len(diffs) > 1:
            mean = sum(diffs) / len(diffs)
            spread = sum((d - mean) ** 2 for d in diffs) * len(diffs) / (len(diffs) - 1)
            half = t_975(len(diffs) - 1) * math.sqrt(spread)
        else:
            half = math.inf
        out[name] = {"wrong": sum(k for k, _ in rows), "expected": sum(e for _, e in rows), "excess": sum(diffs),
                     "half_width": half}  # fmt: skip
    return out
