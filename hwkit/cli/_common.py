"""Console, progress and path conventions shared by the commands.

Data output (tables, JSON, paths written) goes to stdout; progress and notes go
to stderr. When stderr is not a terminal (a log file, a batch job) the bar
turns into a plain status line every ``LOG_EVERY_S`` seconds, so a long job
logged to a file still shows it is alive and how far it is.

Both consoles soft-wrap: a message is printed as one line, however long, and the
terminal (if any) wraps it, so a path or a message piped to a log is never cut
in two. Tables still fit the console's width (80 columns when not a terminal).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

LOG_EVERY_S = 30.0


def stdout_console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(description: str, total: int | None = None, unit: str = "") -> Iterator:
    """Yield ``advance(n=1, status=None, total=None, deadline=None)``; a rich bar on a terminal, log lines
    otherwise. ``deadline`` (``time.monotonic()`` seconds): the work stops then at the latest (``train
    --time-limit``), so the time left shown is never more than what is left to it."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
    from rich.text import Text

    class TimeLeft(ProgressColumn):
        def render(self, task) -> Text:
            left = time_left(task)
            if left is None:
                return Text("-:--:--", style="progress.remaining")
            minutes, seconds = divmod(int(left), 60)
            return Text(f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}", style="progress.remaining")

    console = stderr_console()
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeLeft(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total, status="", deadline=None)

        def advance(n: int = 1, status: str | None = None, total: int | None = None,
                    deadline: float | None = None) -> None:  # fmt: skip
            kwargs = {} if status is None else {"status": status}
            if total is not None:
                kwargs["total"] = total
            if deadline is not None:
                kwargs["deadline"] = deadline
            bar.update(task, advance=n, **kwargs)
            if n and not console.is_terminal and time.monotonic() >= next_log[0]:
                next_log[0] = time.monotonic() + LOG_EVERY_S
                console.print(_log_line(description, bar.tasks[0], unit))

        next_log = [time.monotonic() + LOG_EVERY_S]
        yield advance


def _log_line(description: str, task, unit: str) -> str:
    """What a progress bar shows, as one plain line for a log."""
    done = f"{task.completed:,.0f}" + (f"/{task.total:,.0f}" if task.total else "") + (f" {unit}" if unit else "")
    eta = time_left(task)
    left = f"  ~{int(eta) // 60}m {int(eta) % 60:02d}s left" if eta is not None and task.total else ""
    status = f"  {task.fields['status']}" if task.fields.get("status") else ""
    return escape(f"{description}: {done}{left}{status}")


def time_left(task) -> float | None:
    """Seconds left by the rate so far (rich's estimate), but never past the task's ``deadline``."""
    import time

    eta, deadline = task.time_remaining, task.fields.get("deadline")
    if deadline is None:
        return eta
    cut = max(0.0, deadline - time.monotonic())
    return cut if eta is None else min(eta, cut)


def threads_option(command):
    """``--threads N``: torch's CPU threads for this command (a process setting, applied before any work)."""
    import click

    def apply(ctx, param, value):
        if value is not None:
            import torch

            torch.set_num_threads(value)
        return value

    from hwkit.config import THREADS_HELP

    return click.option("--threads", type=click.IntRange(min=1), expose_value=False, callback=apply,
                        help=THREADS_HELP)(command)


def read_text(file, flag: str) -> str:
    """All of an opened ``click.File`` (UTF-8); bytes that are not UTF-8 are a usage error naming the flag."""
    import click

    try:
        return file.read()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{file.name}: not UTF-8 text (byte {exc.start + 1})", param_hint=flag) from None


def read_lines(file, flag: str) -> list[str]:
    """The lines of an opened ``click.File``, as ``read_text`` reads it."""
    return read_text(file, flag).splitlines()


def escape(text: str) -> str:
    """Dataset text is data, never rich markup."""
    from rich.markup import escape as _escape

    return _escape(text)


def given(ctx: click.Context, names) -> list[str]:
    """The options among ``names`` set on the command line, as flags."""
    from click.core import ParameterSource

    found = []
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE:
            found.append(param.opts[0])
    return found
