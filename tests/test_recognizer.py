"""The CTC recogniser: best-path decoding, the CTC loss against path enumeration, padding, and learning to read.

Decoding and the loss are checked on hand-built log-probabilities, where the
right answer is known without a network; padding invariance and learning go
through a real ``RecognizerNet``. The reading test writes a tiny store of
demo-font handwriting (one writer, a few letters) and trains for a few seconds.
"""

from __future__ import annotations

import itertools
import math
import types

import pytest
import torch
from helpers import letter_store
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.cer import cer
from hwkit.dataset import StrokeDataset, collate
from hwkit.recognizer import RecognizerNet, ctc_nll, greedy_decode
from hwkit.store import Store

PROPERTY = settings(max_examples=60, deadline=None)


def config(**overrides) -> types.SimpleNamespace:
    fields = {"kind": "recognizer", "hidden": 12, "layers": 2, "alphabet_size": 5, "subsample": 3}
    return types.SimpleNamespace(**{**fields, **overrides})


def path_log_probs(*paths: list[int], alphabet: int = 4) -> torch.Tensor:
    """``(B, T, A)`` log-probabilities whose best path is each given path (padded with blanks)."""
    t = max(len(p) for p in paths)
    logits = torch.full((len(paths), t, alphabet), -5.0)
    for b, path in enumerate(paths):
        for i, c in enumerate(path):
            logits[b, i, c] = 5.0
        logits[b, len(path) :, 0] = 5.0
    return logits.log_softmax(-1)


# -- greedy decoding ---------------------------------------------------------------


def test_greedy_merges_repeats_and_drops_blanks():
    lp = path_log_probs([1, 1, 0, 1, 2, 2, 0, 3], [2, 2, 2, 2], [0, 0, 0], [0, 3, 0, 0, 3, 3])
    assert greedy_decode(lp, torch.tensor([8, 4, 3, 6])) == [[1, 1, 2, 3], [2], [], [3, 3]]


def test_greedy_reads_only_a_lines_own_frames():
    lp = path_log_probs([1, 2, 3, 1], [2, 0, 2, 3])
    assert greedy_decode(lp, torch.tensor([2, 3])) == [[1, 2], [2, 2]]
    assert greedy_decode(lp, torch.tensor([0, 4])) == [[], [2, 2, 3]]


# -- CTC loss ----------------------------------------------------------------------


def collapse(path: tuple[int, ...]) -> list[int]:
    return [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]


def enumerated_nll(lp: torch.Tensor, target: list[int]) -> float:
    """-log of the summed probability of every frame path that collapses to ``target``."""
    t, a = lp.shape
    total = sum(
        math.exp(sum(float(lp[i, c]) for i, c in enumerate(path)))
        for path in itertools.product(range(a), repeat=t)
        if collapse(path) == target
    )
    return -math.log(total) if total > 0 else math.inf


def test_ctc_nll_by_hand():
    # two frames, one character: paths (1,1), (1,0), (0,1) -> p = .6*.5 + .6*.3 + .2*.5 = 0.58
    probs = torch.tensor([[[0.2, 0.6, 0.2], [0.3, 0.5, 0.2]]], dtype=torch.float64)
    nll = ctc_nll(probs.log(), torch.tensor([2]), torch.tensor([[1]]), torch.tensor([[True]]))
    assert nll.item() == pytest.approx(-math.log(0.58))


@PROPERTY
@given(
    st.integers(1, 5),
    st.lists(st.integers(1, 2), max_size=4),
    st.integers(0, 2**32 - 1),
)
def test_ctc_nll_matches_path_enumeration(frames, target, seed):
    gen = torch.Generator().manual_seed(seed)
    lp = (torch.randn(frames, 3, generator=gen, dtype=torch.float64) * 2).log_softmax(-1)
    chars = torch.tensor([target + [0]])  # a trailing pad that the mask excludes
    mask = torch.tensor([[True] * len(target) + [False]])
    nll = ctc_nll(lp[None], torch.tensor([frames]), chars, mask).item()
    expected = enumerated_nll(lp, target)
    # a text that cannot fit its frames (a repeat needs a blank between) costs 0, not inf
    assert nll == pytest.approx(expected if math.isfinite(expected) else 0.0, rel=1e-6, abs=1e-9)


