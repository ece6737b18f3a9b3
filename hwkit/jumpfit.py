"""Fit a synthesis model's jump table (``models.jump_rows``) with the rest of the network frozen.

The table (and its word table, if asked for) acts only at air moves, and it reads
only what the frozen network computes without it (the window's peak, the lifts
since it came, the stroke context, the word before a space). So the frozen
network's outputs at the air moves of a store's lines
are computed once, in one pass without gradients, and the table is fitted to
them alone: about 10 minutes on one CPU thread for 19,200 lines, where training
the whole network on the CPU for that long does not move its capitals
(BENCHMARKS.md, quality). The epoch kept is the one with the lowest loss on the
valid split's air moves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from hwkit import mdn
from hwkit.checkpoint import Checkpoint
from hwkit.dataset import BucketBatchSampler, StrokeDataset, collate
from hwkit.errors import OptionError, StoreError
from hwkit.finetune import load_grown
from hwkit.models import build_model, jump_rows, jump_values, stroke_context
from hwkit.progress import Progress, ignore
from hwkit.store import Store
from hwkit.train import batch_nll


@dataclass
class AirMoves:
    """The frozen network at every air move on the text of some lines, and the lines' own loss."""

    out: torch.Tensor  # (N, 1 + 6M) the mixture outputs without the table
    rows: torch.Tensor  # (N,) table rows
    inputs: torch.Tensor  # (N, C[+A]) jump_rows' inputs: stroke context, a 1, any window pen, any word's letters
    target: torch.Tensor  # (N, 3) the move
    nats: float  # the lines' summed loss over all their points, without the table
    lines: int

    def nll(self, weights: list[torch.Tensor], at: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Nats per air move with ``weights`` (the jump table, then any word table) added, ``(N,)`` (or those
        ``at``)."""
        table, word = weights[0], weights[1] if len(weights) > 1 else None
        out = self.out[at] + jump_values(table, self.rows[at], self.inputs[at], word)
        return -mdn.log_likelihood(mdn.split_params(out), self.target[at])


@dataclass
class JumpFit:
    checkpoint: Checkpoint
    valid_before: float  # nats per air move on the valid split: without a table, with the one it started from,
    valid_start: float  # and with the one fitted
    valid_after: float
    valid_nats_per_line: float  # whole valid lines, with the table (as training reports it)
    train_moves: int
    epoch: int  # the one kept, from 1 (0: none beat the table it started from)


@torch.no_grad()
def air_moves(model: torch.nn.Module, data: StrokeDataset, lines: int | None = None, batch_size: int = 32,
              progress: Progress = ignore) -> AirMoves:  # fmt: skip
    """Teacher-force ``model`` over the first ``lines`` of ``data`` (all by default) and keep what the jump
    table needs at each air move."""
    parts: dict[str, list[torch.Tensor]] = {"out": [], "rows": [], "inputs": [], "target": []}
    nats, done = 0.0, 0
    lengths = data.lengths[:lines]
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=False)
    for indices in sampler:
        batch = collate([data[i] for i in indices])
        x, target = batch.offsets[:, :-1], batch.offsets[:, 1:]
        out, _, attention = model(x, batch.chars, batch.char_mask)
        nats += float(batch_nll(out, batch).sum())
        feats, _ = stroke_context(x, model.pen_origin)
        acts, rows, inputs, _ = jump_rows(model.jumps(batch.chars, batch.char_mask), x, feats, attention.phi, None)
        where = (acts & batch.point_mask[:, 1:].bool()).nonzero(as_tuple=True)  # padding never lifts; be sure
        for key, value in zip(parts, (out, rows, inputs, target)):
            parts[key].append(value[where])
        done += len(indices)
        progress({"event": "lines", "split": data.split, "done": done, "total": len(lengths)})
    return AirMoves(*(torch.cat(v) for v in parts.values()), nats=nats, lines=len(lengths))


def fit_jump_table(
    init: Checkpoint,
    store: Store | str,
    *,
    lines: int | None = None,
    word_table: bool = False,
    window_pen: bool = False,
    keep_table: bool = False,
    epochs: int = 20,
    lr: float = 0.01,
    batch_size: int = 8192,
    seed: int = 0,
    progress: Progress = ignore,
) -> JumpFit:
    """``init`` with a jump table fitted on ``store``'s train lines (the first ``lines``; all by default).

    ``init`` must be a synthesis model with the stroke context; a table it already
    has is where the fit starts. ``word_table`` fits one too (as does a model that
    has one); ``window_pen`` lets the tables read the pen's move since the window's
    character (new weights, from zero); ``keep_table`` fits the word table alone,
    the jump table left as ``init`` has it. Adam over the air moves for
    ``epochs`` passes, the rate falling linearly to zero.
    """
    config = init.model_config
    word_table, window_pen = word_table or config.word_table, window_pen or config.window_pen
    if lines is not None and lines < 1:
        raise OptionError("lines", f"fits on at least 1 train line, got {lines}")
    if keep_table and not word_table:
        raise OptionError("keep_table", "fits the word table alone: add word_table")
    if config.kind != "synthesis" or not config.stroke_context:
        raise OptionError("init", f"{init.name}: a jump table needs a synthesis model with the stroke context")
    model = build_model(dataclasses.replace(config, jump_table=True, word_table=word_table, window_pen=window_pen))
    load_grown(model, init)
    if word_table:
        model.set_alphabet(init.alphabet)
    model.eval().requires_grad_(False)
    train_set = StrokeDataset(store, "train", in_memory=True, alphabet=init.alphabet, stats=init.stats)
    valid_set = StrokeDataset(train_set.store, "valid", in_memory=True, alphabet=init.alphabet, stats=init.stats)
    weights = [model.jump.detach().clone()] + ([model.jump_word.detach().clone()] if word_table else [])
    for w in weights[int(keep_table) :]:
        w.requires_grad_(True)
    model.jump.zero_()  # the frozen network's own outputs
    if word_table:
        model.jump_word.zero_()
    train = air_moves(model, train_set, lines, progress=progress)
    valid = air_moves(model, valid_set, progress=progress)
    for split, moves in (("train", train), ("valid", valid)):
        if not len(moves.target):
            raise StoreError(f"{train_set.store.path}: the {split} lines hold no air moves to fit a jump table to")

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(weights[int(keep_table) :], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1 - epoch / epochs)
    with torch.no_grad():
        zeros = [torch.zeros_like(w) for w in weights]
        before = float(valid.nll(zeros).mean())
        start_score = float(valid.nll(weights).mean())
        best, best_weights, best_epoch = start_score, [w.detach().clone() for w in weights], 0
    n = len(train.target)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        for at in order.split(batch_size):
            loss = train.nll(weights, at).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        with torch.no_grad():
            score = float(valid.nll(weights).mean())
        if score < best:
            best, best_weights, best_epoch = score, [w.detach().clone() for w in weights], epoch
        progress({"event": "epoch", "done": epoch, "total": epochs, "valid": score})

    with torch.no_grad():
        change = float((valid.nll(best_weights) - valid.nll(zeros)).sum())
    slim = init.weights_only()
    record = {"kind": "jump_table", "train_moves": n, "epoch": best_epoch, "valid_nats_per_move": best,
              "valid_nats_per_move_before": before}  # fmt: skip
    fitted = dataclasses.replace(
        slim,
        model_config=model.config,
        weights={**model.state_dict(), **dict(zip(("jump", "jump_word"), best_weights))},
        best_valid=(valid.nats + change) / valid.lines,
        store=train_set.store.reference(),
        metrics=[*slim.metrics, record],
        init_from={"path": init.name, "weights_sha256": init.weights_sha256(), "store": init.store},
        path=None,
    )
    return JumpFit(fitted, before, start_score, best, fitted.best_valid, n, best_epoch)
