"""Train a prediction or synthesis network on a stroke store.

One loop, readable top to bottom (``train``): pick the device, build the data,
the model and the optimiser (or restore them from a checkpoint), then step
through epochs; after each epoch measure the validation loss on whole lines,
keep ``best.pt`` and ``last.pt`` in the run folder, and stop early when the
validation loss stops improving. The loop's bookkeeping (position, metrics,
checkpoints, throughput) lives in ``_Run``; processes and devices in
``hwkit.distributed``; random state and Ctrl-C deferral in ``hwkit.runstate``.

Decisions worth knowing:

- The objective is Graves' per-line loss: minus the log-likelihood summed over a
  line's points (nats per line), averaged over the lines of a batch. Progress and
  the train curve show nats per point, which is comparable across crop sizes.
- Resuming is exact: batch order and crop windows are pure functions of
  ``(seed, epoch)``, and a checkpoint records the epoch, how many batches of it
  were done, the optimiser and every random generator, so a resumed run takes
  the same steps an uninterrupted one would (unless it is given a new learning
  rate, the one optimiser setting a resume may change).
- A step whose loss or gradient is not finite is skipped (no update) and counted;
  ``max_bad_steps`` of them in a row stop training without touching the last good
  checkpoint.
- Ctrl-C (``KeyboardInterrupt``) saves ``last.pt`` at the current position, without
  validating, and raises ``TrainingInterrupted``; ``--resume`` then goes on from
  there exactly. An optimiser step and its counters are one unit: a Ctrl-C during
  it takes effect right after it. A SIGTERM (inside ``runstate.sigterm_requests_stop``,
  as ``hwkit train`` runs) does the same at the end of the current step, at the
  same step on every rank.
- Under ``torchrun`` (``WORLD_SIZE`` > 1) the model runs as DistributedDataParallel
  (NCCL on GPU, gloo on CPU); each rank trains on a disjoint share of the batches,
  validation sums are all-reduced, and only rank 0 writes files or reports progress.
- ``bf16`` autocast and ``torch.compile`` are CUDA-only options, and each is
  kept only if it gives the fp32 eager loss on the first batch (``check_fast_paths``).

The library reports progress through ``progress(event: dict)`` (``hwkit.progress``)
and never prints; the CLI turns the events into a progress bar.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from hwkit import distributed, mdn
from hwkit.alphabet import Alphabet
from hwkit.cer import edit_distance
from hwkit.checkpoint import Checkpoint, ResumeState, find_checkpoint, find_store
from hwkit.config import (
    MODEL_SHAPE,
    ModelConfig,
    TrainConfig,
    check_device_options,
    check_options,
    fixed_fields,
    make_configs,
)
from hwkit.dataset import Batch, BucketBatchSampler, StrokeDataset, collate
from hwkit.errors import (
    CheckpointError,
    HwkitError,
    NothingToDo,
    OptionError,
    TrainingError,
)
from hwkit.files import owned
from hwkit.finetune import fit_alphabet, load_grown
from hwkit.models import build_model
from hwkit.paths import MODELS_DIR, default_store, timestamp
from hwkit.progress import Progress
from hwkit.recognizer import ctc_nll, greedy_decode
from hwkit.runstate import (
    rng_state,
    seed_everything,
    set_rng_state,
    sigint_deferred,
    stop_requested,
)
from hwkit.store import Store

# Graves' clipping (sec. 4): a line's loss derivatives w.r.t. the LSTM layers are
# clipped to [-10, 10] and w.r.t. the network outputs to [-100, 100].
GRAVES_LSTM_CLIP = 10.0
GRAVES_OUTPUT_CLIP = 100.0
# The most a fast path may move the first batch's loss (nats per point) before
# it is turned off again: bf16 rounds every matmul, compile should be exact.
BF16_TOLERANCE = 0.05
COMPILE_TOLERANCE = 1e-3
# Epochs in a row without a better valid loss before ``lr_decay`` lowers the learning rate
# (one such epoch is often noise; two rarely are).
LR_DECAY_AFTER = 2
# Stores up to this size are read into memory once (fastest); bigger ones are read line by line from
# disk (``--workers`` hide the cost), so memory does not grow with the corpus.
IN_MEMORY_BYTES = 4 << 30
POINT_BYTES = 12  # float32 dx, dy, pen_up
# Seconds between redraws of the loss plot during a run (drawing takes about a
# second; it is always drawn at the end).
PLOT_EVERY = 60.0


def _own_run_folder(held: contextlib.ExitStack, run_dir, rank: int, world: int, device: torch.device) -> None:
    """Rank 0 takes the run folder's lock (a second run into it would interleave both); under DDP every
    rank learns whether it got it, so that a refused run ends on all ranks instead of leaving the
    others waiting at their first collective until the backend's timeout."""
    refused = None
    if rank == 0:
        try:
            held.enter_context(owned(run_dir, "hwkit train"))
        except HwkitError as exc:
            refused = exc
    if world > 1:
        (any_refused,) = distributed.any_rank(world, device, refused is not None)
        if any_refused and refused is None:
            raise TrainingError(f"{run_dir}: rank 0 could not take the run folder (its message says why)")
    if refused is not None:
        raise refused


