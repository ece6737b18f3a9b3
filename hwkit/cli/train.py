"""``hwkit train``: a thin click wrapper around ``hwkit.train.train``."""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import time
from pathlib import Path

import click

from hwkit.cli._common import MODELS_DIR, escape, progress_bar, stderr_console, stdout_console

PRESET_NAMES = ("tiny", "demo", "graves")  # = hwkit.train.PRESETS (kept here so --help needs no torch)
# Flags that change what is trained; a resumed run keeps the checkpoint's values.
SHAPE_FLAGS = ("preset", "hidden", "layers", "mixtures", "window_mixtures", "batch_size", "optimizer",
               "clip", "max_norm", "crop", "seed")  # fmt: skip
# Flags that say how long, where and how fast to run; a resumed run may change them
# (a new --lr is the way to lower the learning rate by hand as a run goes on).
RUN_FLAGS = ("epochs", "max_steps", "time_limit", "patience", "lr", "lr_decay", "workers", "device", "bf16",
             "compile", "log_every", "max_bad_steps")  # fmt: skip


def preset_table(presets: dict, defaults: dict) -> str:
    """What each preset sets, as the plain-text table of ``train -h``.

    ``presets`` is ``hwkit.train.PRESETS`` and ``defaults`` ``TrainConfig().to_dict()``;
    the help shows ``PRESET_TABLE``, a copy made without importing torch (a test
    keeps the two equal).
    """
    rows = [("preset", "LSTM", "M/K", "batch", "lr", "optimiser (clip)", "crop", "stops after")]
    for name, preset in presets.items():
        model, recipe = preset["model"], {**defaults, **preset["train"]}
        stops = [f"{recipe['epochs']} epochs"]
        if recipe.get("time_limit"):
            stops.append(_human_duration(recipe["time_limit"]))
        if recipe.get("patience"):
            stops.append(f"patience {recipe['patience']}")
        rows.append((
            name,
            f"{model['hidden']} x {model['layers']}",
            f"{model['mixtures']}/{model['window_mixtures']}",
            str(recipe["batch_size"]),
            f"{recipe['lr']:g}",
            f"{recipe['optimizer']} ({recipe['clip']})",
            str(recipe["crop"]) if recipe.get("crop") else "-",
            ", ".join(stops),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _human_duration(seconds: float) -> str:
    """900 -> '15m', 5400 -> '1h30m'."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


# = preset_table(hwkit.train.PRESETS, TrainConfig().to_dict()), written out so that --help needs no torch
PRESET_TABLE = """\
preset  LSTM     M/K    batch  lr      optimiser (clip)  crop  stops after
tiny    32 x 1   3/2    8      0.003   adam (norm)       64    2 epochs
demo    256 x 2  20/10  32     0.002   adam (norm)       300   30 epochs, 15m, patience 3
graves  400 x 3  20/10  32     0.0001  rmsprop (graves)  -     100 epochs, patience 10"""

EPILOG = f"""\
Presets (each value can be overridden by its flag; LSTM: cells x layers; M/K:
output mixtures / window Gaussians; crop: prediction only; patience: epochs
without a better valid loss):

\b
{PRESET_TABLE}
"""


def _duration(value: str | None) -> float | None:
    """'900', '900s', '15m', '2h' or '1h30m' -> seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise click.BadParameter(f"{value!r} is not a duration like 900, 15m, 2h or 1h30m", param_hint="--time-limit")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


@click.command(epilog=EPILOG)
@click.argument("store", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "kind", type=click.Choice(["prediction", "synthesis"]), default="prediction",
              show_default=True, help="Unconditional handwriting (sec. 4) or handwriting from text (sec. 5).")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="demo", show_default=True,
              help="tiny: seconds, for tests; demo: ~15 min on a CPU; graves: the paper's sizes (GPU). "
                   "What each sets: the table below.")
@click.option("--hidden", type=click.IntRange(min=1), help="LSTM cells per layer.")
@click.option("--layers", type=click.IntRange(min=1), help="LSTM layers.")
@click.option("--mixtures", type=click.IntRange(min=1), help="Gaussian mixture components of the output (M).")
@click.option("--window-mixtures", type=click.IntRange(min=1), help="Gaussians of the synthesis window (K).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Lines per batch (per process under torchrun).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate (may change on --resume, to lower it as a run goes on).")
@click.option("--optimizer", type=click.Choice(["adam", "rmsprop"]),
              help="Adam, or Graves' centred RMSProp with momentum.")
@click.option("--clip", type=click.Choice(["graves", "norm"]),
              help="graves: LSTM gradients to [-10, 10], outputs to [-100, 100]; norm: global norm <= --max-norm.")
@click.option("--max-norm", type=click.FloatRange(min=0, min_open=True), help="Gradient norm limit for --clip norm.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the train split.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimiser steps in all.")
@click.option("--time-limit", help="Stop after this long (900, 15m, 2h; 0: no limit), validating and saving first.")
@click.option("--crop", type=click.IntRange(min=2), help="Prediction only: train on random windows of this many points.")
@click.option("--patience", type=click.IntRange(min=1), help="Stop after this many epochs without a better valid loss.")
@click.option("--lr-decay", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              help="Multiply the learning rate by this after every 2 epochs in a row without a better valid loss.")
@click.option("--seed", type=int, help="Seed for initialisation, batch order and crops.")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="auto: CUDA when present, else CPU.")
@click.option("--bf16/--no-bf16", default=None, help="CUDA: bf16 autocast, kept only if it matches fp32 on a batch.")
@click.option("--compile/--no-compile", default=None,
              help="CUDA: torch.compile, kept only if it matches eager on a batch.")
