"""Character error rate: the one-row Levenshtein against the full table, its metric laws, corpus pooling."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.cer import align, cer, edit_distance, error_breakdown, excess, line_cers, most_misread, pooled, ratio_interval, t_975

PROPERTY = settings(max_examples=200, deadline=None)
text = st.text(alphabet="abcde", max_size=12)  # few letters, so strings share characters and edits interact
codes = st.lists(st.integers(0, 3), max_size=12)


def table_distance(a, b) -> int:
    """Textbook Levenshtein: the whole (len(a)+1) x (len(b)+1) table."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


@PROPERTY
@given(text, text)
def test_edit_distance_matches_the_full_table(a, b):
    assert edit_distance(a, b) == table_distance(a, b)


@PROPERTY
@given(codes, codes)
def test_edit_distance_takes_code_lists(a, b):
    assert edit_distance(a, b) == table_distance(a, b)


@PROPERTY
@given(text, text, text)
def test_edit_distance_is_a_metric(a, b, c):
    assert edit_distance(a, a) == 0
    assert edit_distance(a, b) == edit_distance(b, a)
    assert (edit_distance(a, b) == 0) == (a == b)
    assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)
    assert edit_distance(a, "") == edit_distance("", a) == len(a)
    assert abs(len(a) - len(b)) <= edit_distance(a, b) <= max(len(a), len(b))


def test_edit_distance_known_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("abc", "cab") == 2
    assert edit_distance("", "") == 0


def test_cer_pools_edits_over_reference_characters():
    refs = ["hello", "ab"]
    hyps = ["hallo", ""]  # 1 substitution + 2 deletions over 7 characters
    assert cer(refs, hyps) == pytest.approx(3 / 7)
    assert line_cers(refs, hyps) == pytest.approx([0.2, 1.0])


def test_cer_of_perfect_transcriptions_is_zero():
    refs = ["the quick brown fox", "", "jumps over", "a"]
    assert cer(refs, list(refs)) == 0.0


def test_cer_against_shuffled_texts_is_high():
    rng = random.Random(0)
    words = ["the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "as", "with", "be", "on", "by"]
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(50)]
    hyps = refs[1:] + refs[:1]
    assert cer(refs, hyps) > 0.5


def test_empty_references():
    assert cer(["", "abc"], ["xy", "abc"]) == pytest.approx(2 / 3)  # insertions on a blank line still count
    assert cer(["", ""], ["", ""]) == 0.0
    assert cer([""], ["x"]) == float("inf")
    assert cer([], []) == 0.0
    assert line_cers(["", ""], ["", "x"]) == [0.0, float("inf")]


def test_lengths_must_match():
    with pytest.raises(ValueError):
        cer(["a"], [])
    with pytest.raises(ValueError):
        line_cers([], ["a"])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abAB1 ", max_size=12), st.text(alphabet="abAB1 ", max_size=12))
def test_alignment_is_minimal_and_covers_both_strings_in_order(ref, hyp):
    pairs = align(ref, hyp)
    assert [r for r, _ in pairs if r is not None] == list(range(len(ref)))
    assert [h for _, h in pairs if h is not None] == list(range(len(hyp)))
    costly = sum(1 for r, h in pairs if r is None or h is None or ref[r] != hyp[h])
    assert costly == edit_distance(ref, hyp)


def test_error_breakdown_finds_the_capital_the_digit_and_the_lost_space():
    refs = ["The cat sat", "on 4 mats"]
    hyps = ["he cat sat", "on A matsx"]  # capital dropped, digit misread, junk inserted at the end
    b = error_breakdown(refs, hyps)
    assert b["error_rate"]["capitals"] == 1.0 and b["error_rate"]["digits"] == 1.0
    assert b["error_rate"]["lower case"] == 0.0 and b["error_rate"]["spaces"] == 0.0
    assert b["characters"] == {"capitals": 1, "digits": 1, "lower case": 14, "spaces": 4}
    # first words: "The" wrong, "on" right; later: cat, sat right; "4" wrong; "mats" read as "matsx" wrong
    assert b["word_accuracy"] == {"first": 0.5, "later": 2 / 4}
    joined = error_breakdown(["ab cd"], ["abcd"])
    assert joined["error_rate"]["spaces"] == 1.0 and joined["word_accuracy"]["first"] == 1.0
    inside = error_breakdown(["abc"], ["abxc"])  # an insertion inside a word spoils the word
    assert inside["word_accuracy"]["first"] == 0.0 and inside["error_rate"]["lower case"] == 0.0
    for ref, hyp in (("cat dog", "xcat dog"), ("cat dog", "cats dog"), ("aa b", "aaa b")):  # at its edges too
        assert error_breakdown([ref], [hyp])["word_accuracy"]["first"] == 0.0, (ref, hyp)
    assert error_breakdown(["cat dog"], ["cat  dog"])["word_accuracy"] == {"first": 1.0, "later": 1.0}
    lead = error_breakdown([" cat dog"], ["cat dog"])  # the first word is the first non-empty one
    assert lead["word_accuracy"] == {"first": 1.0, "later": 1.0}


