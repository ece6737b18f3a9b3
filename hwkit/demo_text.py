"""Text for the demo corpus: English-looking lines that cover the whole alphabet.

The lines need not make sense; they must look like running text (sentences wrapped
across lines, IAM-length lines of roughly 25-50 characters) and exercise every
character a user may type, many times over, so that a synthesis model trained on
the demo corpus has seen each one.

A few hundred common words alone teach a network those words, not letters: the
bundled model trained on them wrote "hwkit" as "hwlil" however often it tried.
So about a quarter of the words are made up: pseudo-words from a letter-pair
chain over the common words (English-looking, yet new), and short strings of
any letters, any capital letters or mixed case (pairs English never writes).
"""

from __future__ import annotations

import numpy as np

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"
PUNCTUATION = ".,;:'\"!?-()"
ALPHABET = LOWER + UPPER + DIGITS + PUNCTUATION + " "
"""Every character the demo corpus writes (and ``render_line`` can draw)."""

WORDS = """
the of and to in is was that for it as with he be on by at this had not are but
from or have an they which one you were her all she there would their we him been
has when who will more no if out so said what up its about into than them can only
other new some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years where much
your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since
against go came right used take three himself few house use during without again
place around however home small found thought went say part once general high upon
school every does got united left number course war until always away something fact
though water less public put think almost hand enough far took head yet government
system better set told nothing night end why called did eyes find going look asked
later knew point next city business give group toward young days let room president
side social given present several order national possible rather second face per
among form important often things looked early white case job become large big need
four within felt along children saw best church ever least power development light
seemed family interest want members mind country area others done turned although
open god service certain kind problem began different door thus help sense means
whole matter perhaps itself york times human law line above name example action
company hands local show whether five history gave today either act feet across
taken past quite anything having seen death experience body word half really week
field money words father free heard question quickly jazz zero size quiet jump
quality amazing box fox lazy dozen major object judge subject enjoy extra exactly
zone puzzle squeeze mixed taxi oxygen quartz vex jolly kept brown sixty twelve
""".split()

# Capitals other than sentence starts: names and places that between them start
# with every letter, plus a few abbreviations written in capitals.
NAMES = """
Alice Boston Carol Dublin Edward Frank Glasgow Harry Iris James Kent London Mary
Norway Oxford Paris Quebec Robert Sarah Thomas Uganda Victoria Wales Xavier York
Zurich Quentin Yvonne Ursula Jupiter Kathleen Vienna Ignatius Zoe Xerxes
""".split()
ACRONYMS = ["BBC", "USA", "UK", "NATO", "OK", "TV", "FBI", "UN", "QED", "XYZ"]
CONTRACTIONS = ["don't", "it's", "can't", "I'm", "won't", "isn't", "we're", "they'll", "I've"]


def _letter_chain() -> tuple[list[str], dict[str, tuple[list[str], np.ndarray]]]:
    """Which letter follows which in ``WORDS`` ("^" starts a word, "$" ends it), as choices and odds."""
    counts: dict[str, dict[str, int]] = {}
    for word in WORDS:
        for a, b in zip("^" + word, word + "$"):
            counts.setdefault(a, {}).setdefault(b, 0)
            counts[a][b] += 1
    chain = {}
    for a, follow in counts.items():
        letters = sorted(follow)
        odds = np.array([follow[b] for b in letters], float)
        chain[a] = (letters, odds / odds.sum())
    return sorted(counts), chain


_, CHAIN = _letter_chain()


def make_texts(n: int, rng: np.random.Generator, width: int | None = None) -> list[str]:
    """``n`` consecutive lines of one paragraph, wrapped like a handwritten page.

    Lines continue each other's sentences as on an IAM form. ``width`` is the
    widest line in characters (drawn from ``rng`` between 34 and 50 when None);
    greedy wrapping then gives lines from about 25 characters up to ``width``.
    """
    if width is None:
        width = int(rng.integers(26, 45))
    lines: list[str] = []
    current = ""
    while len(lines) < n:
        for word in _sentence(rng):
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= width or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
    return lines[:n]


def _sentence(rng: np.random.Generator) -> list[str]:
    """One sentence as a list of space-separated tokens (punctuation attached)."""
    words = [_word(rng) for _ in range(int(rng.integers(4, 15)))]
    words[0] = words[0][0].upper() + words[0][1:]
    for i in range(1, len(words) - 1):  # inner commas, semicolons and colons
        r = rng.random()
        if r < 0.10:
            words[i] += ","
        elif r < 0.13:
            words[i] += ";"
        elif r < 0.15:
            words[i] += ":"
    if len(words) >= 6 and rng.random() < 0.20:  # a quotation or a parenthesis
        a = int(rng.integers(1, len(words) - 3))
        b = a + int(rng.integers(1, 3))
        left, right = ('"', '"') if rng.random() < 0.5 else ("(", ")")
        words[a] = left + words[a]
        words[b] = words[b].rstrip(",;:") + right
    r = rng.random()
    words[-1] += "." if r < 0.72 else "?" if r < 0.86 else "!"
    return words


def _word(rng: np.random.Generator) -> str:
    """A word: mostly common ones, sometimes a name, number, contraction, compound or made-up word."""
    r = rng.random()
    if r < 0.06:
        return NAMES[rng.integers(len(NAMES))]
    if r < 0.11:
        return _number(rng)
    if r < 0.13:
        return ACRONYMS[rng.integers(len(ACRONYMS))]
    if r < 0.16:
        return CONTRACTIONS[rng.integers(len(CONTRACTIONS))]
    if r < 0.18:
        return f"{WORDS[rng.integers(len(WORDS))]}-{WORDS[rng.integers(len(WORDS))]}"
    if r < 0.20:
        return NAMES[rng.integers(len(NAMES))] + "'s"
    if r < 0.36:
        return _pseudo_word(rng)
    if r < 0.42:
        return _letters(rng)
    word = WORDS[rng.integers(len(WORDS))]
    return word.capitalize() if r < 0.46 else word


def _pseudo_word(rng: np.random.Generator) -> str:
    """A made-up word from the letter-pair chain: 2 to 10 letters, English-looking."""
    while True:
        word, letter = "", "^"
        while len(word) <= 10:
            letters, odds = CHAIN[letter]
            letter = letters[rng.choice(len(letters), p=odds)]
            if letter == "$":
                break
            word += letter
        if 2 <= len(word) <= 10 and word not in WORDS:
            return word.capitalize() if rng.random() < 0.15 else word


def _letters(rng: np.random.Generator) -> str:
    """2 to 6 letters drawn alike: lower case, capitals, or a capital then lower case."""
    word = "".join(LOWER[i] for i in rng.integers(len(LOWER), size=int(rng.integers(2, 7))))
    kind = rng.random()
    return word.upper() if kind < 0.3 else word.capitalize() if kind < 0.6 else word


def _number(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(int(rng.integers(1900, 2030)))  # a year
    if kind < 0.7:
        return str(int(rng.integers(0, 100)))
    if kind < 0.85:
        return f"{int(rng.integers(0, 100))}.{int(rng.integers(0, 10))}"
    return str(int(rng.integers(100, 100000)))
