"""The stroke store: one HDF5 file per prepared corpus (format ``hwkit-strokes`` v1).

Ragged lines are one flat ``/points`` array plus ``/line_offsets`` (CSR
``indptr``), never one dataset per line: that keeps 12,000 lines at a few
datasets and makes whole-store reads one call.

    /points        float32 (P, 3)  dx, dy, pen_up (raw units, y down)
    /line_offsets  int64 (N+1)
    /text, /line_id  utf-8 strings (N);  /writer_id int32 (N), -1 = unknown
    /splits/{train,valid,test}  int64 line indices
    /alphabet      utf-8 string, characters in code order (see ``alphabet.py``)
    /stats         attrs mean, std of dx, dy over the train split (moves longer than
                   prepare's ``stats_max_move`` left out)
    /skipped/{line_id,reason}  every input left out, and why
    root attrs     format, format_version, hwkit_version, created_utc, source,
                   source_fingerprint, content_sha256, prepare_params (JSON)

Writes go to a temporary file beside the target and are renamed into place, so
an interrupted write never leaves a half store under the real name. They stream:
``write_store`` takes lines whose points may live on disk (``Spool``, where
``prepare`` parks each line as it is parsed) and writes, hashes and sums them a
block at a time, so memory does not grow with the corpus. Readers
open the file lazily in each process and drop the handle when pickled, so a
``Store`` can be handed to DataLoader workers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit import __version__
from hwkit.alphabet import Alphabet
from hwkit.errors import StoreError
from hwkit.files import atomic_path, check_can_write, make_folder, remove_stale_temps
from hwkit.strokes import offset_stats

FORMAT = "hwkit-strokes"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")


WRITE_BLOCK = 1 << 20  # points gathered before each write to the store (12 MB)


@dataclass(frozen=True)
class Line:
    """One handwritten text line: offsets ``(n, 3)`` float32 in raw units and its labels."""

    offsets: np.ndarray
    text: str
    line_id: str
    writer_id: int

    @property
    def length(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True)
class SpooledLine:
    """A line whose points wait in a ``Spool`` file: the labels in memory, the points read when asked."""

    spool: Spool
    start: int  # first row in the spool
    length: int
    text: str
    line_id: str
    writer_id: int

    @property
    def offsets(self) -> np.ndarray:
        return self.spool.read(self.start, self.length)


class Spool:
    """Lines parked in a temporary file beside the store to be while a corpus is read (float32
    rows appended), so that reading a corpus of any size holds only its labels in memory.

    Use as a context manager: the file is removed on exit, whatever happens. Its
    name is one of the store's temp names (``.NAME.tmp-PID-spool.h5``), so if the
    process is killed the next write of that store clears it (``files.remove_stale_temps``).
    """

    def __init__(self, store_path: str | os.PathLike):
        store_path = Path(store_path)
        make_folder(store_path.parent)
        remove_stale_temps(store_path)
        self.path = store_path.with_name(f".{store_path.stem}.tmp-{os.getpid()}-spool{store_path.suffix}")
        self._file = open(self.path, "w+b")  # noqa: SIM115  (closed in __exit__)
        self.rows = 0
        self.lines: list[SpooledLine] = []

    def add(self, offsets: np.ndarray, text: str, line_id: str, writer_id: int) -> None:
        data = np.ascontiguousarray(offsets, dtype=np.float32).reshape(-1, 3)
        self._file.seek(0, os.SEEK_END)
        self._file.write(data.tobytes())
        self.lines.append(SpooledLine(self, self.rows, len(data), text, line_id, writer_id))
        self.rows += len(data)

    def read(self, start: int, length: int) -> np.ndarray:
        self._file.flush()
        self._file.seek(start * 12)
        data = np.frombuffer(self._file.read(length * 12), dtype=np.float32)
        return data.reshape(length, 3)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _content_digest(point_chunks: Iterable[np.ndarray], texts: Sequence[str]):
    """``content_sha256``: the float32 points in order, then the texts joined by NULs."""
    digest = hashlib.sha256()
    for chunk in point_chunks:
        digest.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    digest.update("\x00".join(texts).encode("utf-8"))
    return digest


def check_writable(path: str | os.PathLike, force: bool) -> None:
    """Refuse to replace a store without ``force``, or to write where no folder can be made; callers
    check first, before spending work on it."""
    if Path(path).exists() and not force:
        raise StoreError(f"{path}: already exists (use --force to replace it)")
    check_can_write(path)


def write_store(
    path: str | os.PathLike,
    lines: Sequence[Line],
    splits: Mapping[str, Sequence[int]],
    skipped: Sequence[tuple[str, str]] = (),
    *,
    source: str,
    source_fingerprint: str = "",
    prepare_params: Mapping | None = None,
    force: bool = False,
    stats_max_move: float | None = None,
) -> Path:
    """Write ``lines`` (``Line`` or ``SpooledLine``) as a store at ``path`` atomically; return the path.

    The alphabet is every character of every text; normalisation statistics come
    from the train split only, moves longer than ``stats_max_move`` left out.
    Points are read, written and hashed a block at a time. Refuses to replace an
    existing file unless ``force``.
    """
    import h5py

    path = Path(path)
    check_writable(path, force)
    n = len(lines)
    splits = {name: np.asarray(splits.get(name, ()), dtype=np.int64) for name in SPLITS}
    for name, idx in splits.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise StoreError(f"split {name!r} refers to lines outside 0..{n - 1}")
    lengths = np.fromiter((line.length for line in lines), dtype=np.int64, count=n)
    line_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    texts = [line.text for line in lines]
    mean, std = offset_stats((lines[i].offsets for i in splits["train"]), stats_max_move)

    strings = h5py.string_dtype("utf-8")
    try:
        with atomic_path(path, replace=force) as tmp:
            with h5py.File(tmp, "w") as f:
                total = int(line_offsets[-1])
                points = f.create_dataset("points", shape=(total, 3), dtype=np.float32,
                                          chunks=(min(max(total, 1), 65536), 3))  # fmt: skip

                def written() -> Iterator[np.ndarray]:
                    for first, block in _blocks(lines):
                        points[first : first + len(block)] = block
                        yield block

                digest = _content_digest(written(), texts)
                f.attrs.update(
                    format=FORMAT,
                    format_version=FORMAT_VERSION,
                    hwkit_version=__version__,
                    created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    source=source,
                    source_fingerprint=source_fingerprint,
                    content_sha256=digest.hexdigest(),
                    prepare_params=json.dumps(dict(prepare_params or {}), sort_keys=True),
                )
                f.create_dataset("line_offsets", data=line_offsets)
                f.create_dataset("text", data=texts, dtype=strings)
                f.create_dataset("line_id", data=[line.line_id for line in lines], dtype=strings)
                f.create_dataset("writer_id", data=np.array([line.writer_id for line in lines], np.int32))
                for name, idx in splits.items():
                    f.create_dataset(f"splits/{name}", data=idx)
                f.create_dataset("alphabet", data=Alphabet.from_texts(texts).chars, dtype=strings)
                stats = f.create_group("stats")
                stats.attrs.update(mean=mean, std=std)
                f.create_dataset("skipped/line_id", data=[s[0] for s in skipped], dtype=strings)
                f.create_dataset("skipped/reason", data=[s[1] for s in skipped], dtype=strings)
    except FileExistsError:
        raise StoreError(f"{path}: appeared while this store was written (another prepare?); --force replaces it") from None
    return path


def _blocks(lines: Sequence) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, points)`` blocks of about ``WRITE_BLOCK`` rows, the lines' points in order."""
    first, parts, size = 0, [], 0
    for line in lines:
        parts.append(np.asarray(line.offsets, dtype=np.float32))
        size += len(parts[-1])
        if size >= WRITE_BLOCK:
            yield first, np.concatenate(parts)
            first, parts, size = first + size, [], 0
    if parts:
        yield first, np.concatenate(parts)


