"""``hwkit train``: a thin click wrapper around ``hwkit.train.start`` and ``hwkit.train.resume``.

The config flags, their help and the preset table come from ``hwkit.config``
(torch-free), so there is one copy of each default and ``--help`` stays instant.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from hwkit import config as cfg
from hwkit.cli._common import escape, progress_bar, stderr_console
from hwkit.cli._train_report import reporter, summary
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
@click.option("--init-from", type=click.Path(path_type=Path),
              help="Fine-tune: start from this model's weights (a checkpoint or run folder, or bundled for the "
                   "bundled demo model) instead of random ones.")
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
      hwkit train cache/mine.h5 --init-from bundled --name mine
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
    if run_name is not None and (Path(run_name).is_absolute() or ".." in Path(run_name).parts or not run_name.strip()):
        raise click.UsageError(f"--name {run_name!r}: a folder name under models/, not a path out of it")
    if resume is not None:
        if explicit("run_name"):
            raise click.UsageError("--name: a resumed run stays in its folder, cannot go with --resume")
        if init_from is not None or extend_alphabet:
            named = ", ".join(flag for flag, on in (("--init-from", init_from is not None),
                                                    ("--extend-alphabet", extend_alphabet)) if on)  # fmt: skip
            raise click.UsageError(f"{named}: a resumed run keeps its weights, cannot go with --resume")
        given.update({name: value for name, value in (("kind", kind), ("preset", preset)) if value is not None})
    try:
        with sigterm_requests_stop(), progress_bar("train", total=None, unit="steps") as advance:
            on_event = reporter(advance, err, given.get("time_limit"))
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
        summary(result)
