"""Graves' handwriting networks: prediction (sec. 4) and synthesis (sec. 5).

Both read ``x = offsets[:, :-1]`` (``(B, T, 3)`` normalised ``dx, dy, pen_up``)
and emit ``(B, T, 1 + 6M)`` mixture parameters for ``offsets[:, 1:]`` (see
``hwkit.mdn``). Every LSTM layer sees the input ``x`` (skip connections) and
every layer's output reaches the output layer, which keeps the gradient path
from the loss to the bottom layer short.

Speed comes from running whole sequences through ``nn.LSTM`` (cuDNN on GPU,
oneDNN on CPU) rather than stepping cells in Python. The synthesis net cannot
do that for layer 1: its window reads layer 1's output at step t and feeds
layer 1 at step t + 1, so layer 1 and the window step in a Python loop (with the
input projection of ``x`` done for the whole sequence before it) while layers
2..N run fused afterwards.

With ``stroke_context`` (``ModelConfig``) layer 1 also reads where the pen is
within its strokes: the displacement from the first point of the current stroke
and from that of the stroke before (``stroke_context``). An LSTM can in principle
sum the offsets itself; measured, it does not: the stage-3 bundled model predicted
a capital's pen-down points as well as lower case's but its jump back after a lift
six times worse, and that jump is minus the stroke it just drew plus a little. (Stage
4, trained with the context, barely uses it: BENCHMARKS.md, quality.) Cropped
training windows start on a stroke's first point, so the context starts as at a line's start.

State is a plain tuple of tensors, each with the batch as its first axis, so a
sampler can carry it between calls and pick or join lines with ``s[idx]`` /
``torch.cat``:

    prediction  (h1, c1, ..., hN, cN[, pen])              each (B, H)
    synthesis   (h1, c1, ..., hN, cN[, pen][, lift], kappa, w)    kappa (B, K), w (B, A)

``pen`` (B, 5), with stroke context only, is ``stroke_context``'s running sums;
``lift`` (B, 4), with the jump table only, is ``lifts_on_char``'s (position, count, move).

With ``jump_table`` (``ModelConfig``) the synthesis net adds to its mixture outputs,
at each air move (the point after a pen lift), an affine function of the stroke
context chosen by the character the window weighs most and the pen lifts since
the window came to it (``JUMP_LIFTS``). Stage 5 placed the pen after a capital's
lift six times worse than after a lower-case one and could not tell an H's first
lift (on to the second stem) from its second (back to the bar): the lift count
tells them apart, and the jump back is minus the stroke just drawn, which the
stroke context holds. A table is what the LSTM failed to learn from the same
inputs in 600 steps.

With ``word_table`` as well, where the window is on a space the addition also
reads how many of each character the word before it holds (``word_before``): for
each, an affine function of the stroke context, one per character and lift count.
A joined-up hand goes back after a word for the dots and bars it owes, and only
then; the stage-9 LSTM, teacher-forced, gave going back 0.34 on average where a
joined-up writer went on and 0.50 where they went back: a rate that barely read
the word (BENCHMARKS.md, quality). The stroke context is what tells a joined-up
word (one long stroke) from a printed one, which owes nothing: plain counts sent
printed words with an F or an i back too (after "Felix", 0.3-0.4 against 0.00).

With ``window_pen`` the tables also read where the pen has moved since the window
came to its character (``lifts_on_char``). After a joined-up word's dots and bars
the pen jumps on to the next word, which starts a space after where the word
ended, wherever the marks fell: that jump is minus this move plus a space. The
stroke context forgets the word's end after one mark; the LSTM remembers it on a
writer's lines but not on its own, whose marks land elsewhere, and words ran
together (BENCHMARKS.md, quality, "Word gaps").

``forward(x[:, :1], ..., state)`` repeated step by step gives the same outputs
as one call over the whole sequence. Padded points need no mask: they come
after a line's real points and the networks are causal, so they never change
a real output (they do change the returned state, so prime lines of different
lengths one length at a time).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwkit.alphabet import PAD, Alphabet
from hwkit.config import ModelConfig
from hwkit.mdn import output_size

# The window's kappa step starts at exp(0) / POINTS_PER_CHAR, about one character
# per 25 pen points as in IAM-OnDB. Graves' eq. 51 (kappa_t = kappa_{t-1} + exp(k))
# is kept literally; the kappa bias is initialised to -log(25) instead, which is
# the same function as the common "exp(k) / 25" and the same gradients, without
# a magic divisor in the model. Without it the window would start racing through
# the text at one character per point.
POINTS_PER_CHAR = 25.0

State = tuple[Tensor, ...]

# Stroke context: 4 features, from a running state of 5 numbers per line.
CONTEXT_FEATURES = 4
CONTEXT_STATE = 5
# Displacements are summed in pen units over the store's std (a letter is 2 to 8 of
# them); a quarter brings the usual ones to about 1, as the offsets are.
CONTEXT_SCALE = 0.25


def stroke_context(x: Tensor, origin: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Where the pen is within its strokes at each point: ``(B, T, 4)`` features and the new ``(B, 5)`` state.

    Features (times ``CONTEXT_SCALE``): the displacement from the current stroke's
    first point to this point (0 on a first point), and from the previous stroke's
    first point (on a first point: the last stroke's extent plus the jump here).
    ``origin`` is the normalised value of a zero move (``-mean / std`` of dx, dy),
    so the sums are of true moves, not of mean-shifted ones. The state is
    (current sum, previous sum, 1 if the last point kept the pen down); zeros
    start a line as a new stroke. Whole sequences and single steps agree.
    """
    b, t, _ = x.shape
    if state is None:
        state = x.new_zeros(b, CONTEXT_STATE)
    cur0, prev0, down0 = state[:, :2], state[:, 2:4], state[:, 4:]
    moves = (x[..., :2] - origin).cumsum(1)  # (B, T, 2): sum of moves up to and including t
    down = torch.cat([down0, 1.0 - x[:, :-1, 2]], dim=1)  # (B, T): point t continues a stroke
    steps = torch.arange(t, device=x.device).expand(b, t)
    last = torch.where(down > 0.5, -1, steps).cummax(1).values  # the latest stroke start at or before t
    started = (last >= 0).unsqueeze(-1)
    at = last.clamp(min=0).unsqueeze(-1).expand(b, t, 2)
    cur = torch.where(started, moves - moves.gather(1, at), cur0.unsqueeze(1) + moves)
    before = torch.cat([cur0.unsqueeze(1), cur[:, :-1]], dim=1)  # cur at t - 1
    moved_before = torch.cat([moves.new_zeros(b, 1, 2), moves[:, :-1]], dim=1)
    prev = torch.where(started, before.gather(1, at) + moves - moved_before.gather(1, at), prev0.unsqueeze(1) + moves)
    new_state = torch.cat([cur[:, -1], prev[:, -1], 1.0 - x[:, -1, 2:]], dim=1)
    return torch.cat([cur, prev], dim=-1) * CONTEXT_SCALE, new_state