def test_an_empty_text_costs_the_all_blank_path():
    gen = torch.Generator().manual_seed(0)
    lp = torch.randn(2, 6, 4, generator=gen).log_softmax(-1)
    frame_lengths = torch.tensor([6, 4])
    chars = torch.tensor([[0, 0], [2, 3]])
    mask = torch.tensor([[False, False], [True, True]])
    nll = ctc_nll(lp, frame_lengths, chars, mask)
    assert nll[0].item() == pytest.approx(-lp[0, :, 0].sum().item(), rel=1e-5)
    alone = ctc_nll(lp[1:, :4], frame_lengths[1:], chars[1:], mask[1:])
    assert nll[1].item() == pytest.approx(alone.item(), rel=1e-5)  # a blank line beside it changes nothing


# -- the network -------------------------------------------------------------------


def test_frames_stack_subsample_points():
    torch.manual_seed(0)
    net = RecognizerNet(config(subsample=4))
    lengths = torch.tensor([1, 3, 4, 5, 9])
    mask = torch.arange(9) < lengths[:, None]
    lp, frame_lengths = net(torch.randn(5, 9, 3) * mask[..., None], mask)
    assert lp.shape == (5, 3, 5)
    assert frame_lengths.tolist() == [1, 1, 1, 2, 3]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(5, 3))


def test_refuses_another_kind_of_config():
    with pytest.raises(ValueError):
        RecognizerNet(config(kind="synthesis"))


@pytest.mark.parametrize("subsample", [1, 3])
def test_a_line_reads_the_same_alone_and_beside_a_longer_one(subsample):
    torch.manual_seed(0)
    net = RecognizerNet(config(subsample=subsample)).eval()
    short, long = torch.randn(20, 3), torch.randn(47, 3)
    chars = torch.tensor([[1, 2, 2], [3, 1, 4]])
    char_mask = torch.tensor([[True, True, False], [True, True, True]])

    alone_lp, alone_n = net(short[None], torch.ones(1, 20, dtype=torch.bool))
    alone_nll = ctc_nll(alone_lp, alone_n, chars[:1], char_mask[:1])

    offsets = torch.full((2, 47, 3), 1e3)  # padding filled with junk the mask must hide
    offsets[0, :20], offsets[1] = short, long
    mask = torch.arange(47) < torch.tensor([[20], [47]])
    lp, n = net(offsets, mask)
    nll = ctc_nll(lp, n, chars, char_mask)

    assert n[0] == alone_n[0]
    assert torch.allclose(lp[0, : n[0]], alone_lp[0], atol=1e-5)
    assert nll[0].item() == pytest.approx(alone_nll.item(), rel=1e-5)


# -- learning to read --------------------------------------------------------------

def transcribe(net: RecognizerNet, store: Store, batch) -> list[str]:
    net.eval()
    with torch.no_grad():
        codes = greedy_decode(*net(batch.offsets, batch.point_mask))
    net.train()
    return [store.alphabet.decode(c) for c in codes]


def test_a_short_training_reads_unseen_lines(tmp_path):
    store = Store(letter_store(tmp_path / "letters.h5"))
    train = StrokeDataset(store, "train", in_memory=True)
    test = StrokeDataset(store, "test", in_memory=True)
    held_out = collate([test[i] for i in range(len(test))])
    refs = [store.texts[i] for i in held_out.indices.tolist()]
    chance = cer(refs, refs[1:] + refs[:1])  # someone else's text

    torch.manual_seed(0)
    net = RecognizerNet(config(hidden=32, layers=1, alphabet_size=len(store.alphabet), subsample=4))
    assert cer(refs, transcribe(net, store, held_out)) >= 0.9  # untrained: next to nothing right
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = collate([train[i] for i in torch.randperm(len(train), generator=gen)[:16].tolist()])
        loss = ctc_nll(*net(batch.offsets, batch.point_mask), batch.chars, batch.char_mask).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()

    assert chance > 0.8
    assert cer(refs, transcribe(net, store, held_out)) < 0.35
