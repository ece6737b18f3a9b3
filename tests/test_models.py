import json
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit import mdn
from hwkit.config import ModelConfig
from hwkit.errors import ConfigError
from hwkit.models import (
    CONTEXT_SCALE,
    Attention,
    PredictionNet,
    Stepper,
    SynthesisNet,
    build_model,
    finished,
    stop_weight,
    JUMP_LIFTS,
    jump_shift,
    lifts_on_char,
    stroke_context,
    word_before,
)

A = 7  # tiny alphabet: padding + 6 characters


def tiny(kind: str, layers: int = 3, context: bool = False, jump: bool = False, word: bool = False,
         pen: bool = False) -> ModelConfig:  # fmt: skip
    alphabet = A if kind == "synthesis" else 0
    return ModelConfig(kind, hidden=12, layers=layers, mixtures=3, window_mixtures=2, alphabet_size=alphabet,
                       stroke_context=context or jump or word or pen, jump_table=jump or word or pen, word_table=word,
                       window_pen=pen)  # fmt: skip


def make(kind: str, layers: int = 3, seed: int = 0, context: bool = False, jump: bool = False,
         word: bool = False, pen: bool = False) -> torch.nn.Module:  # fmt: skip
    """A tiny net; with ``context`` (or ``jump``, ``word`` or ``pen``), its stroke-context weights (and jump table,
    and word table) drawn, as they start at zero, and a shifted origin; with ``word`` code 1 parts words; ``pen``
    gives the tables the window pen."""
    torch.manual_seed(seed)
    jump = jump or word or pen
    model = build_model(tiny(kind, layers, context, jump, word, pen)).eval()
    if word:
        model.space.fill_(1)
    if context or jump:
        model.set_normalisation([4.0, 0.5, 0.0], [2.0, 1.5, 1.0])
        with torch.no_grad():
            weight = model.context_ih if kind == "synthesis" else model.lstms[0].weight_ih_l0[:, 3:]
            weight.normal_(0, 0.5)
            if jump:
                model.jump.normal_(0, 0.5)
            if word:
                model.jump_word.normal_(0, 0.5)
    return model


# (kind, what layer 1 and the output read besides the points): every combination the nets allow
VARIANTS = [("prediction", None), ("prediction", "context"), ("synthesis", None), ("synthesis", "context"),
            ("synthesis", "jump"), ("synthesis", "word"), ("synthesis", "pen")]  # fmt: skip


def batch(b=3, t=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 3, generator=g)
    x[..., 2] = (x[..., 2] > 0.8).float()
    return x


TEXTS = torch.tensor([[1, 2, 3, 4, 5, 6], [3, 1, 4, 0, 0, 0], [2, 0, 0, 0, 0, 0]])
MASK = TEXTS > 0


def run(model, x, state=None, chars=TEXTS, mask=MASK):
    if isinstance(model, SynthesisNet):
        return model(x, chars, mask, state)
    return model(x, state) + (None,)


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_config_round_trips_through_json_and_rebuilds_the_same_network(kind):
    config = tiny(kind)
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    model = make(kind)
    twin = build_model(again)
    twin.load_state_dict(model.state_dict())
    x = batch()
    assert torch.equal(run(model, x)[0], run(twin.eval(), x)[0])


def test_config_rejects_unknown_kinds_keys_and_missing_alphabet():
    with pytest.raises(ConfigError, match="unknown model kind 'nope'"):
        ModelConfig.from_dict({"kind": "nope"})
    with pytest.raises(ConfigError, match="ModelConfig: unknown keys dropout"):
        ModelConfig.from_dict({"kind": "prediction", "dropout": 0.1})
    with pytest.raises(ValueError, match="alphabet_size"):
        ModelConfig("synthesis")
    with pytest.raises(ValueError, match="layers"):
        ModelConfig("prediction", layers=0)


@pytest.mark.parametrize("layers", [1, 3])
def test_output_and_state_shapes(layers):
    x = batch(3, 9)
    out, state, _ = run(make("prediction", layers), x)
    assert out.shape == (3, 9, mdn.output_size(3))
    assert [s.shape for s in state] == [(3, 12)] * (2 * layers)

    out, state, att = run(make("synthesis", layers), x)
    assert out.shape == (3, 9, mdn.output_size(3))
    assert [s.shape for s in state] == [(3, 12)] * (2 * layers) + [(3, 2), (3, A)]
    _, context_state, _ = run(make("synthesis", layers, context=True), x)
    assert [s.shape for s in context_state] == [(3, 12)] * (2 * layers) + [(3, 5), (3, 2), (3, A)]
    assert att.phi.shape == (3, 9, TEXTS.shape[1] + 1)
    assert att.kappa.shape == (3, 9, 2)