@click.option("--log-every", type=click.IntRange(min=1), help="Steps between train records in metrics.jsonl.")
@click.option("--max-bad-steps", type=click.IntRange(min=1), default=5, show_default=True,
              help="Non-finite steps in a row before giving up.")
@click.option("--name", "run_name",
              help="Run folder under models/ [default: <model>-<date>-<time>]. (Not --run: torchrun would take that.)")
@click.option("--resume", type=click.Path(exists=True, path_type=Path),
              help="Continue a run: its folder (uses last.pt) or a checkpoint file.")
@click.pass_context
def train(
    ctx: click.Context, store: Path | None, kind: str, run_name: str | None, resume: Path | None, **flags
) -> None:
    """Train a handwriting prediction or synthesis network on a stroke store.

    STORE defaults to cache/iamondb.h5 when it exists, else cache/demo.h5, else
    the newest cache/*.h5 (on --resume: the store the checkpoint was trained on).
    Each epoch ends with the validation loss on whole lines (nats per line: lower
    is better) and writes models/RUN/last.pt, and best.pt when the loss improved,
    plus metrics.jsonl and loss.png/loss.svg. Progress goes to stderr, the final
    summary to stdout. Ctrl-C, or a scheduler's SIGTERM, saves last.pt where
    training stopped (exit 130); --resume goes on from there.

    Uses CUDA when present. Under torchrun the run is data-parallel across
    processes (DDP; NCCL on GPUs, gloo on CPUs); rank 0 writes the files.

    \b
    Examples:
      hwkit train --preset demo
      hwkit train --model synthesis --preset graves --time-limit 8h
      hwkit train --resume models/prediction-20240101-120000 --epochs 20
      hwkit train --resume models/synthesis-20240101-120000 --lr 0.0005
      torchrun --nproc_per_node=4 -m hwkit train --model synthesis --preset graves
    """
    flags["time_limit"] = _duration(flags["time_limit"])
    explicit = {
        name for name in (*SHAPE_FLAGS, *RUN_FLAGS, "kind", "run_name")
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }  # fmt: skip
    _check_flags(explicit, resume, kind, flags)
    rank = int(os.environ.get("RANK", "0"))
    err = stderr_console()
    from hwkit.runstate import sigterm_requests_stop

    try:
        with sigterm_requests_stop():  # a scheduler's SIGTERM: stop after this step, save last.pt as on Ctrl-C
            _train(store, kind, run_name, resume, flags, explicit, rank, err)
    except KeyboardInterrupt as exc:  # Ctrl-C: the library saved last.pt (rank 0) unless it had not begun
        from hwkit.train import TrainingInterrupted

        if rank == 0:
            if isinstance(exc, TrainingInterrupted) and exc.last_path is not None:
                again = shlex.join(["hwkit", "train", "--resume", str(exc.run_dir)])
                err.print(f"interrupted at step {exc.step}; resume with: {escape(again)}")
            else:
                err.print("interrupted before the first step; nothing saved")
        ctx.exit(130)


