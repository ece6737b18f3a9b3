"""``hwkit train``: a thin click wrapper around ``hwkit.train.start`` and ``hwkit.train.resume``.

The config flags, their help and the preset table come from ``hwkit.config``
(torch-free), so there is one copy of each default and ``--help`` stays instant.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from hwkit import config as cfg
from hwkit.cli._common import escape, progress_bar, stderr_console, stdout_console
from hwkit.cli._config_flags import config_options
from hwkit.paths import MODELS_DIR

EPILOG = f"""\
Presets (each value can be overridden by its flag; LSTM: cells x layers,
"initial" for the --init-from model's; M/K: output mixtures / window
Gaussians; crop: prediction only; patience: epochs without a better valid
loss):

\b
{cfg.preset_table()}
"""


@click.command(epilog=EPILOG)
@click.argument("store", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "kind", type=click.Choice(cfg.KINDS),
              help="Unconditional handwriting (sec. 4), handwriting from text (sec. 5), or a recognizer that "
                   "reads handwriting (BLSTM + CTC; hwkit read, hwkit evaluate).  [default: prediction; with "
                   "--init-from, the initial model's]")
@click.option("--preset", type=click.Choice(tuple(cfg.PRESETS)),
              help="; ".join(f"{k}: {v}" for k, v in cfg.PRESET_HELP.items()) + ". What each sets: the table "
                   "below.  [default: demo; finetune with --init-from]")
@click.option("--init-from", type=click.Path(exists=True, path_type=Path),
              help="Fine-tune: start from this model's weights (a checkpoint or run folder; the bundled one is "
                   "hwkit/pretrained/demo-synthesis.pt) instead of random ones.")
@click.option("--extend-alphabet", is_flag=True,
              help="With --init-from: give the store's characters the model lacks new, fresh weights "
                   "(else they are an error).")
@config_options
@click.option("--name", "run_name",
              help="Run folder under models/ [default: <model>-<date>-<time>]. (Not --run: torchrun would take that.)")
@click.option("--resume", type=click.Path(exists=True, path_type=Path),
              help="Continue a run: its folder (uses last.pt) or a checkpoint file.")
@click.pass_context
def train(ctx: click.Context, store: Path | None, kind: str | None, preset: str | None, run_name: str | None,
          resume: Path | None, init_from: Path | None, extend_alphabet: bool, **flags) -> None:  # fmt: skip
    """Train a handwriting prediction, synthesis or recognizer network on a stroke store.

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
      hwkit train --model recognizer --name reader
      hwkit train cache/mine.h5 --init-from hwkit/pretrained/demo-synthesis.pt --name mine
      hwkit train --resume models/prediction-20240101-120000 --epochs 20
      hwkit train --resume models/synthesis-20240101-120000 --lr 0.0005
      torchrun --nproc_per_node=4 -m hwkit train --model synthesis --preset graves
    """
    from click.core import ParameterSource

    from hwkit import distributed
    from hwkit.errors import NothingToDo
    from hwkit.runstate import sigterm_requests_stop
    from hwkit.train import TrainingInterrupted, resume as resume_run, start

    def explicit(name: str) -> bool:
        return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE

    given = {k: v for k, v in flags.items() if explicit(k)}
    main, err = distributed.is_main(), stderr_console()
    if resume is not None:
        if explicit("run_name"):
            raise click.UsageError("--name: a resumed run stays in its folder, cannot go with --resume")
        if init_from is not None or extend_alphabet:
            raise click.UsageError("--init-from, --extend-alphabet: a resumed run keeps its weights")
        given.update({name: value for name, value in (("kind", kind), ("preset", preset)) if value is not None})
    try:
        with sigterm_requests_stop(), progress_bar("train", total=None, unit="steps") as advance:
            on_event = _reporter(advance, err, given.get("time_limit"))
            if resume is not None:
                result = resume_run(resume, store, progress=on_event, **given)
            else:
                run_dir = MODELS_DIR / run_name if run_name else None
                result = start(store, kind, preset, run_dir=run_dir, init_from=init_from,
                               extend_alphabet=extend_alphabet, progress=on_event, **given)  # fmt: skip
    except NothingToDo as exc:  # nothing to train: say so and touch nothing
        if main:
            err.print(f"note: {escape(str(exc))}")
        return
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the library saved last.pt unless it had not begun
        if main:
            if isinstance(exc, TrainingInterrupted) and exc.last_path is not None:
                again = shlex.join(["hwkit", "train", "--resume", str(exc.run_dir)])
                err.print(f"interrupted at step {exc.step}; resume with: {escape(again)}")
            else:
                err.print("interrupted before the first step; nothing saved")
        ctx.exit(130)
    if main:
        _summary(result)


def _reporter(advance, err, time_limit: float | None):
    """The library's progress events as a bar (steps) and lines (start, validation, notes) on stderr."""
    smooth: list[float | None] = [None]
    started = time.monotonic()

    def on_event(event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            limit[0] = time_limit or event.get("time_limit")
            advance(0, total=event["total_steps"])
            world = f" x {event['world']} processes" if event["world"] > 1 else ""
            n = event["threads"]
            threads = f" ({n} thread{'s' if n != 1 else ''})" if event["device"] == "cpu" else ""
            err.print(f"training {event['kind']} ({event['params']:,} parameters) on {event['device']}{threads}{world}: "
                      f"{event['train_lines']:,} train / {event['valid_lines']:,} valid lines -> "
                      f"{escape(event['run_dir'])}")  # fmt: skip
        elif kind == "step":  # the loss shown is smoothed over the last ~20 steps
            smooth[0] = event["loss"] if smooth[0] is None else 0.95 * smooth[0] + 0.05 * event["loss"]
            status = f"epoch {event['epoch'] + 1}  loss {smooth[0]:.3f} nats/pt  {event['points_per_s']:,.0f} pts/s"
            if limit[0]:  # the bar's ETA counts the epochs left, which the limit may cut short
                left = max(0, int(limit[0] - (time.monotonic() - started)))
                status += f"  time limit in {left // 3600}h {left % 3600 // 60:02d}m"
            advance(1, status=status)
        elif kind == "valid":
            mark = ("" if event.get("cer") is None else f"  CER {event['cer']:.1%}") + ("  (best)" if event["best"] else "")
            err.print(f"epoch {event['epoch']:.2f}  step {event['step']}  valid {event['nats_per_line']:.1f} "
                      f"nats/line  {event['nats_per_point']:.3f} nats/point{mark}")  # fmt: skip
        elif kind == "note":
            err.print(f"note: {escape(event['text'])}")

    limit: list[float | None] = [time_limit]
    return on_event


def _summary(result) -> None:
    """One screen on stdout: how good, how long, where the files are, what to run next."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    best = (f"{result.best_valid:.1f} nats/line  {result.best_valid_per_point:.3f} nats/point"
            if result.best_path else "none (no validation finished)")  # fmt: skip
    table.add_row("best valid", best + ("" if result.best_valid_cer is None else f"  CER {result.best_valid_cer:.1%}"))
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
        reads = result.best_valid_cer is not None
        table.add_row("next", escape(f"hwkit {'read' if reads else 'sample'} {result.run_dir}"))
    stdout_console().print(table)