@pytest.mark.parametrize("kind,extra", VARIANTS)
def test_stepping_with_carried_state_equals_one_fused_call(kind, extra):
    model = make(kind, **({extra: True} if extra else {}))
    x = batch(3, 10)
    with torch.no_grad():
        full, full_state, full_att = run(model, x)
        steps, state, phis = [], None, []
        for t in range(10):
            out, state, att = run(model, x[:, t : t + 1], state)
            steps.append(out)
            phis.append(att.phi if att else torch.zeros(0))
        # a split in the middle (several steps per call) must agree too
        first, mid, _ = run(model, x[:, :4])
        rest, _, _ = run(model, x[:, 4:], mid)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-4)
    for a, b in zip(state, full_state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if full_att is not None:
        torch.testing.assert_close(torch.cat(phis, 1), full_att.phi, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind,extra", VARIANTS)
def test_the_stepper_computes_what_forward_does_one_point_at_a_time(kind, extra):
    # Synthesis: three texts of different lengths padded into one batch.
    model = make(kind, **({extra: True} if extra else {}))
    stepper = Stepper(model, TEXTS, MASK) if kind == "synthesis" else Stepper(model)
    x = batch(3, 60)
    close = dict(atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        state = fast_state = None
        for t in range(60):
            out, state, att = run(model, x[:, t : t + 1], state)
            fast_out, fast_state, fast_att = stepper(x[:, t], fast_state)
            torch.testing.assert_close(fast_out, out[:, 0], **close)
            assert len(fast_state) == len(state)
            for a, b in zip(fast_state, state):
                torch.testing.assert_close(a, b, **close)
            if att is None:
                assert fast_att is None
            else:
                torch.testing.assert_close(fast_att.phi, att.phi, **close)
                torch.testing.assert_close(fast_att.kappa, att.kappa, **close)


def test_a_padded_short_text_behaves_as_it_would_alone():
    model = make("synthesis")
    x = batch(3, 8)
    with torch.no_grad():
        out, state, att = model(x, TEXTS, MASK)
        for b, n in enumerate(MASK.sum(1).tolist()):
            alone_out, alone_state, alone_att = model(x[b : b + 1], TEXTS[b : b + 1, :n], MASK[b : b + 1, :n])
            torch.testing.assert_close(out[b : b + 1], alone_out, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(att.phi[b : b + 1, :, : n + 1], alone_att.phi, atol=1e-6, rtol=1e-5)
            assert (att.phi[b, :, n + 1 :] == 0).all()
            lengths = torch.tensor([n])
            torch.testing.assert_close(stop_weight(att, MASK.sum(1))[b : b + 1], stop_weight(alone_att, lengths))
            for s, s_alone in zip(state, alone_state):
                torch.testing.assert_close(s[b : b + 1], s_alone, atol=1e-6, rtol=1e-5)


def test_the_text_reaches_the_output_through_the_window():
    model = make("synthesis")
    x = batch(2, 6)
    chars = torch.tensor([[1, 2, 3], [1, 2, 3]])
    other = torch.tensor([[1, 2, 3], [4, 5, 6]])
    mask = torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        out, _, att = model(x, chars, mask)
        out2, _, _ = model(x, other, mask)
    assert torch.equal(out[0], out2[0])
    assert not torch.allclose(out[1], out2[1])
    assert (att.kappa.diff(dim=1) > 0).all()  # the window only moves forward


def test_stop_rule_reads_each_lines_own_stop_position():
    phi = torch.tensor(
        [
            [[0.1, 0.9, 0.2, 0.0], [0.0, 0.1, 0.3, 0.0]],  # length 2: stop column is 2
            [[0.5, 0.1, 0.0, 0.0], [0.1, 0.6, 0.0, 0.0]],  # length 1: stop column is 1
        ]
    )
    att = Attention(phi=phi, kappa=torch.zeros(2, 2, 1))
    lengths = torch.tensor([2, 1])
    torch.testing.assert_close(stop_weight(att, lengths), torch.tensor([[0.2, 0.3], [0.1, 0.6]]))
    assert finished(att, lengths).tolist() == [[False, True], [False, True]]


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_output_clip_hook_clamps_the_gradient_of_every_output(kind):
    model = make(kind).train()
    x = batch(3, 5)
    model.clip_hooks(lstm=None, output=0.5)
    out = run(model, x)[0]
    (1000 * out).sum().backward()
    # the head's bias gradient is the sum of the clamped output gradients over B*T = 15 points
    torch.testing.assert_close(model.head.bias.grad, torch.full_like(model.head.bias, 0.5 * 15))


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_lstm_clip_hook_clamps_the_gradient_entering_the_layers(kind):
    x = batch(3, 5)
    grads = {}
    for limit in (None, 1e-7, 2e-7):
        model = make(kind).train()
        model.clip_hooks(lstm=limit, output=None)
        (1000 * run(model, x)[0]).sum().backward()
        # the first fused layer: layer 1 of a prediction net, layer 2 of a synthesis net
        grads[limit] = model.lstms[0].weight_hh_l0.grad.clone()
    # every entering gradient is far above the limit, so all are clamped: the
    # layer's gradient is linear in the limit, and far below the unclipped one
    torch.testing.assert_close(grads[2e-7], 2 * grads[1e-7], atol=1e-12, rtol=1e-3)
    assert grads[1e-7].abs().max() < 1e-3 * grads[None].abs().max()


def test_both_nets_train_a_step_without_nans():
    for kind in ("prediction", "synthesis"):
        model = make(kind).train()
        model.clip_hooks(10.0, 100.0)
        x = batch(3, 9)
        out = run(model, x[:, :-1])[0]
        mask = torch.ones(3, 8, dtype=torch.bool)
        loss = mdn.sequence_nll(mdn.split_params(out), x[:, 1:], mask).mean()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert isinstance(model, PredictionNet if kind == "prediction" else SynthesisNet)


def _stroke_context_by_hand(x: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """The definition, point by point: sums of true moves since this and the last stroke's first points."""
    rows = []
    for line in x:
        cur = prev = torch.zeros(2, dtype=torch.float64)
        starts_stroke, feats = True, []
        for point in line.double():
            move = point[:2] - origin.double()
            cur, prev = (torch.zeros(2, dtype=torch.float64), cur + move) if starts_stroke else (cur + move, prev + move)
            feats.append(torch.cat([cur, prev]))
            starts_stroke = bool(point[2] > 0.5)
        rows.append(torch.stack(feats))
    return torch.stack(rows) * CONTEXT_SCALE


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    t=st.integers(1, 40),
    lift=st.floats(0.0, 1.0),
    cuts=st.lists(st.integers(1, 39), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_stroke_context_follows_its_definition_whole_or_in_pieces(b, t, lift, cuts, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 3, generator=g)
    x[..., 2] = (torch.rand(b, t, generator=g) < lift).float()
    origin = torch.randn(2, generator=g)
    whole, _ = stroke_context(x, origin)
    torch.testing.assert_close(whole.double(), _stroke_context_by_hand(x, origin), atol=1e-4, rtol=1e-4)
    pieces, state = [], None
    bounds = sorted({0, t, *[c for c in cuts if c < t]})
    for a, z in zip(bounds, bounds[1:]):
        feats, state = stroke_context(x[:, a:z], origin, state)
        pieces.append(feats)
    torch.testing.assert_close(torch.cat(pieces, 1), whole, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_a_model_grown_a_stroke_context_starts_as_it_was_and_then_reads_it(kind):
    from hwkit.finetune import load_grown

    plain = make(kind)
    grown = build_model(tiny(kind, context=True)).eval()
    load_grown(grown, SimpleNamespace(name="plain", weights=plain.state_dict()))
    grown.set_normalisation([4.0, 0.5, 0.0], [2.0, 1.5, 1.0])
    x = batch(3, 12)
    with torch.no_grad():
        torch.testing.assert_close(run(grown, x)[0], run(plain, x)[0])
        weight = grown.context_ih if kind == "synthesis" else grown.lstms[0].weight_ih_l0[:, 3:]
        weight.fill_(0.3)
        moved = run(grown, x)[0]
    assert not torch.allclose(moved, run(plain, x)[0], atol=1e-3)


def _lifts_by_hand(pos: torch.Tensor, up: torch.Tensor, moves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The definition, point by point: since the window's peak came to its position, the lifts (this point's
    included) and the sum of the pen's moves (not counting the move into the point where it came)."""
    counts, sinces = [], []
    for line_pos, line_up, line_moves in zip(pos.tolist(), up.tolist(), moves.tolist()):
        last, count, since, row, places = 0, 0, [0.0, 0.0], [], []
        for p, u, m in zip(line_pos, line_up, line_moves):
            count = (count if p == last else 0) + int(u)
            since = [since[0] + m[0], since[1] + m[1]] if p == last else [0.0, 0.0]
            last = p
            row.append(count)
            places.append(since)
        counts.append(row)
        sinces.append(places)
    return torch.tensor(counts), torch.tensor(sinces)


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    t=st.integers(1, 40),
    lift=st.floats(0.0, 1.0),
    moves=st.floats(0.0, 1.0),
    cuts=st.lists(st.integers(1, 39), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_lifts_on_char_follow_their_definition_whole_or_in_pieces(b, t, lift, moves, cuts, seed):
    g = torch.Generator().manual_seed(seed)
    # the window's peak stays or moves on (now and then back), as it does when writing
    step = (torch.rand(b, t, generator=g) < moves).long() * torch.randint(-1, 3, (b, t), generator=g)
    pos = step.cumsum(1).clamp(min=0)
    up = torch.rand(b, t, generator=g) < lift
    pen = torch.randn(b, t, 2, generator=g, dtype=torch.float64)
    whole, since, _ = lifts_on_char(pos, up, pen)
    count_want, since_want = _lifts_by_hand(pos, up, pen)
    assert torch.equal(whole, count_want)
    torch.testing.assert_close(since, since_want.to(since.dtype))
    pieces, places, state = [], [], None
    bounds = sorted({0, t, *[c for c in cuts if c < t]})
    for a, z in zip(bounds, bounds[1:]):
        count, at, state = lifts_on_char(pos[:, a:z], up[:, a:z], pen[:, a:z], state)
        pieces.append(count)
        places.append(at)
    assert torch.equal(torch.cat(pieces, 1), whole)
    torch.testing.assert_close(torch.cat(places, 1), since)


@pytest.mark.parametrize("pen", [False, True])
def test_the_jump_table_moves_only_air_moves_on_the_text_by_character_and_lift(pen):
    model = make("synthesis", jump=True, pen=pen)
    x = batch(3, 30)
    feats, _ = stroke_context(x, model.pen_origin)
    phi = torch.zeros(3, 30, TEXTS.shape[1] + 1)
    pos = torch.tensor([[0] * 10 + [1] * 10 + [2] * 10, [0] * 15 + [3] * 15, [0] * 5 + [1] * 25])  # line 3: past its text
    phi.scatter_(2, pos.unsqueeze(-1), 1.0)
    phi[0, 25:] = 0.0  # weights all underflowed: a window far past its text
    lengths = MASK.sum(1)
    with torch.no_grad():
        shift, _ = jump_shift(model.jumps(TEXTS, MASK), x, feats, phi, None)
    count, since = _lifts_by_hand(pos, x[..., 2] > 0.5, x[..., :2] - model.pen_origin)
    for i in range(3):
        for t in range(30):
            p = int(pos[i, t])
            if x[i, t, 2] < 0.5 or p >= int(lengths[i]) or not phi[i, t].any():
                assert not shift[i, t].any()
                continue
            row = model.jump[int(TEXTS[i, p]) * JUMP_LIFTS + min(int(count[i, t]), JUMP_LIFTS) - 1]  # lifts 1..4+
            want = feats[i, t] @ row[:4] + row[4]
            if pen:  # and where the pen went since the window came to this character
                want = want + (since[i, t] * CONTEXT_SCALE) @ row[5:7]
            torch.testing.assert_close(shift[i, t], want.detach())
    assert (x[:2, :, 2] > 0.5).sum() > 3  # the batch has air moves on the text to check


@pytest.mark.parametrize("before,after", [("context", "jump"), ("jump", "word"), ("jump", "pen")])
def test_a_model_grown_a_jump_or_word_table_starts_as_it_was_and_then_moves_air_moves_only(before, after):
    from hwkit.finetune import load_grown

    plain = make("synthesis", **{before: True})
    grown = build_model(tiny("synthesis", **{after: True})).eval()
    load_grown(grown, SimpleNamespace(name="plain", weights=plain.state_dict()))
    x = batch(3, 40)
    texts = torch.tensor([[2, 1, 3, 1, 4, 1], [3, 3, 1, 5, 1, 0], [2, 1, 0, 0, 0, 0]])  # with code 1 for spaces
    with torch.no_grad():
        if after == "word":
            grown.space.fill_(1)
        outputs = [run(net, x, chars=texts, mask=texts > 0)[0] for net in (grown, plain)]
        torch.testing.assert_close(*outputs)
        getattr(grown, "jump_word" if after == "word" else "jump").fill_(0.3)
        change = run(grown, x, chars=texts, mask=texts > 0)[0] - outputs[1]
        moved = change.abs().amax(-1) > 1e-4
    assert moved.any()
    assert not (moved & (x[..., 2] < 0.5)).any()  # pen-down points are the network's own


def test_a_jump_table_needs_the_synthesis_net_and_its_stroke_context():
    with pytest.raises(ValueError, match="jump_table"):
        ModelConfig("synthesis", alphabet_size=A, jump_table=True)
    with pytest.raises(ValueError, match="jump_table"):
        ModelConfig("prediction", stroke_context=True, jump_table=True)
    with pytest.raises(ValueError, match="word_table is part of the jump table"):
        ModelConfig("synthesis", alphabet_size=A, stroke_context=True, word_table=True)
    with pytest.raises(ValueError, match="window_pen is part of the jump table"):
        ModelConfig("synthesis", alphabet_size=A, stroke_context=True, window_pen=True)


def _words_by_hand(text: list[int], space: int) -> list[Counter]:
    """At each space, the letters since the space before (or the text's start); nothing elsewhere."""
    out, word = [], Counter()
    for code in text:
        out.append(word if code == space else Counter())
        word = Counter() if code == space else word + Counter([code])
    return out + [Counter()]  # the stop position


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4), max_size=9), min_size=1, max_size=4))
def test_each_space_counts_the_letters_of_the_word_it_ends(texts):
    space, size = 1, 5
    lengths = torch.tensor([len(t) for t in texts])
    chars = torch.zeros(len(texts), max(max(lengths), 1), dtype=torch.long)
    for i, t in enumerate(texts):
        chars[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    got = word_before(chars, lengths, space, size)
    assert got.shape == (len(texts), chars.shape[1] + 1, size)
    for i, t in enumerate(texts):
        for u, want in enumerate(_words_by_hand(t, space)):
            assert got[i, u].tolist() == [float(want[c]) for c in range(size)], (t, u)
        assert not got[i, len(t) :].any()  # the stop position and the padding after it


def test_the_word_table_moves_air_moves_on_a_space_by_the_letters_of_the_word_before_it():
    model = make("synthesis", word=True)
    x = batch(2, 30)
    x[..., 2] = (torch.arange(30) % 3 == 0).float()  # plenty of air moves, at the same points in both lines
    feats, _ = stroke_context(x, model.pen_origin)
    texts = torch.tensor([[2, 3, 1, 4, 5], [2, 6, 1, 4, 5]])  # "ab cd", "af cd" (code 1 parts words)
    phi = torch.zeros(2, 30, 6)
    pos = torch.tensor([0] * 6 + [1] * 6 + [2] * 6 + [3] * 6 + [5] * 6).expand(2, 30)  # on to the stop position
    phi.scatter_(2, pos.unsqueeze(-1), 1.0)
    with torch.no_grad():
        shift, _ = jump_shift(model.jumps(texts, texts > 0), x, feats, phi, None)
        plain = model.jumps(texts, texts > 0)
        plain.word = None
        table_only, _ = jump_shift(plain, x, feats, phi, None)
    count, _, _ = lifts_on_char(pos, x[..., 2] > 0.5, x[..., :2] - model.pen_origin)
    on_space = (pos == 2) & (x[..., 2] > 0.5)
    torch.testing.assert_close(shift[~on_space], table_only[~on_space])  # letters, and past the text: the table alone
    for t in torch.nonzero(on_space[0]).flatten().tolist():
        lift = min(int(count[0, t]), JUMP_LIFTS) - 1
        for i, word in enumerate(([2, 3], [2, 6])):
            context = torch.cat([feats[i, t], torch.ones(1)])  # each letter's own affine function of it
            want = table_only[i, t] + sum(context @ model.jump_word[lift, c] for c in word)
            torch.testing.assert_close(shift[i, t], want)
        assert not torch.allclose(shift[0, t], shift[1, t])  # same place, other words: other moves
    assert on_space[0].sum() >= 2


def _onednn_runs_a_bf16_lstm() -> bool:
    """oneDNN builds a bf16 LSTM only on CPUs with bf16 instructions (an AMD EPYC without them refuses);
    elsewhere torch's own LSTM kernel runs under autocast instead."""
    lstm = torch.nn.LSTM(2, 2)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # torch says so when mkldnn flags are set
def test_a_jump_table_trains_under_bf16_autocast():
    # --bf16 runs the forward under autocast, where the table's matmul comes out in bf16
    model = make("synthesis", jump=True).train()
    with torch.backends.mkldnn.flags(enabled=_onednn_runs_a_bf16_lstm()), torch.autocast("cpu", dtype=torch.bfloat16):
        out, _, _ = model(batch(3, 20), TEXTS, MASK)
    out.float().square().sum().backward()
    assert torch.isfinite(model.jump.grad).all() and model.jump.grad.abs().sum() > 0