def _check_flags(explicit: set[str], resume: Path | None, kind: str, flags: dict) -> None:
    """Refuse flag combinations that cannot work, as usage errors (exit 2), before any work is done."""

    def names(*flag_names: str) -> str:
        return ", ".join("--" + n.replace("_", "-") for n in flag_names)

    if "device" in explicit and flags["device"] == "cpu":
        fast = [n for n in ("bf16", "compile") if n in explicit and flags[n]]
        if fast:
            raise click.UsageError(f"{names(*fast)}: CUDA only, cannot go with --device cpu")
    if resume is not None:
        refused = sorted(explicit & set(SHAPE_FLAGS))
        if refused:
            raise click.UsageError(f"{names(*refused)}: fixed by the checkpoint, cannot change on --resume")
        if "kind" in explicit:
            raise click.UsageError("--model: fixed by the checkpoint, cannot change on --resume")
        if "run_name" in explicit:
            raise click.UsageError("--name: a resumed run stays in its folder, cannot go with --resume")
        return
    if kind == "synthesis" and "crop" in explicit:
        raise click.UsageError("--crop: prediction only, cannot go with --model synthesis (it reads whole lines)")
    if "max_norm" in explicit:
        from hwkit.train import PRESETS, TrainConfig

        clip = flags["clip"] or PRESETS[flags["preset"]]["train"].get("clip", TrainConfig.clip)
        if clip != "norm":
            raise click.UsageError(
                f"--max-norm: applies to --clip norm only (this run clips the {clip} way); add --clip norm"
            )