class Store:
    """Read access to a stroke store; validated on construction.

    Metadata (texts, ids, offsets index, splits) is read once into memory; points
    are read on demand through a handle opened lazily in the calling process.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None
        self._file_pid = None
        self._points_h5 = None
        self._points: np.ndarray | None = None
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store (run `hwkit prepare` first)")
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                self._read_metadata(f)
        except StoreError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{self.path}: not a readable hwkit store ({exc})") from None

    def _read_metadata(self, f) -> None:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise StoreError(f"{self.path}: not an hwkit stroke store (format={fmt!r})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{self.path}: store format version {version} is not supported "
                f"(this hwkit reads version {FORMAT_VERSION}; re-run `hwkit prepare`)"
            )
        self.attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        self.prepare_params = json.loads(self.attrs.get("prepare_params", "{}"))
        self.line_offsets = f["line_offsets"][()]
        self.texts = list(f["text"].asstr()[()])
        self.line_ids = list(f["line_id"].asstr()[()])
        self.writer_ids = f["writer_id"][()]
        self.splits = {name: f[f"splits/{name}"][()] for name in SPLITS}
        self.alphabet = Alphabet(f["alphabet"].asstr()[()])
        self.mean = np.asarray(f["stats"].attrs["mean"], dtype=np.float64)
        self.std = np.asarray(f["stats"].attrs["std"], dtype=np.float64)
        self.skipped = list(zip(f["skipped/line_id"].asstr()[()], f["skipped/reason"].asstr()[()]))
        shape = f["points"].shape
        self._check(shape)

    def _check(self, points_shape: tuple[int, ...]) -> None:
        o = self.line_offsets
        n = len(o) - 1
        problems = []
        if len(points_shape) != 2 or points_shape[1] != 3:
            problems.append(f"points has shape {points_shape}, expected (P, 3)")
        if n < 0 or o[0] != 0 or o[-1] != points_shape[0] or np.any(np.diff(o) < 0):
            problems.append("line_offsets do not index points (must rise from 0 to the point count)")
        for name, values in (("text", self.texts), ("line_id", self.line_ids), ("writer_id", self.writer_ids)):
            if len(values) != n:
                problems.append(f"{name} has {len(values)} entries for {n} lines")
        for name, idx in self.splits.items():
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                problems.append(f"split {name!r} refers to lines outside the store")
        if len(self.splits.get("train", ())):  # an empty train split has no statistics to speak of
            stats = np.concatenate([np.ravel(self.mean), np.ravel(self.std)])
            if stats.size != 4 or not np.isfinite(stats).all() or np.min(self.std) <= 0:
                problems.append("the train statistics are not two finite means and two positive std devs")
        if problems:
            raise StoreError(f"{self.path}: inconsistent store: {'; '.join(problems)}")

    # -- lazy, per-process handle ------------------------------------------------

    def _h5(self):
        if self._file is None or self._file_pid != os.getpid():
            import h5py

            self._file = h5py.File(self.path, "r")
            self._file_pid = os.getpid()
            # kept open: reopening /points for every line read costs ~25x the read,
            # because HDF5 drops a dataset's chunk cache when its last handle closes
            self._points_h5 = self._file["points"]
        return self._file

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_file_pid"] = None
        state["_points_h5"] = None
        return state

    def close(self) -> None:
        if self._file is not None and self._file_pid == os.getpid():
            self._file.close()
        self._file = None
        self._points_h5 = None

    def verify(self, chunk: int = 1 << 20) -> None:
        """Check the points and texts against ``content_sha256`` (reading the points in chunks, so
        memory stays flat; a loaded store is hashed where it lies); ``StoreError`` when flipped bits or
        a zeroed block changed them."""
        points = self._points if self._points is not None else self._h5()["points"]
        chunks = (points[i : i + chunk] for i in range(0, len(points), chunk))
        if _content_digest(chunks, self.texts).hexdigest() != self.fingerprint:
            raise StoreError(f"{self.path}: damaged: its points or texts no longer match the content_sha256 "
                             "recorded when it was written; prepare it again")  # fmt: skip

    def load(self) -> Store:
        """Read all points into memory (for small stores), once; later reads never touch the file."""
        if self._points is None:
            self._points = self._h5()["points"][()]
        return self

    # -- access ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.line_offsets) - 1

    @property
    def n_points(self) -> int:
        return int(self.line_offsets[-1])

    @property
    def source(self) -> str:
        return str(self.attrs.get("source", ""))

    @property
    def fingerprint(self) -> str:
        return str(self.attrs.get("content_sha256", ""))

    def reference(self) -> dict[str, str]:
        """Where data came from, as checkpoints and style files record it: path, fingerprint, source."""
        return {"path": str(self.path), "fingerprint": self.fingerprint, "source": self.source}

    def offsets(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"line {i} out of range 0..{len(self) - 1}")
        a, b = self.line_offsets[i], self.line_offsets[i + 1]
        if self._points is None:
            self._h5()
        source = self._points if self._points is not None else self._points_h5
        return np.asarray(source[a:b], dtype=np.float32)

    def line(self, i: int) -> Line:
        return Line(self.offsets(i), self.texts[i], self.line_ids[i], int(self.writer_ids[i]))

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise StoreError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})")
        return self.splits[name]

    def iter_split(self, name: str) -> Iterator[Line]:
        for i in self.split(name):
            yield self.line(int(i))

    def index_of(self, line_id: str) -> int:
        try:
            return self.line_ids.index(line_id)
        except ValueError:
            raise StoreError(f"{self.path}: no line with id {line_id!r}") from None
