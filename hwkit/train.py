"""Train a prediction or synthesis network on a stroke store.

One loop, readable top to bottom (``train``): pick the device, build the data,
the model and the optimiser (or restore them from a checkpoint), then step
through epochs; after each epoch measure the validation loss on whole lines,
keep ``best.pt`` and ``last.pt`` in the run folder, and stop early when the
validation loss stops improving.

Decisions worth knowing:

- The objective is Graves' per-line loss: minus the log-likelihood summed over a
  line's points (nats per line), averaged over the lines of a batch. Progress and
  the train curve show nats per point, which is comparable across crop sizes.
- Resuming is exact: batch order and crop windows are pure functions of
  ``(seed, epoch)``, and a checkpoint records the epoch, how many batches of it
  were done, the optimiser and every random generator, so a resumed run takes
  the same steps an uninterrupted one would.
- A step whose loss or gradient is not finite is skipped (no update) and counted;
  ``max_bad_steps`` of them in a row stop training without touching the last good
  checkpoint.
- Ctrl-C (``KeyboardInterrupt``) saves ``last.pt`` at the current position, without
  validating, and raises ``TrainingInterrupted``; ``--resume`` then goes on from
  there exactly. An optimiser step and its counters are one unit: a Ctrl-C during
  it takes effect right after it.
- Under ``torchrun`` (``WORLD_SIZE`` > 1) the model runs as DistributedDataParallel
  (NCCL on GPU, gloo on CPU); each rank trains on a disjoint share of the batches,
  validation sums are all-reduced, and only rank 0 writes files or reports progress.
- ``bf16`` autocast and ``torch.compile`` are CUDA-only options, and each is
  kept only if it gives the fp32 eager loss on the first batch (``check_fast_paths``).

The library reports progress through a ``progress(event: dict)`` callback and
never prints; the CLI turns the events into a progress bar.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from hwkit import mdn
from hwkit.checkpoint import load_checkpoint, save_checkpoint
from hwkit.dataset import Batch, BucketBatchSampler, StrokeDataset, collate
from hwkit.errors import CheckpointError, TrainingError
from hwkit.models import ModelConfig, build_model
from hwkit.store import Store

Progress = Callable[[dict], None]

# Graves' clipping (sec. 4): a line's loss derivatives w.r.t. the LSTM layers are
# clipped to [-10, 10] and w.r.t. the network outputs to [-100, 100].
GRAVES_LSTM_CLIP = 10.0
GRAVES_OUTPUT_CLIP = 100.0
# The most a fast path may move the first batch's loss (nats per point) before
# it is turned off again: bf16 rounds every matmul, compile should be exact.
BF16_TOLERANCE = 0.05
COMPILE_TOLERANCE = 1e-3
# Seconds between redraws of the loss plot during a run (drawing takes about a
# second; it is always drawn at the end).
PLOT_EVERY = 60.0


@dataclass
class TrainConfig:
    """How to train (the network's shape lives in ``ModelConfig``); saved in every checkpoint."""

    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" | "rmsprop" (Graves' eqs. 38-41)
    clip: str = "norm"  # "graves" (LSTM [-10, 10], outputs [-100, 100]) | "norm" (global norm)
    max_norm: float = 100.0  # for clip="norm"; in nats per line
    epochs: int = 20
    max_steps: int | None = None  # stop after this many optimiser steps in all
    time_limit: float | None = None  # seconds of this invocation; None or 0: no limit
    crop: int | None = None  # prediction only: random windows of this many points
    patience: int | None = None  # epochs without a better valid loss before stopping
    seed: int = 0
    workers: int = 0  # DataLoader worker processes
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    bf16: bool = False  # CUDA only; checked against fp32
    compile: bool = False  # CUDA only; checked against eager
    log_every: int = 10  # steps between train records in metrics.jsonl
    max_bad_steps: int = 5  # non-finite steps in a row before giving up

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# Presets: model shape and training recipe together. ``crop`` applies to the
# prediction network only (synthesis needs whole lines to align with the text).
PRESETS: dict[str, dict] = {
    # seconds on a CPU: for tests and CI, not for pictures
    "tiny": {
        "model": {"hidden": 32, "layers": 1, "mixtures": 3, "window_mixtures": 2},
        "train": {"batch_size": 8, "lr": 3e-3, "epochs": 2, "crop": 64, "log_every": 5},
    },
    # 15 minutes on a CPU (the time limit; fewer if the epochs run out first) on the demo corpus
    "demo": {
        "model": {"hidden": 256, "layers": 2, "mixtures": 20, "window_mixtures": 10},
        "train": {"batch_size": 32, "lr": 2e-3, "epochs": 30, "time_limit": 900.0, "crop": 300, "patience": 3},
    },
    # the paper's sizes and optimiser (sec. 4.2 and 5); a GPU job
    "graves": {
        "model": {"hidden": 400, "layers": 3, "mixtures": 20, "window_mixtures": 10},
        "train": {
            "batch_size": 32,
            "optimizer": "rmsprop",
            "lr": 1e-4,
            "clip": "graves",
            "epochs": 100,
            "patience": 10,
        },
    },
}


def make_configs(
    kind: str, preset: str = "demo", *, alphabet_size: int = 0, **overrides
) -> tuple[ModelConfig, TrainConfig]:
    """A preset's configs with ``overrides`` applied (keys of either config; None means keep).

    A synthesis model needs ``alphabet_size``: ``len(store.alphabet)`` of the store it trains on.
    """
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"kind", "alphabet_size"}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - model_fields - train_fields
    if unknown:
        raise TypeError(f"unknown config fields: {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    model = {**PRESETS[preset]["model"], **{k: v for k, v in given.items() if k in model_fields}}
    recipe = dict(PRESETS[preset]["train"])
    if kind == "synthesis":
        if given.get("crop"):
            raise TrainingError("--crop applies to the prediction model only (synthesis reads whole lines)")
        recipe.pop("crop", None)
    recipe.update({k: v for k, v in given.items() if k in train_fields})
    return ModelConfig(kind=kind, alphabet_size=alphabet_size, **model), TrainConfig(**recipe)


@dataclass
class TrainResult:
    """What a finished run left behind and how it went."""

    run_dir: Path
    best_path: Path | None
    last_path: Path
    best_valid: float  # nats per line
    best_valid_per_point: float
    steps: int
    epochs: float  # epochs done, fractional when stopped mid-epoch
    seconds: float
    points_per_s: float
    stopped: str  # "epochs" | "max_steps" | "time_limit" | "patience"
    bad_steps: int
    metrics_path: Path
    plot_paths: list[Path]
    notes: list[str]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; ``last_path`` is where it was saved (None: nothing was saved).

    A ``KeyboardInterrupt``, so callers that do not look for it still stop as on any Ctrl-C.
    """

    def __init__(self, step: int | None, run_dir: Path, last_path: Path | None):
        super().__init__(f"interrupted at step {step}" if step is not None else "interrupted")
        self.step, self.run_dir, self.last_path = step, run_dir, last_path


# -- the loop -----------------------------------------------------------------------


def train(
    store_path: str | os.PathLike,
    model_config: ModelConfig,
    config: TrainConfig,
    *,
    run_dir: str | os.PathLike,
    resume: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model_config`` on the store at ``store_path``; write the run into ``run_dir``.

    With ``resume`` (a checkpoint file) the model, optimiser, position and random
    state come from the checkpoint and training continues where it stopped;
    ``model_config`` must then match the checkpoint's.
    """
    started = time.monotonic()
    run_dir = Path(run_dir)
    rank, world, local_rank, own_group = _init_distributed(config.device)
    is_main = rank == 0
    emit = progress if (progress is not None and is_main) else (lambda event: None)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        emit({"event": "note", "text": text})

    finished = False
    try:
        if config.clip not in ("graves", "norm"):
            raise TrainingError(f"unknown clip {config.clip!r} (choose graves or norm)")
        device = _pick_device(config.device, local_rank if world > 1 else None)
        store = Store(store_path)
        if model_config.kind == "synthesis" and model_config.alphabet_size != len(store.alphabet):
            raise TrainingError(
                f"{store.path}: the store's alphabet has {len(store.alphabet)} codes, "
                f"the model expects {model_config.alphabet_size}"
            )
        crop = config.crop if model_config.kind == "prediction" else None
        train_set = StrokeDataset(store, "train", in_memory=True, crop=crop, seed=config.seed)
        valid_set = StrokeDataset(store, "valid", in_memory=True)
        sampler = BucketBatchSampler(
            train_set.lengths, config.batch_size, seed=config.seed, num_replicas=world, rank=rank
        )
        if len(train_set) < world or len(valid_set) < world:
            raise TrainingError(f"{store.path}: too few train or valid lines for {world} processes")

        _seed_everything(config.seed)
        model = build_model(model_config).to(device)
        optimizer = make_optimizer(model, config)
        state = {"step": 0, "epoch": 0, "epoch_step": 0, "stale_epochs": 0, "best_valid": math.inf, "metrics": []}
        if resume is not None:
            ckpt = load_checkpoint(resume, map_location=device)
            _check_resumable(ckpt, model_config, store)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state.update({k: ckpt[k] for k in state})
            _set_rng_state(ckpt["rng"])
            done = state["epoch"] + state["epoch_step"] / len(sampler)  # epochs done, as the valid lines count
            note(f"resumed from {resume} at step {state['step']} (epoch {done:.2f})")
            if state["epoch"] >= config.epochs:
                note(f"the run has done its {config.epochs} epochs already; pass a larger --epochs to go on")

        metrics_path = run_dir / "metrics.jsonl"
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _rewrite_metrics(metrics_path, state["metrics"])

        net, use_bf16 = model, False
        if config.bf16 or config.compile:
            first = collate([train_set[i] for i in next(iter(sampler))]).to(device)
            net, use_bf16, fast_notes = check_fast_paths(
                model, first, bf16=config.bf16, compile=config.compile, world=world
            )
            for text in fast_notes:
                note(text)
        if world > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )

        def payload() -> dict:
            return {
                "model_config": model_config.to_dict(),
                "train_config": config.to_dict(),
                "alphabet": store.alphabet.chars,
                "stats": {"mean": store.mean.tolist(), "std": store.std.tolist()},
                "store": {"path": str(store.path), "fingerprint": store.fingerprint, "source": store.source},
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": None,
                **{k: state[k] for k in ("step", "epoch", "epoch_step", "stale_epochs", "best_valid")},
                "rng": _rng_state(),
                "metrics": state["metrics"],
            }

        def record(entry: dict) -> None:
            state["metrics"].append(entry)
            if is_main:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")

        batches_per_epoch = len(sampler)
        total = (config.epochs - state["epoch"]) * batches_per_epoch - state["epoch_step"]
        if config.max_steps is not None:
            total = min(total, max(config.max_steps - state["step"], 0))
        emit({
            "event": "start",
            "run_dir": str(run_dir),
            "total_steps": max(total, 0),
            "params": sum(p.numel() for p in model.parameters()),
            "device": str(device),
            "world": world,
            "train_lines": len(train_set),
            "valid_lines": len(valid_set),
        })

        best_path, last_path = run_dir / "best.pt", run_dir / "last.pt"
        bad_in_row = 0
        bad_total = sum(1 for m in state["metrics"] if m.get("kind") == "bad_step")
        train_points, train_seconds = 0, 0.0
        window_points, window_nats, window_start = 0, 0.0, time.monotonic()
        stopped = "epochs"
        out_of_time = False
        # a run resumed at a step it validated at (it stopped by max_steps or time) does not validate again
        last_valid_step = max((m["step"] for m in state["metrics"] if m.get("kind") == "valid"), default=-1)
        plotted = [time.monotonic()]  # when the loss plot was last drawn (it is always drawn at the end)

        def validate_and_save() -> bool:
            """Validate, write best/last; True when patience ran out."""
            nonlocal last_valid_step
            per_line, per_point = evaluate(model, valid_set, config.batch_size, device, world, rank)
            with _sigint_deferred():  # the record, best.pt and last.pt agree
                improved = per_line < state["best_valid"]
                if improved:
                    state["best_valid"], state["stale_epochs"] = per_line, 0
                else:
                    state["stale_epochs"] += 1
                entry = {
                    "kind": "valid",
                    "step": state["step"],
                    "epoch": state["epoch"] + state["epoch_step"] / batches_per_epoch,
                    "nats_per_line": per_line,
                    "nats_per_point": per_point,
                    "best": improved,
                }
                record(entry)
                if is_main:
                    if improved:
                        save_checkpoint(best_path, payload())
                    save_checkpoint(last_path, payload())
                last_valid_step = state["step"]
            if is_main and time.monotonic() - plotted[0] >= PLOT_EVERY:
                _plot(state["metrics"], run_dir, note)
                plotted[0] = time.monotonic()
            emit({"event": "valid", **entry})
            return config.patience is not None and state["stale_epochs"] >= config.patience

        try:
            while state["epoch"] < config.epochs and stopped == "epochs":
                sampler.set_epoch(state["epoch"])
                train_set.set_epoch(state["epoch"])
                batches = list(sampler)[state["epoch_step"] :]  # a resumed epoch skips what it did
                data = torch.utils.data.DataLoader(
                    train_set,
                    batch_sampler=batches,
                    collate_fn=collate,
                    num_workers=config.workers,
                    pin_memory=device.type == "cuda",
                )
                net.train()
                for batch in data:
                    if config.max_steps is not None and state["step"] >= config.max_steps:
                        stopped = "max_steps"
                    if out_of_time:
                        stopped = "time_limit"
                    if stopped != "epochs":
                        break
                    t0 = time.monotonic()
                    batch = batch.to(device)
                    optimizer.zero_grad(set_to_none=True)
                    nll, grad_norm = _backward(net, model, batch, config, use_bf16)
                    nats, lines, points = float(nll.sum()), len(nll), int(batch.point_mask[:, 1:].sum())
                    bad = not (math.isfinite(nats) and math.isfinite(grad_norm))
                    out_of_time = bool(config.time_limit) and time.monotonic() - started >= config.time_limit
                    if world > 1:  # every rank must take the same decisions
                        bad, out_of_time = _agree(device, bad, out_of_time)
                    with _sigint_deferred():  # a step and its counters are one unit for Ctrl-C
                        state["epoch_step"] += 1
                        if bad:
                            bad_in_row += 1
                            bad_total += 1
                            record({
                                "kind": "bad_step", "step": state["step"], "epoch": state["epoch"], "loss": nats / lines
                            })  # fmt: skip
                            if bad_in_row >= config.max_bad_steps:
                                kept = f"; {best_path} is the last good checkpoint" if best_path.exists() else ""
                                raise TrainingError(
                                    f"loss or gradient was not finite for {bad_in_row} steps in a row "
                                    f"(at step {state['step']}); stopped{kept}. Try a lower --lr or --clip graves"
                                )
                            continue
                        optimizer.step()
                        bad_in_row = 0
                        state["step"] += 1
                    seconds = time.monotonic() - t0
                    train_points += points
                    train_seconds += seconds
                    window_points += points
                    window_nats += nats
                    emit({
                        "event": "step",
                        "step": state["step"],
                        "epoch": state["epoch"],
                        "loss": nats / max(points, 1),
                        "points_per_s": points * world / max(seconds, 1e-9),
                    })  # fmt: skip
                    if state["step"] % config.log_every == 0:
                        now = time.monotonic()
                        record({
                            "kind": "train",
                            "step": state["step"],
                            "epoch": state["epoch"] + state["epoch_step"] / batches_per_epoch,
                            "nats_per_point": window_nats / max(window_points, 1),
                            "grad_norm": grad_norm,
                            "lr": optimizer.param_groups[0]["lr"],
                            "points_per_s": window_points * world / max(now - window_start, 1e-9),
                            "bad_steps": bad_total,
                        })  # fmt: skip
                        window_points, window_nats, window_start = 0, 0.0, now
                else:
                    with _sigint_deferred():
                        state["epoch"] += 1
                        state["epoch_step"] = 0
                    if validate_and_save():
                        stopped = "patience"
            if stopped in ("max_steps", "time_limit") and last_valid_step != state["step"]:
                validate_and_save()
        except KeyboardInterrupt:  # Ctrl-C: keep the position, skip validation (no collectives: ranks differ)
            if is_main:
                with _sigint_deferred(reraise=False):  # a second Ctrl-C must not cut the save short
                    save_checkpoint(last_path, payload())
                    _rewrite_metrics(metrics_path, state["metrics"])  # drops a record cut mid-write
                try:
                    _plot(state["metrics"], run_dir, note)
                except KeyboardInterrupt:  # impatient: the plot is drawn again on resume
                    pass
            raise TrainingInterrupted(state["step"], run_dir, last_path if is_main else None) from None

        if is_main:
            _plot(state["metrics"], run_dir, note)
        if world > 1:  # throughput of all ranks together
            summed = torch.tensor([float(train_points)], dtype=torch.float64, device=device)
            dist.all_reduce(summed)
            train_points = int(summed.item())
        elapsed = time.monotonic() - started
        emit({"event": "end", "stopped": stopped})
        finished = True
        return TrainResult(
            run_dir=run_dir,
            best_path=best_path if best_path.exists() else None,
            last_path=last_path,
            best_valid=state["best_valid"],
            best_valid_per_point=_best_per_point(state["metrics"]),
            steps=state["step"],
            epochs=state["epoch"] + state["epoch_step"] / batches_per_epoch,
            seconds=elapsed,
            points_per_s=train_points / max(train_seconds, 1e-9),
            stopped=stopped,
            bad_steps=bad_total,
            metrics_path=metrics_path,
            plot_paths=[run_dir / "loss.png", run_dir / "loss.svg"],
            notes=notes,
        )
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:  # before the first step: nothing new to save
        raise TrainingInterrupted(None, run_dir, None) from None
    finally:
        if own_group:
            if finished:  # leave together: gloo aborts a rank whose peer hangs up mid-teardown
                dist.barrier()
            dist.destroy_process_group()


