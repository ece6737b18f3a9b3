"""Online handwriting recognition: a bidirectional LSTM read out by CTC (Graves et al. 2009).

The recogniser reads the same normalised ``(dx, dy, pen_up)`` offsets as the
synthesis models and emits, per frame, a distribution over the store's alphabet
with code 0 (the padding code) doubling as the CTC blank, so the alphabet needs
no extra symbol and ``Alphabet.decode`` drops blanks for free.

A character takes ~25 points, far more than CTC needs, so ``subsample``
consecutive points are stacked into one frame before the LSTM: the recurrence
runs ``subsample`` times fewer steps (the cost that dominates on a CPU) and
loses nothing, since the stacked frame still holds every offset. At the default
of 5 the demo store's fastest line still has 2.5 times the frames its text
needs (a character, plus a blank between repeats).

The backward direction reads each line reversed *within its own length*, so it
starts at the line's last frame, never at the batch's padding. That is done by
index reversal rather than ``pack_padded_sequence``: on the CPU the backward
pass through a packed LSTM is about 6x slower than through a padded one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BLANK = 0  # = hwkit.alphabet.PAD
FEATURES = 3  # dx, dy, pen_up per point


class RecognizerNet(nn.Module):
    """``config`` (a ``ModelConfig`` of kind recognizer) gives ``hidden``, ``layers``,
    ``alphabet_size`` (= ``len(Alphabet)``) and ``subsample`` (pen points per frame)."""

    def __init__(self, config):
        super().__init__()
        if getattr(config, "kind", "recognizer") != "recognizer":
            raise ValueError(f"RecognizerNet needs a 'recognizer' config, got kind {config.kind!r}")
        if config.alphabet_size < 2:
            raise ValueError("a recognizer needs alphabet_size >= 2 (the blank plus characters)")
        self.config = config
        self.subsample = int(config.subsample)
        if self.subsample < 1:
            raise ValueError(f"subsample must be at least 1, got {self.subsample}")
        h = config.hidden
        sizes = [FEATURES * self.subsample] + [2 * h] * (config.layers - 1)
        self.forward_lstms = nn.ModuleList(nn.LSTM(n, h, batch_first=True) for n in sizes)
        self.backward_lstms = nn.ModuleList(nn.LSTM(n, h, batch_first=True) for n in sizes)
        self.head = nn.Linear(2 * config.hidden, config.alphabet_size)

    def forward(self, offsets: Tensor, point_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, T, 3)`` offsets -> ``(B, T', A)`` log-probabilities and ``(B,)`` frame counts.

        ``T' = ceil(T / subsample)``; frames past a line's count are padding and
        hold whatever the head makes of zeros: callers go by ``frame_lengths``.
        Every line needs at least one point.
        """
        k = self.subsample
        b, t, _ = offsets.shape
        lengths = point_mask.sum(1)
        x = offsets * point_mask.unsqueeze(-1).to(offsets.dtype)  # a frame straddling the end sees zeros, not junk
        x = F.pad(x, (0, 0, 0, -t % k)).reshape(b, -(-t // k), FEATURES * k)
        frame_lengths = torch.div(lengths + k - 1, k, rounding_mode="floor").long()
        # frame t of line b <-> frame n_b - 1 - t; padding frames stay put (the map is its own inverse)
        steps = torch.arange(x.shape[1], device=x.device)
        flip = torch.where(steps < frame_lengths[:, None], frame_lengths[:, None] - 1 - steps, steps)
        rows = torch.arange(b, device=x.device)[:, None]
        for ahead, back in zip(self.forward_lstms, self.backward_lstms):
            x = torch.cat([ahead(x)[0], back(x[rows, flip])[0][rows, flip]], -1)
        return self.head(x).log_softmax(-1), frame_lengths


def ctc_nll(log_probs: Tensor, frame_lengths: Tensor, chars: Tensor, char_mask: Tensor) -> Tensor:
    """CTC negative log-likelihood of each line's text, ``(B,)`` nats.

    A text that cannot fit its frames (too many characters and repeats) has
    infinite loss; it is zeroed (``zero_infinity``) so one such line cannot turn
    a batch's gradient into NaN. Computed in at least float32 precision, so a
    bfloat16 model's loss does not lose the long sums over paths.
    """
    return F.ctc_loss(
        log_probs.transpose(0, 1).to(torch.promote_types(log_probs.dtype, torch.float32)),
        chars,
        frame_lengths,
        char_mask.sum(1),
        blank=BLANK,
        reduction="none",
        zero_infinity=True,
    )


def greedy_decode(log_probs: Tensor, frame_lengths: Tensor) -> list[list[int]]:
    """Best-path decoding: the likeliest code per frame, repeats merged, blanks dropped.

    Not the likeliest *text* (that sums over paths), but within a hair of it once a
    CTC model is trained, and far cheaper than a beam search.
    """
    best = log_probs.argmax(-1).cpu()
    out = []
    for path, n in zip(best.tolist(), frame_lengths.tolist()):
        path = path[:n]
        out.append([c for i, c in enumerate(path) if c != BLANK and (i == 0 or c != path[i - 1])])
    return out