# Jump table rows: one per (character code, pen lifts 1, 2, 3, 4 or more; an air move always follows one).
JUMP_LIFTS = 4
LIFT_STATE = 4


def lifts_on_char(pos: Tensor, up: Tensor, moves: Tensor | None, state: Tensor | None = None
                  ) -> tuple[Tensor, Tensor | None, Tensor]:  # fmt: skip
    """Since the window's peak came to its position: the pen lifts, counting this point's, ``(B, T)``, and
    where the pen has moved, ``(B, T, 2)``; then the new state.

    ``pos`` ``(B, T)`` is the position the window weighs most, ``up`` ``(B, T)``
    whether the point lifts the pen, ``moves`` ``(B, T, 2)`` the pen's true moves
    into each point (None: the move is not wanted, and stays zero in the state;
    a sampling step is then cheaper). The state is ``(B, 4)``: the last step's
    position, count and move (zeros: a line's start). Whole sequences and single
    steps agree.
    """
    b, t = pos.shape
    if state is None:
        state = pos.new_zeros(b, LIFT_STATE, dtype=torch.float32 if moves is None else moves.dtype)
    prev = torch.cat([state[:, :1].long(), pos[:, :-1]], dim=1)
    cum = up.long().cumsum(1)
    steps = torch.arange(t, device=pos.device).expand(b, t)
    start = torch.where(pos != prev, steps, -1).cummax(1).values  # where the current position's run began
    before = torch.where(start > 0, cum.gather(1, (start - 1).clamp(min=0)), 0)
    count = torch.where(start >= 0, cum - before, state[:, 1:2].long() + cum)
    since = None
    if moves is not None:
        pen = moves.cumsum(1)
        started = (start >= 0).unsqueeze(-1)
        since = torch.where(started, pen - pen.gather(1, start.clamp(min=0).unsqueeze(-1).expand(b, t, 2)),
                            state[:, 2:].unsqueeze(1) + pen)  # fmt: skip
    last = state[:, 2:] if since is None else since[:, -1]
    return count, since, torch.cat([pos[:, -1:].to(state.dtype), count[:, -1:].to(state.dtype), last], dim=1)


