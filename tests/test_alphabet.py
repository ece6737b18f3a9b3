import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.alphabet import PAD, Alphabet
from hwkit.errors import TextError


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=10))
def test_encode_decode_round_trip(texts):
    alphabet = Alphabet.from_texts(texts)
    for text in texts:
        codes = alphabet.encode(text)
        assert codes.dtype == np.int64
        assert np.all(codes != PAD) and np.all(codes < len(alphabet))
        assert alphabet.decode(codes) == text


def test_unknown_characters_are_named():
    alphabet = Alphabet("abc ")
    with pytest.raises(TextError, match="'é'.*'!'"):
        alphabet.encode("a é b!é")
    assert alphabet.unknown("zz a") == ["z"]


def test_padding_is_ignored_when_decoding_and_counts_follow_code_order():
    alphabet = Alphabet.from_texts(["ba", "c"])
    assert alphabet.chars == "abc"
    assert alphabet.decode([1, 0, 2, 0]) == "ab"
    assert alphabet.counts(["aab", "c"]) == {"a": 2, "b": 1, "c": 1}