def test_most_misread_sums_characters_over_runs_worst_share_first():
    runs = [error_breakdown(["HEHE he"], ["HFHE he"]), error_breakdown(["HE"], ["|E"])]
    assert runs[0]["by_character"] == {"E": [1, 2], "H": [0, 2], "e": [0, 1], "h": [0, 1]}
    assert runs[0]["read_as"] == {"E": {"F": 1}} and runs[1]["read_as"] == {"H": {"|": 1}}
    # ties: more often asked, then by name; each with what it was read as most
    assert most_misread(runs, at_least=1) == [("E", 1, 3, "F", 1), ("H", 1, 3, "|", 1)]
    dropped = most_misread([error_breakdown(["77 T7", "7"], ["7 TT", "T"])], at_least=1)
    assert dropped == [("7", 3, 4, "T", 2)]  # read as T twice, dropped once
    assert most_misread(runs, at_least=4) == []  # too rare to rank
    assert most_misread([error_breakdown(["abc"], ["abc"])], at_least=1) == []  # nothing misread


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="aZ9 .", max_size=15), st.text(alphabet="aZ9 .", max_size=15)),
                min_size=1, max_size=5))
def test_per_character_counts_add_up_to_the_classes(pairs):
    refs, hyps = zip(*pairs)
    b = error_breakdown(refs, hyps)
    for name, test in (("capitals", str.isupper), ("digits", str.isdigit), ("lower case", str.islower)):
        chars = [v for c, v in b["by_character"].items() if test(c)]
        assert sum(n for _, n in chars) == b["characters"][name]
        if b["characters"][name]:
            assert sum(bad for bad, _ in chars) / b["characters"][name] == pytest.approx(b["error_rate"][name])
    for c, (bad, _) in b["by_character"].items():  # every misread character was read as something, or dropped
        seen = b["read_as"].get(c, {})
        assert sum(seen.values()) == bad and c not in seen


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="aZ9 .", max_size=15), min_size=1, max_size=5))
def test_reading_every_line_right_is_no_error_anywhere(refs):
    b = error_breakdown(refs, refs)
    assert all(rate in (0.0, None) for rate in b["error_rate"].values())
    assert all(acc in (1.0, None) for acc in b["word_accuracy"].values())


counts = st.lists(st.tuples(st.integers(0, 20), st.integers(1, 20)).map(lambda kn: (min(kn), kn[1])), min_size=1,
                  max_size=30)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(counts)
def test_the_interval_holds_the_pooled_share_and_stays_within_0_and_1(clusters):
    share = ratio_interval(clusters)
    assert share["rate"] == pytest.approx(sum(k for k, _ in clusters) / sum(n for _, n in clusters))
    assert 0.0 <= share["low"] <= share["rate"] + 1e-12 and share["rate"] - 1e-12 <= share["high"] <= 1.0
    assert share["high"] > share["low"]  # never certain, not even of a share of 0 or 1


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 40), st.integers(1, 10))
def test_errors_heaped_on_a_few_clusters_widen_the_interval(clusters, size):
    """The same count of errors, spread one per cluster or heaped on a few: the heap is less sure."""
    wrong = clusters // 2
    spread = [(1, size)] * wrong + [(0, size)] * (clusters - wrong)
    heaped = [(size, size)] * (wrong // size) + [(wrong % size, size)] + [(0, size)] * (clusters - wrong // size - 1)
    a, b = ratio_interval(spread), ratio_interval(heaped)
    assert a["rate"] == pytest.approx(b["rate"])
    if size > 1 and wrong >= size:
        assert b["high"] - b["low"] > a["high"] - a["low"]


def test_no_characters_to_count_is_no_share():
    assert ratio_interval([(0, 0), (0, 0)]) is None
    assert pooled(["12"], ["12"])["capitals"] is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="aZ9 .", max_size=15), st.text(alphabet="aZ9 .", max_size=15)),
                min_size=1, max_size=6), st.integers(1, 3))