def forward(net: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The network's raw outputs ``(B, T-1, 1 + 6M)`` for a batch: read offsets up to T-1, predict from 1."""
    x = batch.offsets[:, :-1]
    if _bare(net).config.kind == "synthesis":
        out, _, _ = net(x, batch.chars, batch.char_mask)
    else:
        out, _ = net(x)
    return out


def batch_nll(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Nats per line ``(B,)`` of a batch's targets under the network outputs (mixture maths in fp32)."""
    return mdn.sequence_nll(mdn.split_params(out.float()), batch.offsets[:, 1:], batch.point_mask[:, 1:])


def _backward(
    net: torch.nn.Module, model: torch.nn.Module, batch: Batch, config: TrainConfig, bf16: bool
) -> tuple[torch.Tensor, float]:
    """Forward and backward one batch; return its nats per line (detached) and the gradient norm."""
    if config.clip == "graves":
        # the hooks clamp the gradient of the batch mean; a line's own derivative is that times the line count
        lines = len(batch.line_ids)
        model.clip_hooks(GRAVES_LSTM_CLIP / lines, GRAVES_OUTPUT_CLIP / lines)
    with torch.autocast(batch.offsets.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = forward(net, batch)
    nll = batch_nll(out, batch)
    nll.mean().backward()
    return nll.detach(), clip_gradients(model, config)


def _agree(device: torch.device, *flags: bool) -> tuple[bool, ...]:
    """Each flag set on any rank is set on all of them."""
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: StrokeDataset,
    batch_size: int,
    device: torch.device,
    world: int = 1,
    rank: int = 0,
) -> tuple[float, float]:
    """Validation loss on whole lines: (nats per line, nats per point), summed over all ranks."""
    was_training = model.training
    model.eval()
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False, num_replicas=world, rank=rank)
    nats, lines, points = 0.0, 0, 0
    for batch in torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate):
        batch = batch.to(device)
        nll = batch_nll(forward(model, batch), batch)
        nats, lines, points = nats + float(nll.sum()), lines + len(nll), points + int(batch.point_mask[:, 1:].sum())
    model.train(was_training)
    if world > 1:
        totals = torch.tensor([nats, lines, points], dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        nats, lines, points = totals.tolist()
    return nats / max(lines, 1), nats / max(points, 1)


# -- optimiser and clipping -----------------------------------------------------------


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or Graves' RMSProp (eqs. 38-41: centred, decay 0.95, momentum 0.9).

    Graves adds his 1e-4 inside the square root; torch adds ``eps`` after it, so
    ``eps = sqrt(1e-4) = 1e-2`` gives the same floor on the denominator.
    """
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            model.parameters(), lr=config.lr, alpha=0.95, eps=1e-2, momentum=0.9, centered=True
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    raise TrainingError(f"unknown optimizer {config.optimizer!r} (choose adam or rmsprop)")


def clip_gradients(model: torch.nn.Module, config: TrainConfig) -> float:
    """Clip parameter gradients as ``config.clip`` says; return their norm before clipping.

    ``norm`` rescales all gradients to a global norm of at most ``max_norm``.
    ``graves`` leaves them be: its clamps (LSTM +-10, outputs +-100 per line)
    act during backward through ``model.clip_hooks``, set before each forward.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if config.clip == "norm":
        return float(torch.nn.utils.clip_grad_norm_(params, config.max_norm))
    return float(torch.nn.utils.get_total_norm([p.grad for p in params]))


# -- fast paths (CUDA) --------------------------------------------------------------


def check_fast_paths(
    model: torch.nn.Module, batch: Batch, *, bf16: bool, compile: bool, world: int = 1
) -> tuple[torch.nn.Module, bool, list[str]]:
    """Decide on ``torch.compile`` and bf16 autocast by comparing losses on ``batch``.

    Returns ``(module to train with, use bf16, notes)``. Each option is kept only
    when it gives the fp32 eager loss within tolerance on the same batch; on a
    CPU both are refused (bf16 LSTMs are slower there, and compile buys little).
    Under DDP the ranks agree: an option stays only if it passed on every rank.
    """
    device = batch.offsets.device
    notes: list[str] = []
    if (bf16 or compile) and device.type != "cuda":
        notes.append("--bf16 and --compile apply on CUDA only; training in fp32 eager mode")
        return model, False, notes
    net, ok = model, [True, True]
    if bf16 or compile:
        reference = _loss_per_point(model, batch, bf16=False)
        if compile:
            try:
                compiled = torch.compile(model)
                got = _loss_per_point(compiled, batch, bf16=False)
                ok[0] = abs(got - reference) <= COMPILE_TOLERANCE * max(1.0, abs(reference))
                if ok[0]:
                    net = compiled
                else:
                    notes.append(
                        f"--compile moved the loss from {reference:.4f} to {got:.4f} nats/point; running eagerly"
                    )
            except Exception as exc:  # any compiler failure means: run eagerly
                ok[0] = False
                notes.append(f"--compile failed ({type(exc).__name__}); running eagerly")
        if bf16:
            try:
                got = _loss_per_point(net, batch, bf16=True)
                ok[1] = abs(got - reference) <= BF16_TOLERANCE
                if not ok[1]:
                    notes.append(f"--bf16 moved the loss from {reference:.4f} to {got:.4f} nats/point; using fp32")
            except RuntimeError as exc:  # an op without a bf16 kernel: stay in fp32
                ok[1] = False
                notes.append(f"--bf16 failed ({type(exc).__name__}); using fp32")
    if world > 1:
        agreed = torch.tensor([float(ok[0]), float(ok[1])], device=device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        ok = [bool(agreed[0]), bool(agreed[1])]
        if not ok[0]:
            net = model
    return net, bf16 and ok[1], notes


@torch.no_grad()
def _loss_per_point(net: torch.nn.Module, batch: Batch, *, bf16: bool) -> float:
    with torch.autocast(batch.offsets.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = forward(net, batch)
    return float(batch_nll(out, batch).sum() / batch.point_mask[:, 1:].sum())


@contextmanager
def _sigint_deferred(reraise: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block is done, then raise it (or drop it).

    Only where Python's default handler is in place and only on the main thread
    (elsewhere signals cannot be caught, and a custom handler is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught and reraise:
        raise KeyboardInterrupt


# -- devices, processes, random state -----------------------------------------------------


def _init_distributed(device: str) -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether we created the process group) from torchrun's env vars."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1 or dist.is_initialized():
        return rank, world, local_rank, False
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, local_rank, True


def _pick_device(name: str, local_rank: int | None) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise TrainingError(f"unknown device {name!r} (choose auto, cpu or cuda)")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available (torch sees none)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank or 0)


def _bare(net: torch.nn.Module) -> torch.nn.Module:
    """The model under DDP and torch.compile wrappers."""
    while True:
        if isinstance(net, torch.nn.parallel.DistributedDataParallel):
            net = net.module
        elif hasattr(net, "_orig_mod"):  # torch.compile's wrapper
            net = net._orig_mod
        else:
            return net


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    """Every generator's state as weights_only-safe values (tensors and lists)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }


def _set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _check_resumable(ckpt: dict, model_config: ModelConfig, store: Store) -> None:
    where = ckpt.get("loaded_from", "checkpoint")
    if ckpt["model_config"] != model_config.to_dict():
        raise CheckpointError(f"{where}: model config differs from the requested one; resume without shape flags")
    if ckpt.get("store", {}).get("fingerprint") != store.fingerprint:
        raise CheckpointError(f"{where}: was trained on a different store than {store.path}")
    if "optimizer" not in ckpt or "rng" not in ckpt:
        raise CheckpointError(f"{where}: holds no training state to resume from")


# -- files ------------------------------------------------------------------------------


def _rewrite_metrics(path: Path, metrics: list[dict]) -> None:
    """Start metrics.jsonl afresh from what the checkpoint knows (drops lines past a resume point)."""
    with open(path, "w") as f:
        for entry in metrics:
            f.write(json.dumps(entry) + "\n")


def _plot(metrics: list[dict], run_dir: Path, note: Callable[[str], None]) -> None:
    from hwkit.plots import plot_losses

    try:
        plot_losses(metrics, run_dir / "loss")
    except (ImportError, OSError) as exc:  # a missing plot must never stop training
        note(f"could not draw the loss plot ({type(exc).__name__}: {exc})")


def _best_per_point(metrics: list[dict]) -> float:
    best = [m for m in metrics if m.get("kind") == "valid" and m.get("best")]
    return best[-1]["nats_per_point"] if best else math.nan
