"""The paper's two sampling figures: window weights over time, and the predicted density.

``attention_figure`` shows, for each synthesised line, the handwriting above and
the window weights ``phi`` below (time across, characters down), like Graves'
figure of the soft window: a clean diagonal means the network read the text in
order, one character at a time. ``density_figure`` sums the 2D Gaussian
mixture predicted for every point, placed at the point it was predicted from,
on a grid in pen space, with the ink drawn over it (Graves' heatmap figure):
tight blobs along the ink are confidence, wide smears at stroke ends and word
gaps are the network unsure where the pen lands next.

Matplotlib's ``Figure`` with the Agg canvas (no pyplot, no global state),
imported inside the functions so the library stays cheap to import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwkit.sample import Density, SampledLine
from hwkit.strokes import offsets_to_points, points_to_strokes

GRID_COLUMNS = 640  # density grid resolution along the line; rows follow the aspect ratio
SIGMAS = 4.0  # each step's mixture is evaluated within this many std devs of its means


def density_grid(
    offsets: np.ndarray, density: Density, columns: int = GRID_COLUMNS
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Sum of the mixtures predicted for rows 1.. of a line, on a grid over the line.

    Row ``i``'s mixture describes the move from point ``i - 1``, so it is centred
    there. Each Gaussian is widened by half a grid cell (in quadrature): a sharp
    one (a high bias) would otherwise fall between cell centres and vanish,
    where this way it keeps its mass as one bright cell. Returns the grid ``(rows, columns)`` (y down) and its extent
    ``(x0, x1, y1, y0)`` in pen units, in matplotlib's ``imshow`` order.
    """
    points = offsets_to_points(offsets)[:, :2]
    pad = 0.05 * max(np.ptp(points[:, 0]), np.ptp(points[:, 1]), 1.0)
    lo, hi = points.min(0) - pad, points.max(0) + pad
    cell = (hi[0] - lo[0]) / columns
    shape = (max(1, int(np.ceil((hi[1] - lo[1]) / cell))), columns)
    grid = np.zeros(shape)
    ys = lo[1] + (np.arange(shape[0]) + 0.5) * cell
    xs = lo[0] + (np.arange(shape[1]) + 0.5) * cell
    for i in range(1, len(points)):
        w = density.weights[i]
        keep = w > 1e-4
        if not keep.any():
            continue
        mu = points[i - 1] + density.mu[i][keep]  # (m, 2)
        sigma = np.sqrt(density.sigma[i][keep] ** 2 + (cell / 2) ** 2)
        rho, w = density.rho[i][keep], w[keep]
        a = np.clip(np.floor(((mu - SIGMAS * sigma).min(0) - lo) / cell), 0, [shape[1], shape[0]]).astype(int)
        b = np.clip(np.ceil(((mu + SIGMAS * sigma).max(0) - lo) / cell) + 1, 0, [shape[1], shape[0]]).astype(int)
        if a[0] >= b[0] or a[1] >= b[1]:
            continue
        zx = (xs[a[0] : b[0]][None, None, :] - mu[:, 0, None, None]) / sigma[:, 0, None, None]
        zy = (ys[a[1] : b[1]][None, :, None] - mu[:, 1, None, None]) / sigma[:, 1, None, None]
        r = np.clip(rho, -0.999999, 0.999999)[:, None, None]
        one_minus = 1 - r**2
        quad = (zx**2 + zy**2 - 2 * r * zx * zy) / one_minus
        norm = w / (2 * np.pi * sigma[:, 0] * sigma[:, 1] * np.sqrt(one_minus[:, 0, 0]))
        grid[a[1] : b[1], a[0] : b[0]] += np.einsum("m,myx->yx", norm, np.exp(-0.5 * quad))
    return grid, (lo[0], hi[0], hi[1], lo[1])


def _figure(n_panels: int, height_ratios: Sequence[float], width: float = 10.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, sum(height_ratios)), dpi=110, layout="constrained")
    return fig, fig.subplots(n_panels, 1, gridspec_kw={"height_ratios": list(height_ratios)}, squeeze=False)[:, 0]


def _draw_ink(ax, offsets: np.ndarray, colour: str = "black", width: float = 1.0, alpha: float = 1.0) -> None:
    for stroke in points_to_strokes(offsets_to_points(offsets)):
        ax.plot(stroke[:, 0], stroke[:, 1], color=colour, lw=width, alpha=alpha, solid_capstyle="round")
    ax.set_aspect("equal")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()  # pen space is y down (an image's extent may have flipped it already)
    ax.set_axis_off()


def attention_figure(lines: Sequence[SampledLine], path: str | os.PathLike) -> Path:
    """For each line: its ink, and ``phi`` as a heatmap (points across, characters down)."""
    lines = [line for line in lines if line.phi is not None]
    if not lines:
        raise ValueError("attention needs lines from a synthesis network")
    ratios = []
    for line in lines:
        ratios += [1.2, 0.6 + 0.16 * (len(line.text) + 1)]
    fig, axes = _figure(2 * len(lines), ratios)
    for line, ink_ax, ax in zip(lines, axes[0::2], axes[1::2]):
        _draw_ink(ink_ax, line.offsets)
        ink_ax.set_title(line.text, loc="left", fontsize=10)
        phi = line.phi.T  # (chars + 1, points)
        image = ax.imshow(phi, aspect="auto", cmap="magma", interpolation="nearest", origin="upper")
        labels = [repr(c)[1:-1] if c != " " else "\u00b7" for c in line.text] + ["end"]  # space as a middle dot
        ax.set_yticks(range(len(labels)), labels, fontsize=7, family="monospace")
        ax.set_xlabel(f"point (stopped by {line.stop})")
        ax.set_ylabel("character")
        if line.prime_rows:
            ax.axvline(line.prime_rows - 0.5, color="cyan", lw=1, ls="--")
        fig.colorbar(image, ax=ax, label="window weight \u03c6", pad=0.01)
    fig.savefig(path)
    return Path(path)


def density_figure(lines: Sequence[SampledLine], path: str | os.PathLike) -> Path:
    """For each line: the summed predicted densities (log scale) with the ink drawn over them."""
    from matplotlib.colors import LogNorm

    panels = []
    for line in lines:
        grid, extent = density_grid(line.offsets, line.density)
        panels.append((line, grid, extent))
    ratios = [max(1.0, 10.0 * g.shape[0] / g.shape[1]) + 0.4 for _, g, _ in panels]
    fig, axes = _figure(len(panels), ratios)
    for ax, (line, grid, extent) in zip(axes, panels):
        top = grid.max() if grid.max() > 0 else 1.0
        ax.imshow(
            np.maximum(grid, top * 1e-4),
            extent=extent,
            cmap="viridis",
            norm=LogNorm(vmin=top * 1e-4, vmax=top),
            interpolation="bilinear",
        )
        _draw_ink(ax, line.offsets, colour="white", width=0.4, alpha=0.5)  # faint: the density is the subject
        ax.set_title(line.text or f"{len(line.offsets)} points", loc="left", fontsize=10)
    fig.savefig(path)
    return Path(path)
