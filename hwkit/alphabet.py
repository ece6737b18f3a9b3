"""Text <-> integer codes.

Code 0 is padding; characters take codes 1..K in the order of ``Alphabet.chars``.
The character string is saved in every store and checkpoint, so a model always
decodes text the way its training data encoded it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from hwkit.errors import TextError

PAD = 0


@dataclass(frozen=True)
class Alphabet:
    chars: str
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("alphabet characters must be unique")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Alphabet:
        """The sorted set of characters used in ``texts``."""
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls("".join(sorted(seen)))

    def __len__(self) -> int:
        """Number of codes including padding (the size of a one-hot vector)."""
        return len(self.chars) + 1

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` this alphabet lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, text: str) -> np.ndarray:
        missing = self.unknown(text)
        if missing:
            shown = ", ".join(repr(c) for c in missing)
            raise TextError(f"text has characters the alphabet lacks: {shown}")
        return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, codes: Iterable[int]) -> str:
        return "".join(self.chars[int(c) - 1] for c in codes if int(c) != PAD)

    def counts(self, texts: Iterable[str]) -> dict[str, int]:
        """How often each alphabet character occurs in ``texts``, in code order."""
        c = Counter()
        for t in texts:
            c.update(t)
        return {ch: c.get(ch, 0) for ch in self.chars}
