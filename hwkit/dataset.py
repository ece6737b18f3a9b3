"""Torch access to a stroke store: a Dataset of lines, padding collate, bucketed batches.

Items arrive the way every model reads them (``strokes.model_input`` with the
store's train statistics), so training, sampling and ``hwkit inspect --batch`` all see the
same numbers. Randomness (crop windows, batch order) is a pure function of
``(seed, epoch, position)``, never of process state, so DataLoader workers and
DDP ranks agree without talking to each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hwkit.alphabet import Alphabet
from hwkit.errors import StoreError
from hwkit.store import Store
from hwkit.strokes import PEN_UP, denormalise, model_input

# Shuffled epochs sort lines by length inside pools of this many batches: batches
# stay tight (little padding) while their membership still changes every epoch.
POOL_BATCHES = 50


@dataclass
class Item:
    """One line as a model reads it: normalised offsets ``(n, 3)`` and character codes ``(u,)``."""

    offsets: torch.Tensor
    chars: torch.Tensor
    line_id: str
    index: int


class StrokeDataset(torch.utils.data.Dataset):
    """The lines of one split of a store.

    ``crop`` cuts lines longer than ``crop`` points to a random window of exactly
    ``crop`` points that starts on a stroke's first point (the window's first
    row becomes the start token), the way
    Graves trained the prediction network; ``chars`` stay the whole line's text,
    so crops suit the prediction net, not synthesis. Call ``set_epoch`` before each
    epoch to move the windows; with ``persistent_workers`` the workers keep the
    epoch they were started with. ``alphabet`` and ``stats`` (``{"mean", "std"}``)
    default to the store's: a fine-tuned or foreign model passes its own.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike,
        split: str,
        *,
        in_memory: bool = False,
        crop: int | None = None,
        seed: int = 0,
        alphabet: Alphabet | None = None,
        stats: Mapping[str, Sequence[float]] | None = None,
    ):
        self.store = store if isinstance(store, Store) else Store(store)
        # a model's own alphabet and normalisation, when they are not the store's (fine-tuning, evaluation)
        self.alphabet = alphabet if alphabet is not None else self.store.alphabet
        if in_memory:
            self.store.load()
        self.split = split
        self.indices = self.store.split(split)
        if not len(self.indices):
            raise StoreError(f"{self.store.path}: split {split!r} has no lines")
        if crop is not None and crop < 2:
            raise ValueError(f"crop must be at least 2 points (a start token and a target), got {crop}")
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        full = np.diff(self.store.line_offsets)[self.indices]
        self.lengths = full if crop is None else np.minimum(full, crop)
        self.mean = np.asarray(stats["mean"] if stats else self.store.mean, np.float32)
        self.std = np.asarray(stats["std"] if stats else self.store.std, np.float32)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Item:
        index = int(self.indices[position])
        offsets = self.store.offsets(index)
        if self.crop is not None and len(offsets) > self.crop:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            # a window starts where a stroke starts, so its start token stands where the pen lands, as at a line's
            # start, and the stroke context (``models.stroke_context``) counts the stroke from its first point
            lifts = np.flatnonzero(offsets[: len(offsets) - self.crop, PEN_UP] > 0.5)
            start = int(rng.choice(np.concatenate([[0], lifts + 1])))
            offsets = offsets[start : start + self.crop]
        x = model_input(offsets, self.mean, self.std)
        chars = self.alphabet.encode(self.store.texts[index])
        return Item(torch.from_numpy(x), torch.from_numpy(chars), self.store.line_ids[index], index)