def _train(
    store: Path | None, kind: str, run_name: str | None, resume: Path | None, flags: dict, explicit: set[str],
    rank: int, err
) -> None:  # fmt: skip
    from hwkit import train as lib
    from hwkit.checkpoint import load_checkpoint
    from hwkit.errors import CheckpointError
    from hwkit.models import ModelConfig
    from hwkit.store import Store

    if resume is not None:
        checkpoint = resume / "last.pt" if resume.is_dir() else resume
        if resume.is_dir() and not checkpoint.is_file():
            raise CheckpointError(f"{resume}: run folder holds no last.pt to resume from")
        ckpt = load_checkpoint(checkpoint)
        model_config = ModelConfig.from_dict(ckpt["model_config"])
        config = lib.TrainConfig.from_dict({
            **ckpt["train_config"], **{k: flags[k] for k in explicit & set(RUN_FLAGS)}
        })  # fmt: skip
        store_path = store if store is not None else Path(ckpt["store"]["path"])
        run_dir = checkpoint.parent
        done = _already_done(ckpt, config, run_dir)
        if done is not None:  # nothing to train: say so and touch nothing
            if rank == 0:
                err.print(f"note: {escape(done)}")
            return
    else:
        from hwkit.cli._common import default_store

        store_path = store if store is not None else default_store()
        alphabet_size = len(Store(store_path).alphabet) if kind == "synthesis" else 0
        model_config, config = lib.make_configs(
            kind, flags.pop("preset"), alphabet_size=alphabet_size, **flags
        )
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = MODELS_DIR / (run_name or f"{kind}-{stamp}")
        if rank == 0 and any((run_dir / name).exists() for name in ("best.pt", "last.pt")):
            raise CheckpointError(
                f"{run_dir}: already holds a run (continue it with --resume {run_dir}, or pick --name)"
            )
        checkpoint = None

    smooth: list[float | None] = [None]
    started = time.monotonic()  # train() counts --time-limit from its own start, a moment later
    with progress_bar("train", total=None, unit="steps") as advance:

        def on_event(event: dict) -> None:
            kind_ = event["event"]
            if kind_ == "start":
                advance(0, total=event["total_steps"])
                err.print(
                    f"training {model_config.kind} ({event['params']:,} parameters) on {event['device']}"
                    + (f" x {event['world']} processes" if event["world"] > 1 else "")
                    + f": {event['train_lines']:,} train / {event['valid_lines']:,} valid lines"
                    + f" -> {escape(event['run_dir'])}"
                )
            elif kind_ == "step":  # the loss shown is smoothed over the last ~20 steps
                smooth[0] = event["loss"] if smooth[0] is None else 0.95 * smooth[0] + 0.05 * event["loss"]
                status = f"epoch {event['epoch'] + 1}  loss {smooth[0]:.3f} nats/pt  {event['points_per_s']:,.0f} pts/s"
                if config.time_limit:  # the bar's ETA counts the epochs left, which the limit may cut short
                    left = max(0, int(config.time_limit - (time.monotonic() - started)))
                    status += f"  time limit in {left // 3600}h {left % 3600 // 60:02d}m"
                advance(1, status=status)
            elif kind_ == "valid":
                mark = "  (best)" if event["best"] else ""
                err.print(
                    f"epoch {event['epoch']:.2f}  step {event['step']}  valid {event['nats_per_line']:.1f} nats/line"
                    f"  {event['nats_per_point']:.3f} nats/point{mark}"
                )
            elif kind_ == "note":
                err.print(f"note: {escape(event['text'])}")

        result = lib.train(store_path, model_config, config, run_dir=run_dir, resume=checkpoint, progress=on_event)
    if rank == 0:
        _summary(result)


def _already_done(ckpt: dict, config, run_dir: Path) -> str | None:
    """Why a resumed run has nothing left to train (its step or epoch limit is reached), or None."""
    step = ckpt.get("step", 0)
    if config.max_steps is not None and step >= config.max_steps:
        return f"{run_dir} is already at step {step} (>= --max-steps); pass a larger --max-steps to go on"
    if ckpt.get("epoch", 0) >= config.epochs:
        return (
            f"{run_dir} has done its {config.epochs} epochs already (step {step}); "
            "pass a larger --epochs to go on"
        )
    return None


def _summary(result) -> None:
    """One screen on stdout: how good, how long, where the files are, what to run next."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    best = (
        f"{result.best_valid:.1f} nats/line  {result.best_valid_per_point:.3f} nats/point"
        if result.best_path else "none (no validation finished)"
    )  # fmt: skip
    table.add_row("best valid", best)
    table.add_row("steps", f"{result.steps:,}  ({result.epochs:.2f} epochs; stopped by {result.stopped})")
    minutes, seconds = divmod(int(result.seconds), 60)
    table.add_row("time", f"{minutes}m {seconds:02d}s  {result.points_per_s:,.0f} points/s")
    if result.bad_steps:
        table.add_row("skipped", f"{result.bad_steps} steps with a non-finite loss or gradient")
    for label, path in (("best", result.best_path), ("last", result.last_path), ("metrics", result.metrics_path),
                        ("plot", result.plot_paths[0])):  # fmt: skip
        if path is not None:
            table.add_row(label, escape(str(path)))
    if result.best_path:
        table.add_row("next", escape(f"hwkit sample {result.run_dir}"))
    stdout_console().print(table)
