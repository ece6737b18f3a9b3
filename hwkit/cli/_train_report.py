"""What ``hwkit train`` prints: the library's progress events on stderr, the final summary on stdout."""

from __future__ import annotations

import time

from hwkit.cli._common import escape, stdout_console


def reporter(advance, err, time_limit: float | None):
    """The library's progress events as a bar (steps) and lines (start, validation, notes) on stderr."""
    smooth: list[float | None] = [None]
    started = time.monotonic()

    def on_event(event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            limit[0] = time_limit or event.get("time_limit")
            advance(0, total=event["total_steps"], deadline=started + limit[0] if limit[0] else None)
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
                status += f"  time limit in {left // 3600}h {left % 3600 // 60:02d}m" if left >= 60 else f"  time limit in {left}s"
            advance(1, status=status)
        elif kind == "valid":
            mark = ("" if event.get("cer") is None else f"  CER {event['cer']:.1%}") + ("  (best)" if event["best"] else "")
            err.print(f"epoch {event['epoch']:.2f}  step {event['step']}  valid {event['nats_per_line']:.1f} "
                      f"nats/line  {event['nats_per_point']:.3f} nats/point{mark}")  # fmt: skip
        elif kind == "note":
            err.print(f"note: {escape(event['text'])}")

    limit: list[float | None] = [time_limit]
    return on_event


# What to run on a finished run, by the kind of model it trained: each works as printed.
NEXT = {
    "prediction": "hwkit sample {run} --png",
    "synthesis": 'hwkit sample {run} --text "hello" --png',
    "recognizer": "hwkit read {run} --split test",
}


def summary(result) -> None:
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
        table.add_row("next", escape(NEXT[result.kind].format(run=result.run_dir)))
    stdout_console().print(table)