@dataclass
class Batch:
    """Padded items; masks are True on real points and characters."""

    offsets: torch.Tensor  # (B, T, 3) float32, zero padded
    point_mask: torch.Tensor  # (B, T) bool
    chars: torch.Tensor  # (B, U) int64, padded with 0 (alphabet.PAD)
    char_mask: torch.Tensor  # (B, U) bool
    line_ids: list[str]
    indices: torch.Tensor  # (B,) int64 store indices

    def _map(self, fn) -> Batch:
        return Batch(
            fn(self.offsets), fn(self.point_mask), fn(self.chars), fn(self.char_mask), self.line_ids, fn(self.indices)
        )

    def to(self, device: torch.device | str) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True), so ``to(cuda)`` can copy asynchronously."""
        return self._map(torch.Tensor.pin_memory)

    @property
    def padding_fraction(self) -> float:
        """Share of the point grid that is padding: compute spent on nothing."""
        return 1.0 - float(self.point_mask.float().mean()) if self.point_mask.numel() else 0.0


def _pad(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad along the first axis, in numpy: torch's threaded fill/copy kernels cost
    more than the copying itself at these sizes (and far more on a busy machine)."""
    lengths = np.array([len(s) for s in seqs])
    first = seqs[0].numpy()
    padded = np.zeros((len(seqs), lengths.max(), *first.shape[1:]), dtype=first.dtype)
    for row, seq, n in zip(padded, seqs, lengths):
        row[:n] = seq.numpy()
    return torch.from_numpy(padded), torch.from_numpy(np.arange(padded.shape[1]) < lengths[:, None])


def collate(items: list[Item]) -> Batch:
    offsets, point_mask = _pad([item.offsets for item in items])
    chars, char_mask = _pad([item.chars for item in items])
    return Batch(
        offsets,
        point_mask,
        chars,
        char_mask,
        [item.line_id for item in items],
        torch.tensor([item.index for item in items], dtype=torch.int64),
    )


def unbatch(batch: Batch, mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    """The batch's lines back in raw pen units, padding removed (start rows stay ``(0, 0)``)."""
    offsets = batch.offsets.detach().cpu().numpy()
    mask = batch.point_mask.cpu().numpy()
    lines = []
    for x, m in zip(offsets, mask):
        line = denormalise(x[m], mean, std)
        line[0, :2] = 0.0
        lines.append(line)
    return lines


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of dataset positions whose lines have similar lengths.

    Each epoch (seeded by ``(seed, epoch)``): shuffle, sort by length inside pools of
    ``POOL_BATCHES`` batches, cut into batches, shuffle the batches. Without
    ``shuffle`` all lines are sorted once (tightest batches, fixed order: for
    evaluation). Batch sizes are as even as possible and never above
    ``batch_size``. Ranks take every ``num_replicas``-th batch: disjoint shares with
    equal batch counts, as DDP needs. Without ``drop_last`` the batch count is
    rounded up to a multiple of ``num_replicas`` by making batches smaller, so
    every line is used exactly once; with it, lines that do not fill a batch on
    every rank are left out (a different random few each epoch).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in 0..{num_replicas - 1}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        n = len(self.lengths)
        if drop_last:
            self._n_batches = n // batch_size // num_replicas * num_replicas
        else:
            self._n_batches = -(-n // batch_size)
            self._n_batches += -self._n_batches % num_replicas
            if self._n_batches > n:
                raise ValueError(
                    f"{n} lines cannot give {num_replicas} ranks equal batch counts without repeats; "
                    "use drop_last or fewer ranks"
                )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._n_batches // self.num_replicas

    def batches(self) -> list[np.ndarray]:
        """This epoch's batches for every rank, in order (rank ``r`` takes ``[r::num_replicas]``)."""
        nb = self._n_batches
        if nb == 0:
            return []
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        if self.drop_last:
            order = order[: nb * self.batch_size]
        sizes = np.full(nb, len(order) // nb)
        sizes[: len(order) % nb] += 1
        cuts = np.concatenate([[0], np.cumsum(sizes)])
        pool = POOL_BATCHES if self.shuffle else nb
        for first in range(0, nb, pool):
            lo, hi = cuts[first], cuts[min(first + pool, nb)]
            segment = order[lo:hi]
            order[lo:hi] = segment[np.argsort(self.lengths[segment], kind="stable")]
        batches = [order[cuts[i] : cuts[i + 1]] for i in range(nb)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(nb)]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches()[self.rank :: self.num_replicas]:
            yield batch.tolist()