def test_pooled_shares_are_the_breakdown_of_all_lines(pairs, runs):
    refs, hyps = [list(x) * runs for x in zip(*pairs)]
    p = pooled(refs, hyps, list(range(len(pairs))) * runs)
    b = error_breakdown(refs, hyps)
    assert p["lines"] == len(refs)
    if p["cer"] is not None:
        assert p["cer"]["rate"] == pytest.approx(cer(refs, hyps))
    for name, rate in b["error_rate"].items():
        assert (p[name] is None) == (rate is None)
        if rate is not None:
            assert p[name]["rate"] == pytest.approx(rate) and p[name]["count"] == b["characters"][name]
    for name, accuracy in b["word_accuracy"].items():
        if accuracy is not None:
            assert 1 - p[f"{name} words"]["rate"] == pytest.approx(accuracy)


lines = st.lists(st.tuples(st.text(alphabet="aZ9 .", min_size=1, max_size=12), st.text(alphabet="aZ9 .", max_size=12)),
                 min_size=2, max_size=8)  # references of a character or more: an empty one has no rate to charge


@settings(max_examples=100, deadline=None)
@given(lines, st.integers(1, 3))
def test_lines_read_as_their_reference_reads_cost_no_excess(pairs, copies):
    """A reads every text exactly as B does (B's lines, seen ``copies`` times): no excess anywhere."""
    refs, hyps = (list(x) for x in zip(*pairs))
    keys = list(range(len(refs)))
    e = excess(refs * copies, hyps * copies, keys * copies, refs, hyps, keys)
    for share in e.values():
        if share is not None:
            assert share["excess"] == pytest.approx(0.0, abs=1e-9) and share["wrong"] == pytest.approx(share["expected"])
            assert share["half_width"] == pytest.approx(0.0, abs=1e-9) or share["half_width"] == math.inf  # one text


@settings(max_examples=100, deadline=None)
@given(lines)
def test_a_perfect_reading_has_minus_the_reference_errors_as_excess(pairs):
    refs, hyps = (list(x) for x in zip(*pairs))
    keys = list(range(len(refs)))
    e = excess(refs, refs, keys, refs, hyps, keys)
    p = pooled(refs, hyps)
    for name, share in e.items():
        if share is not None:
            assert share["wrong"] == 0 and share["excess"] == pytest.approx(-p[name]["wrong"])


def test_excess_charges_each_text_the_references_rate_on_it():
    # B misreads the I of "Ice" every time and reads "Hat" right; A does the same on "Ice" and misreads "Hat" once
    b = ["lce", "Hat"] * 4
    e = excess(["Ice", "Hat", "Ice", "Hat"], ["lce", "Hat", "lce", "flat"], [0, 1, 0, 1],
               ["Ice", "Hat"] * 4, b, [0, 1] * 4)  # fmt: skip
    # excesses 0 and 1: a spread of 1 from two texts, so Student's t for one degree of freedom
    assert e["capitals"] == {"wrong": 3, "expected": 2.0, "excess": 1.0, "half_width": pytest.approx(12.706)}
    assert e["lower case"]["excess"] == 0 and e["digits"] is None
    assert excess(["Ice"], ["lce"], ["unseen"], ["Ice"], ["Ice"], [0])["capitals"] is None  # no reference for it


def test_t_975_matches_its_table_falls_with_the_clusters_and_tends_to_the_normal():
    assert t_975(1) == 12.706 and t_975(30) == 2.042
    values = [t_975(df) for df in range(1, 500)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert t_975(31) == pytest.approx(2.040, abs=1e-3) and t_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_975(10**6) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError):
        t_975(0)


def test_two_texts_alike_are_no_clear_difference_and_one_text_has_no_interval():
    # A misreads one more capital than B on each of two texts: a normal 1.96 called that clear; two texts cannot
    e = excess(["Ice", "Hat"], ["lce", "hat"], [0, 1], ["Ice", "Hat"], ["Ice", "Hat"], [0, 1])
    assert e["capitals"]["excess"] == 2 and e["capitals"]["half_width"] == 0.0  # no spread at all: clear
    e = excess(["Ice", "Hat"], ["lce", "hat"], [0, 1], ["Ice", "Hat", "Ice", "Hat"], ["Ice", "Hat", "lce", "Hat"],
               [0, 1, 0, 1])  # fmt: skip
    capitals = e["capitals"]
    assert capitals["excess"] == pytest.approx(1.5) and capitals["half_width"] > capitals["excess"]
    assert excess(["Ice"], ["lce"], [0], ["Ice"], ["Ice"], [0])["capitals"]["half_width"] == math.inf