def word_before(chars: Tensor, lengths: Tensor, space: int | Tensor, size: int) -> Tensor:
    """At each space, how many of each character code the word it ends holds; zeros elsewhere: ``(B, U + 1, size)``.

    Position ``U`` is the stop position of the longest text (never a space).
    ``space`` is the code that parts words.
    """
    b, u = chars.shape
    real = torch.arange(u, device=chars.device) < lengths[:, None]
    spaces = real & (chars == space)
    counts = (F.one_hot(chars.long(), size) * (real & ~spaces).unsqueeze(-1)).float().cumsum(1)  # letters up to u
    steps = torch.arange(u, device=chars.device).expand(b, u)
    before = F.pad(torch.where(spaces, steps, -1).cummax(1).values[:, :-1], (1, 0), value=-1)  # the space before u
    at_before = counts.gather(1, before.clamp(min=0).unsqueeze(-1).expand(b, u, size))
    start = torch.where((before >= 0).unsqueeze(-1), at_before, 0.0)
    return F.pad((counts - start) * spaces.unsqueeze(-1), (0, 0, 0, 1))


@dataclass
class Jumps:
    """What the jump table reads besides the pen: its weights, the texts and (word table) their words."""

    table: Tensor  # (A * JUMP_LIFTS, C, 1 + 6M): C = 5, or 7 with the window pen
    chars: Tensor  # (B, U) codes
    lengths: Tensor  # (B,)
    origin: Tensor  # (2,) the normalised value of a zero move (``stroke_context``'s)
    window_pen: bool = False  # the table reads where the pen has moved since the window came to its character
    word: Tensor | None = None  # (JUMP_LIFTS, A, C, 1 + 6M), with the word table
    words: Tensor | None = None  # (B, U + 1, A): word_before


def jump_rows(
    jumps: Jumps, x: Tensor, feats: Tensor, phi: Tensor, state: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Where the jump table acts, and with what: ``(acts, rows, inputs, state)``.

    ``acts`` ``(B, T)`` marks the air moves on the text, ``rows`` ``(B, T)`` gives
    each point's table row (character code x ``JUMP_LIFTS`` + lifts - 1, 4 or
    more alike), ``inputs`` ``(B, T, C)`` the stroke context, a 1 and, with the
    window pen, where the pen has moved since the window came to its position
    (``lifts_on_char``, times ``CONTEXT_SCALE``), then with the word table
    ``word_before`` at the window's position ``(.., C + A)``; ``state`` is the
    new lift state. ``feats`` are the stroke-context features ``(B, T, 4)`` and
    ``phi`` the window's weights ``(B, T, U + 1)``. Once the window is past its
    text (or its weights have all underflowed, far past it) the table does not act:
    a row for the stop position learns that a line's
    last word is often followed by its deferred dots and bars, and sent every
    line back to the left for marks its last word did not have (the reader then
    lost the full stop).
    """
    chars, lengths = jumps.chars, jumps.lengths
    pos = torch.where(phi.amax(-1) > 0, phi.argmax(-1), lengths[:, None])  # (B, T); all zeros: past the text
    up = x[..., 2] > 0.5
    moves = x[..., :2] - jumps.origin if jumps.window_pen else None
    count, since, state = lifts_on_char(pos, up, moves, state)
    rows = chars.gather(1, pos.clamp(max=chars.shape[1] - 1)) * JUMP_LIFTS + (count - 1).clamp(0, JUMP_LIFTS - 1)
    inputs = [feats, feats.new_ones(*feats.shape[:2], 1)] + ([since * CONTEXT_SCALE] if since is not None else [])
    if jumps.words is not None:
        inputs.append(jumps.words.gather(1, pos.unsqueeze(-1).expand(-1, -1, jumps.words.shape[-1])).to(feats.dtype))
    return up & (pos < lengths[:, None]), rows, torch.cat(inputs, dim=-1), state


def jump_values(table: Tensor, rows: Tensor, inputs: Tensor, word: Tensor | None = None) -> Tensor:
    """The table's addition to the mixture outputs at air moves ``(N,)`` with inputs ``(N, C[+A])``: ``(N, 1 + 6M)``."""
    context = inputs[:, : table.shape[1]]
    values = torch.bmm(context.unsqueeze(1), table[rows]).squeeze(1)
    if word is None:
        return values
    lifts, a, c, out = word.shape
    pairs = (inputs[:, c:, None] * context[:, None, :]).reshape(-1, a * c)  # each letter's count times the context
    by_lift = (pairs @ word.permute(1, 2, 0, 3).reshape(a * c, lifts * out)).view(-1, lifts, out)
    return values + by_lift[torch.arange(len(rows), device=rows.device), rows % JUMP_LIFTS]