@dataclass
class TrainResult:
    """What a finished run left behind and how it went."""

    run_dir: Path
    kind: str  # the model trained: prediction, synthesis or recognizer
    best_path: Path | None
    last_path: Path
    best_valid: float  # nats per line
    best_valid_per_point: float
    best_valid_cer: float | None  # recognizer: character error rate at the best valid loss
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
    """Training stopped by Ctrl-C or SIGTERM; ``last_path`` is where it was saved (None: nothing was saved).

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
    resume: Checkpoint | None = None,
    init_from: Checkpoint | None = None,
    alphabet: Alphabet | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model_config`` on the store at ``store_path``; write the run into ``run_dir``.

    The loop itself; ``start`` and ``resume`` are the calls that pick configs,
    stores and folders. With ``resume`` the model, optimiser, position and random
    state come from that checkpoint and training continues where it stopped;
    ``model_config``, the store and the fixed fields of ``config`` must match it.
    With ``init_from`` training starts from that model's weights (fine-tuning;
    weights for characters it lacks start fresh). ``alphabet`` encodes the texts:
    the model's own when it is not the store's (default: the resumed run's, else
    the store's).
    """
    started = time.monotonic()
    if config.threads:
        torch.set_num_threads(config.threads)
    rank, world, local_rank, own_group = distributed.init(config.device)
    emit = progress if (progress is not None and rank == 0) else (lambda event: None)
    finished = False
    held = contextlib.ExitStack()
    try:
        device = distributed.pick_device(config.device, local_rank if world > 1 else None)
        _own_run_folder(held, run_dir, rank, world, device)
        if config.clip not in ("graves", "norm"):
            raise TrainingError(f"unknown clip {config.clip!r} (choose graves or norm)")
        store = Store(store_path)
        alphabet = alphabet or (resume.alphabet if resume is not None else store.alphabet)
        if model_config.kind != "prediction":
            if model_config.alphabet_size != len(alphabet):
                raise TrainingError(f"{store.path}: the alphabet has {len(alphabet)} codes, "
                                    f"the model expects {model_config.alphabet_size}")  # fmt: skip
            fit_alphabet(alphabet, store, extend=False)
        crop = config.crop if model_config.kind == "prediction" else None
        in_memory = store.n_points * POINT_BYTES <= IN_MEMORY_BYTES  # else lines are read from disk as needed
        train_set = StrokeDataset(store, "train", in_memory=in_memory, crop=crop, seed=config.seed, alphabet=alphabet)
        valid_set = StrokeDataset(store, "valid", in_memory=in_memory, alphabet=alphabet)
        store.verify()  # (hashing the points just loaded) seconds at most, against hours spent on damaged data
        sampler = BucketBatchSampler(
            train_set.lengths, config.batch_size, seed=config.seed, num_replicas=world, rank=rank
        )
        if len(train_set) < world or len(valid_set) < world:
            raise TrainingError(f"{store.path}: too few train or valid lines for {world} processes")

        seed_everything(config.seed)
        model = build_model(model_config)
        if init_from is not None:
            load_grown(model, init_from)
        if model_config.stroke_context:
            model.set_normalisation(store.mean, store.std)
        if model_config.word_table:
            model.set_alphabet(alphabet)
        model = model.to(device)
        optimizer = make_optimizer(model, config)
        run = _Run(Path(run_dir), store, model, optimizer, config, device, rank, world, emit, len(sampler))
        run.alphabet = alphabet
        if not in_memory:
            run.note(f"{store.path} holds {store.n_points:,} points: reading lines from disk as needed "
                     "(--workers 2 or more hides the cost)")  # fmt: skip
        if init_from is not None:
            run.init_from = {"path": str(init_from.path), "weights_sha256": init_from.weights_sha256(),
                             "store": init_from.store}  # fmt: skip
            if config.anchor:
                run.anchor = {name: p.detach().clone() for name, p in model.named_parameters()}
            run.note(f"starting from the weights of {init_from.name}")
        if resume is not None:
            run.restore(resume)
        run.open_metrics()

        net, use_bf16 = model, False
        if config.bf16 or config.compile:
            first = collate([train_set[i] for i in next(iter(sampler))]).to(device)
            net, use_bf16, fast_notes = check_fast_paths(
                model, first, bf16=config.bf16, compile=config.compile, world=world
            )
            for text in fast_notes:
                run.note(text)
        if world > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )
        run.start(len(train_set), len(valid_set))

        stopped = "epochs"
        try:
            while run.state["epoch"] < config.epochs and stopped == "epochs":
                for batch in run.rest_of_epoch(net, train_set, sampler):
                    if config.max_steps is not None and run.state["step"] >= config.max_steps:
                        stopped = "max_steps"
                    if run.out_of_time:
                        stopped = "time_limit"
                    if stopped != "epochs":
                        break
                    run.step(net, batch, use_bf16, started)
                    if run.stop_asked:  # SIGTERM, seen by every rank at this same step
                        raise KeyboardInterrupt
                else:
                    run.end_epoch()
                    if run.validate_and_save(valid_set):
                        stopped = "patience"
            if stopped in ("max_steps", "time_limit") and run.last_valid_step != run.state["step"]:
                run.validate_and_save(valid_set)
            result = run.finish(stopped, time.monotonic() - started)
        except KeyboardInterrupt:  # keep the position, skip validation (after a Ctrl-C the ranks may differ)
            raise TrainingInterrupted(run.state["step"], run.run_dir, run.save_interrupted()) from None
        emit({"event": "end", "stopped": stopped})
        finished = True
        return result
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:  # before the first step: nothing new to save
        raise TrainingInterrupted(None, Path(run_dir), None) from None
    finally:
        held.close()
        if own_group:
            if finished:  # leave together: gloo aborts a rank whose peer hangs up mid-teardown
                dist.barrier()
            dist.destroy_process_group()


