"""Loss curves of a training run (matplotlib, Agg backend, imported lazily).

Train loss is plotted per logged step and validation loss per epoch on one
axis, both in nats per point: that unit is comparable between cropped training
windows and whole validation lines, where nats per line are not. A short
curve (a run stopped after its first records) is drawn with markers, so that
even a single record shows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hwkit.files import atomic_path

# Train curves with fewer records than this get a marker on each one: a line
# through one point is invisible, and a few points are easier to read as dots.
MARKERS_BELOW = 20


def plot_losses(metrics: Sequence[dict], stem: str | os.PathLike) -> list[Path]:
    """Draw ``metrics`` (records of ``metrics.jsonl``) to ``<stem>.png`` and ``<stem>.svg``; return both paths."""
    fig = loss_figure(metrics)
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    return paths


def loss_figure(metrics: Sequence[dict]):
    """The loss plot of ``metrics`` as a matplotlib ``Figure`` (not yet saved)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    train = [m for m in metrics if m.get("kind") == "train"]
    valid = [m for m in metrics if m.get("kind") == "valid"]
    fig = Figure(figsize=(7, 4), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    if train:
        ax.plot([m["step"] for m in train], [m["nats_per_point"] for m in train], lw=1, color="tab:blue",
                marker="o" if len(train) < MARKERS_BELOW else None, ms=3,
                label="train (mean since last record)")
    if valid:
        ax.plot([m["step"] for m in valid], [m["nats_per_point"] for m in valid], "o-", ms=4, color="tab:orange",
                label="valid (whole lines)")
        best = min(valid, key=lambda m: m["nats_per_line"])
        ax.plot([best["step"]], [best["nats_per_point"]], "*", ms=12, color="tab:red",
                label=f"best: {best['nats_per_line']:.1f} nats/line")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (nats per point, lower is better)")
    ax.margins(0.08)  # no point on an edge, where the legend could hide it
    steps = [m["step"] for m in train + valid]
    if steps and max(steps) - min(steps) < 2:  # a step or two: whole steps either side, not 0.96-1.04
        ax.set_xlim(min(steps) - 1, max(steps) + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.grid(alpha=0.3)
    if train or valid:
        ax.legend(loc="best")  # where it covers the fewest points
    return fig