def jump_shift(jumps: Jumps, x: Tensor, feats: Tensor, phi: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
    """The jump table's addition to the mixture outputs, ``(B, T, 1 + 6M)`` (zero but at air moves on the text),
    and the new lift state; the arguments are ``jump_rows``'."""
    acts, rows, inputs, state = jump_rows(jumps, x, feats, phi, state)
    if x.shape[1] == 1:  # a sampling step: every line's value, masked, so that a GPU never waits on nonzero()
        return (jump_values(jumps.table, rows[:, 0], inputs[:, 0], jumps.word) * acts).unsqueeze(1), state
    where = acts.nonzero(as_tuple=True)  # training: the air moves alone (a few per cent of the points)
    values = jump_values(jumps.table, rows[where], inputs[where], jumps.word)
    return values.new_zeros(*x.shape[:2], jumps.table.shape[-1]).index_put(where, values), state


@dataclass
class Attention:
    """Where the synthesis window looked.

    ``phi[b, t, u - 1]`` is the window weight on character position u = 1..U+1,
    U being the longest text of the batch. For a line of length L, columns
    0..L-1 are its characters, column L is the position just past its text
    (Graves' stop position) and columns beyond are zero. ``stop_weight`` and
    ``finished`` read each line's own stop column.
    """

    phi: Tensor  # (B, T, U + 1)
    kappa: Tensor  # (B, T, K)


def stop_weight(attention: Attention, char_lengths: Tensor) -> Tensor:
    """Window weight on the position just past each line's text: ``(B, T)``."""
    b, t, _ = attention.phi.shape
    index = char_lengths.long().view(b, 1, 1).expand(b, t, 1)
    return attention.phi.gather(-1, index).squeeze(-1)


def finished(attention: Attention, char_lengths: Tensor) -> Tensor:
    """Graves' stop rule, ``(B, T)`` bool: the stop position outweighs every real character."""
    phi = attention.phi
    real = torch.arange(phi.shape[-1], device=phi.device) < char_lengths.view(-1, 1, 1)
    best_char = phi.masked_fill(~real, float("-inf")).amax(-1)
    return stop_weight(attention, char_lengths) > best_char


@dataclass
class _Text:
    """A batch of right-padded texts as the synthesis window reads them."""

    onehot: Tensor  # (B, U, A), zero on padding
    positions: Tensor  # (U + 1,): u = 1..U+1
    pos_mask: Tensor  # (B, U + 1): 1 on each line's characters and its stop position

    @classmethod
    def of(cls, chars: Tensor, char_mask: Tensor, alphabet_size: int, dtype: torch.dtype) -> _Text:
        char_mask = char_mask.bool()
        onehot = F.one_hot(chars.long(), alphabet_size).to(dtype) * char_mask.unsqueeze(-1).to(dtype)
        positions = torch.arange(1, chars.shape[1] + 2, device=chars.device, dtype=dtype)
        pos_mask = (positions <= (char_mask.sum(1) + 1).unsqueeze(1)).to(dtype)
        return cls(onehot, positions, pos_mask)

    def attend(self, window_out: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One window step from the window layer's output ``(B, 3K)``: new kappa, phi ``(B, U + 1)``, w ``(B, A)``."""
        alpha, beta, step = torch.exp(window_out).chunk(3, dim=1)  # (B, K) each
        kappa = kappa + step
        dist = (kappa.unsqueeze(2) - self.positions).square()  # (B, K, U+1)
        phi = torch.bmm(alpha.unsqueeze(1), torch.exp(-beta.unsqueeze(2) * dist)).squeeze(1) * self.pos_mask
        w = torch.bmm(phi[:, :-1].unsqueeze(1), self.onehot).squeeze(1)  # the stop position writes nothing
        return kappa, phi, w


class _Net(nn.Module):
    """Shared gradient clipping (Graves sec. 4: LSTM +-10, outputs +-100)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self._clip_lstm: float | None = None
        self._clip_output: float | None = None
        self.context = CONTEXT_FEATURES if config.stroke_context else 0
        if self.context:
            self.register_buffer("pen_origin", torch.zeros(2))

    def set_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Tell the stroke context what a zero move looks like in the pen units the net is trained on."""
        origin = [-float(m) / float(s) for m, s in zip(mean[:2], std[:2])]
        self.pen_origin.copy_(torch.tensor(origin, dtype=self.pen_origin.dtype))

    def _context(self, x: Tensor, state: State | None, at: int) -> tuple[Tensor, list[Tensor]]:
        """``x`` with its stroke-context features appended, and the new pen state (``[]`` without context)."""
        if not self.context:
            return x, []
        feats, pen = stroke_context(x, self.pen_origin, None if state is None else state[at])
        return torch.cat([x, feats], dim=-1), [pen]

    def clip_hooks(self, lstm: float | None, output: float | None) -> None:
        """Clamp gradients during backward: ``None`` turns a clamp off.

        ``output`` clamps the gradient of the loss w.r.t. the network outputs
        (the 1 + 6M mixture parameters), exactly as Graves. ``lstm`` clamps the
        gradient entering each LSTM layer's output sequence from the layers
        above and the output layer (for the synthesis net's layer 1, not what
        comes back through its own window, which belongs to its recurrence).
        Graves clipped inside the cell (the gate pre-activations at every
        step); fused kernels (cuDNN, oneDNN) do not expose those, so this is
        the nearest point that keeps them fused. Usual call: ``(10.0, 100.0)``.
        """
        self._clip_lstm = lstm
        self._clip_output = output

    @staticmethod
    def _clamp_grad(t: Tensor, limit: float | None) -> Tensor:
        if limit is not None and t.requires_grad:
            t.register_hook(lambda g: g.clamp(-limit, limit))
        return t

    def _fused_layer(
        self, lstm: nn.LSTM, inp: Tensor, h: Tensor | None, c: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        hx = None if h is None else (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous())
        y, (hn, cn) = lstm(inp, hx)
        return self._clamp_grad(y, self._clip_lstm), hn[0], cn[0]


class PredictionNet(_Net):
    """Graves sec. 4: N stacked LSTMs with skip connections, MDN output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        h = config.hidden
        self.lstms = nn.ModuleList(
            nn.LSTM(3 + self.context if i == 0 else 3 + h, h, batch_first=True) for i in range(config.layers)
        )
        with torch.no_grad():  # the context starts switched off, so that a grown model starts as it was
            self.lstms[0].weight_ih_l0[:, 3:].zero_()
        self.head = nn.Linear(config.layers * h, output_size(config.mixtures))

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        outs: list[Tensor] = []
        new_state: list[Tensor] = []
        inp, pen = self._context(x, state, 2 * len(self.lstms))
        for i, lstm in enumerate(self.lstms):
            h, c = (None, None) if state is None else (state[2 * i], state[2 * i + 1])
            y, hn, cn = self._fused_layer(lstm, inp, h, c)
            outs.append(y)
            new_state += [hn, cn]
            inp = torch.cat([x, y], dim=-1)
        out = self._clamp_grad(self.head(torch.cat(outs, dim=-1)), self._clip_output)
        return out, tuple(new_state + pen)


class SynthesisNet(_Net):
    """Graves sec. 5: the prediction net plus a soft window over the text after layer 1.

    The window holds K Gaussians over character positions u = 1..U+1:
    phi(t, u) = sum_k alpha_k exp(-beta_k (kappa_k - u)^2), with
    (alpha, beta, kappa step) = exp(W h1_t + b) and kappa accumulating. Its
    output w_t = sum_u phi(t, u) onehot(c_u) feeds layer 1 at t + 1, and
    layers 2..N and the output layer at t. Padded character positions (past a
    line's own stop position) get zero weight, so a short text in a padded
    batch behaves exactly as it would alone. Texts are right-padded:
    ``char_mask`` is True on a prefix of each row.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        h, a, k = config.hidden, config.alphabet_size, config.window_mixtures
        self.cell = nn.LSTMCell(3 + a, h)  # layer 1 reads (x_t, w_{t-1})
        if self.context:  # and the stroke context, through weights of its own (the alphabet may grow)
            self.context_ih = nn.Parameter(torch.zeros(4 * h, self.context))
        self.window = nn.Linear(h, 3 * k)  # -> log alpha, log beta, log kappa step
        with torch.no_grad():
            self.window.bias[2 * k :].fill_(-math.log(POINTS_PER_CHAR))
        self.lstms = nn.ModuleList(nn.LSTM(3 + h + a, h, batch_first=True) for _ in range(config.layers - 1))
        self.head = nn.Linear(config.layers * h + a, output_size(config.mixtures))
        # the jump table reads the stroke context, a 1 and (window pen) the pen's move since the window's character
        inputs = CONTEXT_FEATURES + 1 + (2 if config.window_pen else 0)
        if config.jump_table:  # zeros: a grown model starts as it was (new inputs come last)
            self.jump = nn.Parameter(torch.zeros(a * JUMP_LIFTS, inputs, output_size(config.mixtures)))
        if config.word_table:
            size = (JUMP_LIFTS, a, inputs, output_size(config.mixtures))
            self.jump_word = nn.Parameter(torch.zeros(size))
            self.register_buffer("space", torch.tensor(0))  # the code that parts words (set_alphabet)

    def set_alphabet(self, alphabet: Alphabet) -> None:
        """Tell the word table which code parts words (none: a text is one word)."""
        self.space.fill_(int(alphabet.encode(" ")[0]) if not alphabet.unknown(" ") else PAD)

    def jumps(self, chars: Tensor, char_mask: Tensor) -> Jumps:
        """The jump table and what it reads of ``chars``."""
        chars, lengths = chars.long(), char_mask.sum(1).long()
        jumps = Jumps(self.jump, chars, lengths, self.pen_origin, self.config.window_pen)
        if not self.config.word_table:
            return jumps
        words = word_before(chars, lengths, self.space, self.config.alphabet_size)
        return dataclasses.replace(jumps, word=self.jump_word, words=words)

    def forward(
        self, x: Tensor, chars: Tensor, char_mask: Tensor, state: State | None = None
    ) -> tuple[Tensor, State, Attention]:
        b = x.shape[0]
        cfg = self.config
        n_layers, hid, a, k = cfg.layers, cfg.hidden, cfg.alphabet_size, cfg.window_mixtures
        if state is None:
            zeros = x.new_zeros(b, hid)
            pen0 = (x.new_zeros(b, CONTEXT_STATE),) if self.context else ()
            lift0 = (x.new_zeros(b, LIFT_STATE),) if cfg.jump_table else ()
            state = (zeros,) * (2 * n_layers) + pen0 + lift0 + (x.new_zeros(b, k), x.new_zeros(b, a))
        h, c, kappa, w = state[0], state[1], state[-2], state[-1]

        text = _Text.of(chars, char_mask, a, x.dtype)
        w_x, w_w = self.cell.weight_ih.split([3, a], dim=1)
        x_in, pen = self._context(x, state, 2 * n_layers)
        if self.context:
            w_x = torch.cat([w_x, self.context_ih], dim=1)
        # x's share of layer 1's gates for the whole sequence in one matmul; unbind (not
        # x_proj[:, t]) so that backward stacks T slices once instead of T full-size zeros
        x_steps = F.linear(x_in, w_x, self.cell.bias_ih + self.cell.bias_hh).unbind(1)  # T x (B, 4H)
        w_rec = torch.cat([w_w, self.cell.weight_hh], dim=1).t()  # (A + H, 4H)
        h1s, ws, phis, kappas = [], [], [], []
        for x_t in x_steps:
            gates = torch.addmm(x_t, torch.cat([w, h], dim=1), w_rec)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            kappa, phi, w = text.attend(self.window(h), kappa)
            h1s.append(h)
            ws.append(w)
            phis.append(phi)
            kappas.append(kappa)

        y = self._clamp_grad(torch.stack(h1s, dim=1), self._clip_lstm)
        w_seq = torch.stack(ws, dim=1)
        outs = [y]
        new_state = [h, c]
        for i, lstm in enumerate(self.lstms, start=1):
            y, hn, cn = self._fused_layer(lstm, torch.cat([x, y, w_seq], dim=-1), state[2 * i], state[2 * i + 1])
            outs.append(y)
            new_state += [hn, cn]
        out = self.head(torch.cat(outs + [w_seq], dim=-1))
        attention = Attention(phi=torch.stack(phis, dim=1), kappa=torch.stack(kappas, dim=1))
        lift = []
        if cfg.jump_table:
            at = 2 * n_layers + 1
            shift, lift_state = jump_shift(self.jumps(chars, char_mask), x, x_in[..., 3:], attention.phi, state[at])
            out, lift = out + shift, [lift_state]
        out = self._clamp_grad(out, self._clip_output)
        return out, tuple(new_state + pen + lift + [kappa, w]), attention


# Lines in a batch from which ``Stepper`` runs its matmuls on oneDNN on one thread (see ``Stepper._pack``).
_PACKED_MIN_BATCH = 8


class Stepper:
    """``forward`` for one point, fast, for sampling: ``stepper(x, state) -> (out, state, attention)``.

    ``x`` is ``(B, 3)`` and ``out`` ``(B, 1 + 6M)``; ``state`` is the model's
    (``None``: zeros) and ``attention`` has ``T = 1`` (``None`` for the
    prediction net). A synthesis stepper serves the batch of texts it was built
    with. Same maths as ``forward`` with ``T = 1``, but each LSTM layer is one
    ``addmm`` on ``[W_ih | W_hh]``, joined once here: for one line on a CPU,
    ``nn.LSTM``'s per-call overhead (and oneDNN's weight re-layout on every
    call) costs as much as the matmul itself. The weights are copied, so build
    a new stepper after changing the model. No autograd.
    """

    @torch.no_grad()
    def __init__(self, model: nn.Module, chars: Tensor | None = None, char_mask: Tensor | None = None) -> None:
        cfg = model.config
        cells = [(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0) for m in model.lstms]
        self.text = self.jump = None
        self.origin = model.pen_origin.clone() if model.context else None
        if isinstance(model, SynthesisNet):
            # layer 1 reads (x, w, stroke context): the context's weights join the cell's
            weight_ih = torch.cat([model.cell.weight_ih, model.context_ih], 1) if model.context else model.cell.weight_ih
            cells.insert(0, (weight_ih, model.cell.weight_hh, model.cell.bias_ih, model.cell.bias_hh))
            self.window = model.window.weight.t().contiguous(), model.window.bias.clone()
            self.text = _Text.of(chars, char_mask, cfg.alphabet_size, model.head.weight.dtype)
            self.extra_state = (cfg.window_mixtures, cfg.alphabet_size)  # kappa, w
            if cfg.jump_table:
                jumps = model.jumps(chars, char_mask)
                word = None if jumps.word is None else jumps.word.clone()
                self.jump = dataclasses.replace(jumps, table=jumps.table.clone(), word=word)
                self.extra_state = (LIFT_STATE,) + self.extra_state
        else:
            self.extra_state = ()
        # (in, 4H) contiguous: the layout a one-row addmm reads fastest
        self.layers = [(torch.cat([w_ih, w_hh], 1).t().contiguous(), b_ih + b_hh) for w_ih, w_hh, b_ih, b_hh in cells]
        self.head = model.head.weight.t().contiguous(), model.head.bias.clone()
        self.hidden = cfg.hidden
        self._packed = None  # oneDNN copies of the layers' weights, made on the first call that uses them

    def _pack(self) -> list:
        """The LSTM layers' and the head's weights packed for oneDNN's matmul, or ``[]`` where that is not to be had.

        On a CPU, oneDNN's matmul on weights reordered once beats ``addmm`` (MKL)
        for batches of ``_PACKED_MIN_BATCH`` lines or more, and for any batch on
        two or more threads (MKL runs a one-row product on one thread; oneDNN
        splits it): BENCHMARKS.md has the numbers. The ops are torch's internal
        ones (those ``torch.compile`` uses on the CPU), so any failure, or a
        result off from ``addmm``'s, falls back to ``addmm``.
        """
        if self._packed is None:
            self._packed = []
            weight, bias = self.layers[0]
            if weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.backends.mkldnn.is_available():
                try:
                    packed = [torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous()) for w, _ in [*self.layers, self.head]]
                    x = torch.randn(_PACKED_MIN_BATCH, weight.shape[0], generator=torch.Generator().manual_seed(0))
                    got = torch.ops.mkldnn._linear_pointwise(x, packed[0], bias, "none", [], "")
                    if torch.allclose(got, torch.addmm(bias, x, weight), rtol=1e-4, atol=1e-4):
                        self._packed = packed
                except (RuntimeError, AttributeError, NotImplementedError):
                    pass
        return self._packed

    @torch.no_grad()
    def __call__(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State, Attention | None]:
        n_layers = len(self.layers)
        if state is None:
            pen = [CONTEXT_STATE] if self.origin is not None else []
            sizes = [self.hidden] * (2 * n_layers) + pen + list(self.extra_state)
            state = tuple(x.new_zeros(x.shape[0], n) for n in sizes)
        extra = [state[-1]] if self.text is not None else []  # the synthesis net's layer 1 reads w_{t-1}
        inp, ys, new_state = [x] + extra, [], []
        pen = []
        if self.origin is not None:
            feats, pen_state = stroke_context(x.unsqueeze(1), self.origin, state[2 * n_layers])
            inp.append(feats.squeeze(1))
            pen = [pen_state]
        hid = self.hidden
        packed = self._pack() if x.shape[0] >= _PACKED_MIN_BATCH or torch.get_num_threads() > 1 else []
        for n, (weight, bias) in enumerate(self.layers):
            if packed:
                gates = torch.ops.mkldnn._linear_pointwise(torch.cat(inp + [state[2 * n]], dim=1), packed[n], bias, "none", [], "")
            else:
                gates = torch.addmm(bias, torch.cat(inp + [state[2 * n]], dim=1), weight)
            g = gates[:, 2 * hid : 3 * hid].tanh()
            i, f, _, o = gates.sigmoid_().chunk(4, dim=1)  # in place: only g needed the raw values
            c = torch.addcmul(f * state[2 * n + 1], i, g)
            h = c.tanh().mul_(o)
            ys.append(h)
            new_state += [h, c]
            if n == 0 and self.text is not None:
                kappa, phi, w = self.text.attend(torch.addmm(self.window[1], h, self.window[0]), state[-2])
                extra = [w]
            inp = [x, h] + extra
        if packed:
            out = torch.ops.mkldnn._linear_pointwise(torch.cat(ys + extra, dim=1), packed[-1], self.head[1], "none", [], "")
        else:
            out = torch.addmm(self.head[1], torch.cat(ys + extra, dim=1), self.head[0])
        if self.text is None:
            return out, tuple(new_state + pen), None
        lift = []
        if self.jump is not None:
            shift, lift_state = jump_shift(self.jump, x.unsqueeze(1), feats, phi.unsqueeze(1), state[2 * n_layers + 1])
            out, lift = out + shift[:, 0], [lift_state]
        return out, tuple(new_state + pen + lift + [kappa, w]), Attention(phi=phi.unsqueeze(1), kappa=kappa.unsqueeze(1))


def build_model(config: ModelConfig) -> nn.Module:
    """The network ``config`` describes, freshly initialised."""
    if config.kind == "recognizer":
        from hwkit.recognizer import RecognizerNet

        return RecognizerNet(config)
    return PredictionNet(config) if config.kind == "prediction" else SynthesisNet(config)