def start(
    store: str | os.PathLike | None = None,
    kind: str | None = None,
    preset: str | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    init_from: str | os.PathLike | None = None,
    extend_alphabet: bool = False,
    progress: Progress | None = None,
    **overrides,
) -> TrainResult:
    """Train a new model from ``preset`` with ``overrides`` (config fields; None keeps the preset's).

    ``kind`` defaults to prediction and ``preset`` to demo. With ``init_from`` (a
    checkpoint or run folder) this is fine-tuning: the network, its kind and its
    alphabet come from that model (``extend_alphabet`` adds the store's new
    characters, see ``fit_alphabet``), the preset defaults to finetune, and the
    normalisation is the new store's, so the model writes in its pen units.
    ``store`` defaults to ``paths.default_store()``, ``run_dir`` to
    ``models/<kind>-<date>-<time>``; a folder that already holds a run is refused.
    """
    init = None
    if init_from is not None:
        init = Checkpoint.load(find_checkpoint(init_from))
        if kind is not None and kind != init.kind:
            raise OptionError("kind", f"the initial model is a {init.kind} model, not a {kind} one")
        shape = tuple(sorted(k for k, v in overrides.items() if v is not None and k in MODEL_SHAPE))
        if shape:
            raise OptionError(shape, "fixed by the initial model (--init-from)")
        kind = init.kind
    if extend_alphabet and init is None:
        raise OptionError("extend_alphabet", "fine-tuning only: give --init-from")
    kind, preset = kind or "prediction", preset or ("finetune" if init is not None else "demo")
    if init is not None and preset != "finetune" and progress is not None:
        pull = "" if overrides.get("anchor") else ", and nothing pulls toward the initial weights (finetune's --anchor)"
        progress({"event": "note", "text": f"--preset {preset} with --init-from: the network is the initial "
                                           f"model's; the preset sets only how it trains{pull}"})  # fmt: skip
    if init is None and (preset == "finetune" or overrides.get("anchor")):
        raise OptionError("preset" if preset == "finetune" else "anchor", "fine-tuning only: give --init-from")
    # the parts a model may grow with --init-from: taken from the initial model unless switched on here
    grown = {"stroke_context": "reads the stroke context", "jump_table": "has a jump table",
             "word_table": "has a word table", "window_pen": "reads the window pen"}  # fmt: skip
    wanted = {name: overrides.get(name) for name in grown}
    if init is not None:
        for name, what in grown.items():
            if getattr(init.model_config, name) and wanted[name] is False:
                raise OptionError(name, f"the initial model {what}; it cannot unlearn it")
            wanted[name] = wanted[name] or getattr(init.model_config, name)
    overrides = {**overrides, **{k: v for k, v in wanted.items() if v is not None}}
    check_options(kind, preset, overrides)  # before looking for the store: bad options fail first
    store_path = Path(store) if store is not None else default_store()
    opened = Store(store_path)
    alphabet = opened.alphabet
    if init is not None and kind != "prediction":
        alphabet = fit_alphabet(init.alphabet, opened, extend=extend_alphabet)
    model_config, config = make_configs(kind, preset, alphabet_size=len(alphabet) if kind != "prediction" else 0,
                                        **overrides)  # fmt: skip
    if init is not None:
        model_config = dataclasses.replace(init.model_config, alphabet_size=model_config.alphabet_size,
                                           **{k: bool(v) for k, v in wanted.items()})  # fmt: skip
    run_dir = Path(run_dir) if run_dir is not None else MODELS_DIR / f"{kind}-{timestamp()}"
    if distributed.is_main() and any((run_dir / name).exists() for name in ("best.pt", "last.pt")):
        raise CheckpointError(f"{run_dir}: already holds a run (continue it with --resume {run_dir}, or pick --name)")
    return train(store_path, model_config, config, run_dir=run_dir, init_from=init, alphabet=alphabet,
                 progress=progress)  # fmt: skip


