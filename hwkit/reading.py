"""Online handwriting -> text, with a trained recognizer (``hwkit read``, and the judge of ``hwkit evaluate``).

Ink comes in raw pen units (the units of the store the recognizer learnt from)
and is normalised with the checkpoint's own statistics, exactly as in training.
Sources a person can name: lines of a store (by id, or a whole split), the
``.npz``, ``.json`` and ``.inkml`` files ``hwkit sample`` writes (and InkML from
other tools), style files, and IAM-OnDB stroke files (``.xml``, what a recorder
in that layout writes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit.checkpoint import Checkpoint, find_store
from hwkit.errors import CheckpointError, HwkitError, OptionError
from hwkit.strokes import in_model_units

BATCH_LINES = 32  # lines per forward pass: enough to fill the kernels, bounded padding


@dataclass
class Reading:
    """One line read: where it came from, what the recognizer read, and its known text if any."""

    source: str
    text: str
    truth: str | None = None
    scaled: float = 1.0  # the factor a line in other units was scaled by to the recognizer's (see below)


class Reader:
    """A recognizer checkpoint loaded once, reading batches of lines."""

    def __init__(self, checkpoint: Checkpoint, device: str = "auto"):
        from hwkit.distributed import pick_device

        if checkpoint.kind != "recognizer":
            raise CheckpointError(f"{checkpoint.name}: a {checkpoint.kind} model writes handwriting; "
                                  "reading needs a recognizer (hwkit train --model recognizer)")  # fmt: skip
        self.checkpoint = checkpoint
        self.device = pick_device(device, None)
        self.model = checkpoint.build_model(self.device)
        self.mean = np.asarray(checkpoint.stats["mean"], np.float32)
        self.std = np.asarray(checkpoint.stats["std"], np.float32)

    def read(self, lines: Sequence[np.ndarray]) -> list[str]:
        """The text of each line (raw offsets ``(n, 3)``, pen units), greedy CTC decoding. A line of fewer
        than two points reads as nothing: an undertrained model can write one, and it is a misreading to
        count, not an error."""
        import torch

        from hwkit.dataset import Item, collate
        from hwkit.recognizer import greedy_decode
        from hwkit.strokes import model_input

        lines = [_checked(line) for line in lines]
        by_position = {i: "" for i, line in enumerate(lines) if len(line) < 2}
        inked = [int(i) for i in np.argsort([len(line) for line in lines]) if int(i) not in by_position]
        empty = torch.zeros(0, dtype=torch.int64)
        for start in range(0, len(inked), BATCH_LINES):  # by length: similar lengths share a batch, little padding
            chunk = inked[start : start + BATCH_LINES]
            items = [Item(torch.from_numpy(model_input(lines[i], self.mean, self.std)), empty, "", i)
                     for i in chunk]  # fmt: skip
            batch = collate(items).to(self.device)
            with torch.inference_mode():
                log_probs, frames = self.model(batch.offsets, batch.point_mask)
            for i, codes in zip(chunk, greedy_decode(log_probs, frames)):
                by_position[int(i)] = self.checkpoint.alphabet.decode(codes)
        return [by_position[i] for i in range(len(lines))]


def _checked(offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(offsets, np.float32)
    if offsets.ndim != 2 or offsets.shape[1] != 3 or not np.isfinite(offsets).all():
        raise HwkitError("a line must be finite rows of (dx, dy, pen_up)")
    return offsets


def read(
    checkpoint: str | os.PathLike,
    *,
    files: Sequence[str | os.PathLike] = (),
    store: str | os.PathLike | None = None,
    line_ids: Sequence[str] = (),
    split: str | None = None,
    device: str = "auto",
) -> list[Reading]:
    """Read ink with the recognizer at ``checkpoint`` (a file or run folder).

    ``files``: ``.npz``/``.json`` from ``hwkit sample``, style files, IAM-OnDB stroke
    ``.xml`` files. ``line_ids`` or a whole ``split`` of ``store`` (default: the
    store the recognizer was trained on), each with its transcription as ``truth``.
    A line plainly in other units than the recognizer's (``strokes.in_model_units``) is scaled to them
    first, and its ``scaled`` says by how much.
    """
    from hwkit.checkpoint import find_checkpoint

    if not files and not line_ids and split is None:
        raise OptionError("files", "nothing to read: name files, --lines of a store, or a --split")
    reader = Reader(Checkpoint.load(find_checkpoint(checkpoint, kind="recognizer")), device)
    sources: list[tuple[str, np.ndarray, str | None]] = []
    for path in files:
        sources += load_ink(path)
    if line_ids or split is not None:
        from hwkit.store import Store

        opened = Store(find_store(reader.checkpoint, store))
        indices = [opened.index_of(i) for i in line_ids]
        if split is not None:
            indices += [int(i) for i in opened.split(split)]
        sources += [(opened.line_ids[i], opened.offsets(i), opened.texts[i]) for i in indices]
    std = reader.checkpoint.stats["std"]
    matched = [in_model_units(offsets, std) for _, offsets, _ in sources]  # ink in mm read as ink, not as a dot
    texts = reader.read([offsets for offsets, _ in matched])
    return [Reading(name, text, truth, factor) for (name, _, truth), text, (_, factor) in zip(sources, texts, matched)]


def load_ink(path: str | os.PathLike) -> list[tuple[str, np.ndarray, str | None]]:
    """The lines of one file as ``(name, offsets in pen units, known text or None)``: a file of one line
    is named by its file name, the lines of a file of several ``NAME#k``, counted from 0."""
    path = Path(path)
    if not path.is_file():
        raise HwkitError(f"{path}: no such file")
    lines = _lines_of(path)
    if len(lines) == 1:
        return [(path.name, *lines[0])]
    return [(f"{path.name}#{k}", offsets, text) for k, (offsets, text) in enumerate(lines)]


def _lines_of(path: Path) -> list[tuple[np.ndarray, str | None]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                flat, bounds = data["offsets"], data["line_offsets"]
                texts = data["text"].tolist() if "text" in data else [None] * (len(bounds) - 1)
            return [(flat[bounds[k] : bounds[k + 1]], texts[k] or None) for k in range(len(bounds) - 1)]
        if suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("format") == "hwkit-style":
                from hwkit.style import load_style

                prime = load_style(path)
                return [(prime.offsets, prime.text or None)]
            return [(np.asarray(line["offsets"], np.float32), line.get("text") or None) for line in doc["lines"]]
        if suffix == ".inkml":
            from hwkit.inkml import InkLine, parse_inkml

            found = parse_inkml(path.read_bytes(), path.name)
            lines = [(item.offsets, item.text or None) for item in found if isinstance(item, InkLine)]
            if not lines:
                raise HwkitError(f"{path}: no line of ink to read ({', '.join({item.reason for item in found})})")
            return lines
        if suffix == ".xml":
            from hwkit.config import PrepareParams
            from hwkit.prepare import parse_chunk

            (result,) = parse_chunk(None, [(path.name, path.read_bytes())], PrepareParams().max_jump)
            if isinstance(result, str):
                raise HwkitError(f"{path}: not a readable stroke file ({result})")
            return [(result, None)]
    except (KeyError, TypeError, ValueError, json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise HwkitError(f"{path}: not a file of handwriting hwkit reads ({type(exc).__name__})") from None
    raise HwkitError(f"{path}: unknown kind of file {suffix!r} (read .npz, .json, .inkml, .xml)")