def resume(
    run: str | os.PathLike,
    store: str | os.PathLike | None = None,
    *,
    progress: Progress | None = None,
    **overrides,
) -> TrainResult:
    """Go on with a run (its folder, whose ``last.pt`` is used, or a checkpoint file) where it stopped.

    ``overrides`` may change the fields that do not shape what is trained (epochs,
    time limit, learning rate, device...); the fixed ones are an ``OptionError``.
    ``store`` defaults to the one the checkpoint records (``checkpoint.find_store``).
    A run already at its step or epoch limit raises ``NothingToDo`` and touches nothing.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    fixed = tuple(sorted(set(given) & (fixed_fields() | {"kind", "preset"})))
    if fixed:
        raise OptionError(fixed, "fixed by the checkpoint, cannot change on --resume")
    run = Path(run)
    path = run / "last.pt" if run.is_dir() else run
    if run.is_dir() and not path.is_file():
        if not (run / "best.pt").is_file():
            raise CheckpointError(f"{run}: run folder holds no last.pt (nor best.pt) to resume from")
        path = run / "best.pt"  # killed between writing best.pt and last.pt: they were the same step
        if progress is not None:
            progress({"event": "note", "text": f"{run} holds no last.pt: resuming from best.pt"})
    ckpt = Checkpoint.load(path)
    if ckpt.resume is None or ckpt.train_config is None:
        raise CheckpointError(f"{path}: holds no training state to resume from")
    best = path.parent / "best.pt"
    if progress is not None and best.is_file() and (ckpt if path == best else Checkpoint.load(best)).hands:
        progress({"event": "note", "text": f"{best} carries house hands chosen for its weights; a better checkpoint "
                                           f"replaces it without them (hwkit style house {path.parent} after)"})  # fmt: skip
    config = TrainConfig.from_dict({**ckpt.train_config.to_dict(), **given})
    check_device_options(given)
    if config.max_steps is not None and ckpt.step >= config.max_steps:
        raise NothingToDo(f"{path.parent} is already at step {ckpt.step} (>= --max-steps); "
                          "pass a larger --max-steps to go on")  # fmt: skip
    if ckpt.epoch >= config.epochs:
        raise NothingToDo(f"{path.parent} has done its {config.epochs} epochs already (step {ckpt.step}); "
                          "pass a larger --epochs to go on")  # fmt: skip
    return train(find_store(ckpt, store), ckpt.model_config, config, run_dir=path.parent, resume=ckpt,
                 progress=progress)  # fmt: skip


class _Run:
    """One run's position, metrics and files around the loop in ``train``; rank 0 alone writes files.

    ``state`` is what a checkpoint restores: step, epoch, batches done of the
    epoch, epochs without a better valid loss, the best valid loss, the metrics.
    """

    def __init__(self, run_dir: Path, store: Store, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 config: TrainConfig, device: torch.device, rank: int, world: int, emit: Progress,
                 batches_per_epoch: int) -> None:  # fmt: skip
        self.run_dir, self.store, self.model, self.optimizer, self.config = run_dir, store, model, optimizer, config
        self.device, self.rank, self.world, self.emit = device, rank, world, emit
        self.is_main = rank == 0
        self.state = {"step": 0, "epoch": 0, "epoch_step": 0, "stale_epochs": 0, "best_valid": math.inf, "metrics": []}
        self.notes: list[str] = []
        self.metrics_path, self.best_path, self.last_path = run_dir / "metrics.jsonl", run_dir / "best.pt", run_dir / "last.pt"
        self.batches_per_epoch = batches_per_epoch
        self.out_of_time = self.stop_asked = False  # decided in each step, alike on every rank
        self.bad_in_row = self.bad_total = 0
        self.train_points, self.train_seconds = 0, 0.0  # throughput over the run
        self.window_points, self.window_nats, self.window_start = 0, 0.0, time.monotonic()  # since the last record
        self.plotted = time.monotonic()  # when the loss plot was last drawn (it is always drawn at the end)
        self.last_valid_step = -1
        self.alphabet = store.alphabet  # the one the texts are encoded with
        self.init_from: dict | None = None  # fine-tuning: what the weights started as
        self.anchor: dict[str, torch.Tensor] | None = None  # ... and the weights the loss pulls toward

    # -- position and files

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.emit({"event": "note", "text": text})

    def restore(self, ckpt: Checkpoint) -> None:
        _check_resumable(ckpt, self.model.config, self.config, self.store)
        try:
            self.model.load_state_dict(ckpt.weights)
            self.optimizer.load_state_dict(ckpt.resume.optimizer)
            set_rng_state(ckpt.resume.rng)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt.name}: its training state does not load ({type(exc).__name__})") from None
        self.state.update(step=ckpt.step, epoch=ckpt.epoch, epoch_step=ckpt.resume.epoch_step,
                          stale_epochs=ckpt.resume.stale_epochs, best_valid=ckpt.best_valid,
                          metrics=list(ckpt.metrics))  # fmt: skip
        self.init_from = ckpt.init_from
        if ckpt.resume.anchor is not None:  # kept even while the pull is off, so that it can be turned on again
            self.anchor = {name: t.to(self.device) for name, t in ckpt.resume.anchor.items()}
        elif self.config.anchor:
            raise CheckpointError(f"{ckpt.name}: holds no initial weights to pull toward; resume without --anchor")
        self.note(f"resumed from {ckpt.name} at step {self.state['step']} (epoch {self.epoch_fraction():.2f})")
        # the one setting of the optimiser a resumed run may change; compared with the run's own
        # setting, not the optimiser's current rate, which lr_decay may have lowered since
        if self.config.lr != ckpt.train_config.lr:
            self._set_lr(self.config.lr, "")
        if self.state["epoch"] >= self.config.epochs:
            self.note(f"the run has done its {self.config.epochs} epochs already; pass a larger --epochs to go on")
        # a run resumed at a step it validated at (it stopped by max_steps or time) does not validate again
        self.last_valid_step = max((m["step"] for m in self.state["metrics"] if m.get("kind") == "valid"), default=-1)
        self.bad_total = sum(1 for m in self.state["metrics"] if m.get("kind") == "bad_step")

    def open_metrics(self) -> None:
        """Start metrics.jsonl from what the checkpoint knows (drops records past a resume point)."""
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _rewrite_metrics(self.metrics_path, self.state["metrics"])

    def _set_lr(self, lr: float, why: str) -> None:
        before = self.optimizer.param_groups[0]["lr"]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.note(f"learning rate {before:g} -> {lr:g}{why}")

    def record(self, entry: dict) -> None:
        self.state["metrics"].append(entry)
        if self.is_main:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def checkpoint(self) -> Checkpoint:
        """Enough to sample (configs, alphabet, stats, weights) and to resume exactly."""
        store, state = self.store, self.state
        return Checkpoint(
            model_config=self.model.config,
            alphabet=self.alphabet,
            stats={"mean": store.mean.tolist(), "std": store.std.tolist()},
            weights=self.model.state_dict(),
            train_config=self.config,
            store=store.reference(),
            step=state["step"],
            epoch=state["epoch"],
            best_valid=state["best_valid"],
            metrics=state["metrics"],
            resume=ResumeState(self.optimizer.state_dict(), rng_state(), state["epoch_step"], state["stale_epochs"],
                               self.anchor),  # fmt: skip
            init_from=self.init_from,
        )

    def start(self, train_lines: int, valid_lines: int) -> None:
        total = (self.config.epochs - self.state["epoch"]) * self.batches_per_epoch - self.state["epoch_step"]
        if self.config.max_steps is not None:
            total = min(total, max(self.config.max_steps - self.state["step"], 0))
        self.emit({
            "event": "start",
            "kind": self.model.config.kind,
            "time_limit": self.config.time_limit,
            "run_dir": str(self.run_dir),
            "total_steps": max(total, 0),
            "params": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "world": self.world,
            "train_lines": train_lines,
            "valid_lines": valid_lines,
        })  # fmt: skip

    def epoch_fraction(self) -> float:
        """Epochs done, counting a started one by its batches done (as the valid records count)."""
        return self.state["epoch"] + self.state["epoch_step"] / self.batches_per_epoch

    # -- the loop's three moves: a step, an epoch's end, a validation

    def rest_of_epoch(
        self, net: torch.nn.Module, train_set: StrokeDataset, sampler: BucketBatchSampler
    ) -> torch.utils.data.DataLoader:
        """The batches of the current epoch not yet done (all of them, unless resumed mid-epoch)."""
        sampler.set_epoch(self.state["epoch"])
        train_set.set_epoch(self.state["epoch"])
        net.train()
        return torch.utils.data.DataLoader(
            train_set,
            batch_sampler=list(sampler)[self.state["epoch_step"] :],
            collate_fn=collate,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
        )

    def step(self, net: torch.nn.Module, batch: Batch, bf16: bool, started: float) -> None:
        """One optimiser step, or a skipped one when the loss or gradient is not finite."""
        config, state = self.config, self.state
        t0 = time.monotonic()
        batch = batch.to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        nll, grad_norm = _backward(net, self.model, batch, config, bf16, self.anchor if config.anchor else None)
        nats, lines, points = float(nll.sum()), len(nll), int(batch.point_mask[:, 1:].sum())
        bad = not (math.isfinite(nats) and math.isfinite(grad_norm))
        out_of_time = bool(config.time_limit) and time.monotonic() - started >= config.time_limit
        # every rank takes the same decisions, at the same step
        bad, self.out_of_time, self.stop_asked = distributed.any_rank(
            self.world, self.device, bad, out_of_time, stop_requested()
        )
        with sigint_deferred():  # a step and its counters are one unit for Ctrl-C
            state["epoch_step"] += 1
            if bad:
                self.bad_in_row += 1
                self.bad_total += 1
                self.record({"kind": "bad_step", "step": state["step"], "epoch": state["epoch"], "loss": nats / lines})
                if self.bad_in_row >= config.max_bad_steps:
                    kept = f"; {self.best_path} is the last good checkpoint" if self.best_path.exists() else ""
                    raise TrainingError(
                        f"loss or gradient was not finite for {self.bad_in_row} steps in a row "
                        f"(at step {state['step']}); stopped{kept}. Try a lower --lr or --clip graves"
                    )
                return
            self.optimizer.step()
            self.bad_in_row = 0
            state["step"] += 1
        seconds = time.monotonic() - t0
        self.train_points += points
        self.train_seconds += seconds
        self.window_points += points
        self.window_nats += nats
        self.emit({
            "event": "step",
            "step": state["step"],
            "epoch": state["epoch"],
            "loss": nats / max(points, 1),
            "points_per_s": points * self.world / max(seconds, 1e-9),
        })  # fmt: skip
        if state["step"] % config.log_every == 0:
            now = time.monotonic()
            self.record({
                "kind": "train",
                "step": state["step"],
                "epoch": self.epoch_fraction(),
                "nats_per_point": self.window_nats / max(self.window_points, 1),
                "grad_norm": grad_norm,
                "lr": self.optimizer.param_groups[0]["lr"],
                "points_per_s": self.window_points * self.world / max(now - self.window_start, 1e-9),
                "threads": torch.get_num_threads(),  # a slow stretch on a busy machine explains itself
                "bad_steps": self.bad_total,
            })  # fmt: skip
            self.window_points, self.window_nats, self.window_start = 0, 0.0, now

    def end_epoch(self) -> None:
        with sigint_deferred():
            self.state["epoch"] += 1
            self.state["epoch_step"] = 0

    def validate_and_save(self, valid_set: StrokeDataset) -> bool:
        """Validate on whole lines, write best.pt (when better) and last.pt; True when patience ran out."""
        state = self.state
        scores = evaluate(self.model, valid_set, self.config.batch_size, self.device, self.world, self.rank)
        per_line = scores.nats_per_line
        with sigint_deferred():  # the record, best.pt and last.pt agree
            improved = per_line < state["best_valid"]
            if improved:
                state["best_valid"], state["stale_epochs"] = per_line, 0
            else:
                state["stale_epochs"] += 1
                if self.config.lr_decay and state["stale_epochs"] % LR_DECAY_AFTER == 0:
                    lr = self.optimizer.param_groups[0]["lr"] * self.config.lr_decay
                    self._set_lr(lr, f" ({state['stale_epochs']} epochs without a better valid loss)")
            entry = {
                "kind": "valid",
                "step": state["step"],
                "epoch": self.epoch_fraction(),
                "nats_per_line": per_line,
                "nats_per_point": scores.nats_per_point,
                **({} if scores.cer is None else {"cer": scores.cer}),
                "best": improved,
            }
            self.record(entry)
            if self.is_main:
                ckpt = self.checkpoint()
                if improved:
                    ckpt.save(self.best_path)
                ckpt.save(self.last_path)
            self.last_valid_step = state["step"]
        if self.is_main and time.monotonic() - self.plotted >= PLOT_EVERY:
            _plot(state["metrics"], self.run_dir, self.note)
            self.plotted = time.monotonic()
        self.emit({"event": "valid", **entry})
        return self.config.patience is not None and state["stale_epochs"] >= self.config.patience

    # -- leaving

    def save_interrupted(self) -> Path | None:
        """After Ctrl-C: last.pt at the current position (rank 0); its path, or None on other ranks."""
        if not self.is_main:
            return None
        with sigint_deferred(reraise=False):  # a second Ctrl-C must not cut the save short
            self.checkpoint().save(self.last_path)
            _rewrite_metrics(self.metrics_path, self.state["metrics"])  # drops a record cut mid-write
        try:
            _plot(self.state["metrics"], self.run_dir, self.note)
        except KeyboardInterrupt:  # impatient: the plot is drawn again on resume
            pass
        return self.last_path

    def finish(self, stopped: str, elapsed: float) -> TrainResult:
        if self.is_main:
            _plot(self.state["metrics"], self.run_dir, self.note)
        (train_points,) = distributed.sum_ranks(self.world, self.device, self.train_points)  # all ranks' throughput
        best = [m for m in self.state["metrics"] if m.get("kind") == "valid" and m.get("best")]
        return TrainResult(
            run_dir=self.run_dir,
            kind=self.model.config.kind,
            best_path=self.best_path if self.best_path.exists() else None,
            last_path=self.last_path,
            best_valid=self.state["best_valid"],
            best_valid_per_point=best[-1]["nats_per_point"] if best else math.nan,
            best_valid_cer=best[-1].get("cer") if best else None,
            steps=self.state["step"],
            epochs=self.epoch_fraction(),
            seconds=elapsed,
            points_per_s=train_points / max(self.train_seconds, 1e-9),
            stopped=stopped,
            bad_steps=self.bad_total,
            metrics_path=self.metrics_path,
            plot_paths=[self.run_dir / "loss.png", self.run_dir / "loss.svg"],
            notes=self.notes,
        )


def forward(net: torch.nn.Module, batch: Batch):
    """The network's raw outputs for a batch, called through ``net`` (so DDP sees the call).

    The handwriting nets read offsets up to T-1 and predict from 1: ``(B, T-1, 1 + 6M)``.
    The recognizer reads whole lines: ``(log_probs (B, T', A), frame_lengths (B,))``.
    """
    kind = distributed.unwrap(net).config.kind
    if kind == "recognizer":
        return net(batch.offsets, batch.point_mask)
    x = batch.offsets[:, :-1]
    if kind == "synthesis":
        out, _, _ = net(x, batch.chars, batch.char_mask)
    else:
        out, _ = net(x)
    return out


def batch_nll(out, batch: Batch) -> torch.Tensor:
    """Nats per line ``(B,)``: of the next points under the mixtures (fp32), or of the text under CTC."""
    if isinstance(out, tuple):  # the recognizer's (log_probs, frame_lengths)
        return ctc_nll(out[0], out[1], batch.chars, batch.char_mask)
    return mdn.sequence_nll(mdn.split_params(out.float()), batch.offsets[:, 1:], batch.point_mask[:, 1:])


def _backward(
    net: torch.nn.Module, model: torch.nn.Module, batch: Batch, config: TrainConfig, bf16: bool,
    anchor: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, float]:
    """Forward and backward one batch; return its nats per line (detached) and the gradient norm.

    With ``anchor`` (fine-tuning) the loss also holds ``config.anchor / 2 * |w - w0|^2``:
    L2-SP, a pull toward the initial weights, so that a few lines adapt the model
    rather than overwrite what it knew.
    """
    if config.clip == "graves":
        # the hooks clamp the gradient of the batch mean; a line's own derivative is that times the line count
        lines = len(batch.line_ids)
        model.clip_hooks(GRAVES_LSTM_CLIP / lines, GRAVES_OUTPUT_CLIP / lines)
    with torch.autocast(batch.offsets.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = forward(net, batch)
    nll = batch_nll(out, batch)
    loss = nll.mean()
    if anchor is not None:
        loss = loss + config.anchor / 2 * sum(((p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
    loss.backward()
    return nll.detach(), clip_gradients(model, config)


@dataclass
class Validation:
    """Loss on whole lines; for the recognizer also its character error rate (greedy decoding)."""

    nats_per_line: float
    nats_per_point: float
    cer: float | None = None
    # the handwriting nets' loss of the points in raw pen units (the normalisation's log-Jacobian
    # added back): comparable between models that normalise differently, as a fine-tuned one does
    pen_nats_per_line: float | None = None


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: StrokeDataset,
    batch_size: int,
    device: torch.device,
    world: int = 1,
    rank: int = 0,
) -> Validation:
    """Loss (and for the recognizer, CER) on whole lines of ``dataset``, summed over all ranks."""
    was_training = model.training
    model.eval()
    reads = model.config.kind == "recognizer"
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False, num_replicas=world, rank=rank)
    nats, lines, points, edits, chars = 0.0, 0, 0, 0, 0
    for batch in torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate):
        batch = batch.to(device)
        out = forward(model, batch)
        nll = batch_nll(out, batch)
        nats, lines, points = nats + float(nll.sum()), lines + len(nll), points + int(batch.point_mask[:, 1:].sum())
        if reads:
            for got, want, mask in zip(greedy_decode(*out), batch.chars.tolist(), batch.char_mask.tolist()):
                want = [c for c, m in zip(want, mask) if m]
                edits, chars = edits + edit_distance(want, got), chars + len(want)
    model.train(was_training)
    nats, lines, points, edits, chars = distributed.sum_ranks(world, device, nats, lines, points, edits, chars)
    if reads:
        return Validation(nats / max(lines, 1), nats / max(points, 1), cer=edits / max(chars, 1))
    pen = (nats + points * float(np.log(dataset.std).sum())) / max(lines, 1)
    return Validation(nats / max(lines, 1), nats / max(points, 1), pen_nats_per_line=pen)


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
    Under DDP (``world`` > 1) the ranks agree on compile before bf16 is judged
    on the module they will all train, and an option stays only if it passed on
    every rank.
    """
    device = batch.offsets.device
    notes: list[str] = []
    if (bf16 or compile) and device.type != "cuda":
        notes.append("--bf16 and --compile apply on CUDA only; training in fp32 eager mode")
        return model, False, notes
    if not (bf16 or compile):
        return model, False, notes
    reference = _loss_per_point(model, batch, bf16=False)
    net = model
    if compile:
        compiled = torch.compile(model)  # lazy: compiling happens, and fails, in the first call
        tolerance = COMPILE_TOLERANCE * max(1.0, abs(reference))
        keep = _judge("--compile", lambda: (_loss_per_point(compiled, batch, bf16=False), tolerance), reference,
                      "running eagerly", world, device, notes, errors=(Exception,))  # any compiler failure  # fmt: skip
        net = compiled if keep else model
    use_bf16 = bf16 and _judge(
        "--bf16", lambda: (_loss_per_point(net, batch, bf16=True), BF16_TOLERANCE), reference, "using fp32", world,
        device, notes, errors=(RuntimeError,),  # an op without a bf16 kernel: stay in fp32
    )  # fmt: skip
    return net, use_bf16, notes


def _judge(flag: str, trial: Callable[[], tuple[float, float]], reference: float, fallback: str, world: int,
           device: torch.device, notes: list[str], errors: tuple[type[BaseException], ...]) -> bool:  # fmt: skip
    """Whether a fast path passes on every rank: ``trial()`` gives its loss and the tolerance it must meet."""
    failed = False
    try:
        got, tolerance = trial()
        failed = abs(got - reference) > tolerance
        if failed:
            notes.append(f"{flag} moved the loss from {reference:.4f} to {got:.4f} nats/point; {fallback}")
    except errors as exc:
        failed = True
        notes.append(f"{flag} failed ({type(exc).__name__}); {fallback}")
    (failed_anywhere,) = distributed.any_rank(world, device, failed)
    if failed_anywhere and not failed:
        notes.append(f"{flag} failed on another process; {fallback}")
    return not failed_anywhere


@torch.no_grad()
def _loss_per_point(net: torch.nn.Module, batch: Batch, *, bf16: bool) -> float:
    with torch.autocast(batch.offsets.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = forward(net, batch)
    return float(batch_nll(out, batch).sum() / batch.point_mask[:, 1:].sum())


def _check_resumable(ckpt: Checkpoint, model_config: ModelConfig, config: TrainConfig, store: Store) -> None:
    """Resuming is exact only with the checkpoint's network, store and fixed recipe fields."""
    if ckpt.resume is None or ckpt.train_config is None:
        raise CheckpointError(f"{ckpt.name}: holds no training state to resume from")
    if ckpt.model_config != model_config:
        raise CheckpointError(f"{ckpt.name}: model config differs from the requested one; resume without shape flags")
    changed = sorted(name for name in fixed_fields() & set(config.to_dict())
                     if getattr(config, name) != getattr(ckpt.train_config, name))  # fmt: skip
    if changed:
        raise OptionError(tuple(changed), "fixed by the checkpoint, cannot change on resume")
    if (ckpt.store or {}).get("fingerprint") != store.fingerprint:
        raise CheckpointError(f"{ckpt.name}: was trained on a different store than {store.path}")


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

