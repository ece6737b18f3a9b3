"""IAM-OnDB (or the demo corpus, which has its layout) -> a stroke store.

parse -> clean -> split -> write. Every decision is recorded in the store's
``prepare_params`` and every input left out lands in ``/skipped`` with a short
reason, so a store explains itself without the command line that made it. Bad
input never stops the run: only a missing layout, an existing store (without
``force``), a lineStrokes or ascii archive of which nothing can be read, or a
corpus with no usable line at all is an error. Damage that costs lines (a
truncated archive), an empty train or valid split, and InkML lines in different
units come back as warnings.

Labels (transcriptions, writers, task lists) are small and read in this
process; stroke files, nearly all of the work, are parsed and cleaned in chunks
by a pool of worker processes.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import multiprocessing.pool
import os
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwkit import iam
from hwkit.alphabet import Alphabet
from hwkit.config import DemoParams, PrepareParams
from hwkit.errors import CorpusError, OptionError
from hwkit.progress import Progress, ignore
from hwkit.store import SPLITS, Spool, SpooledLine, check_writable, write_store
from hwkit.strokes import drop_repeats, points_to_offsets, split_jumps, step_lengths
from hwkit.workers import default_jobs, in_order, worker_pool

# Skip reasons decided here (iam.py holds those found while reading files).
NO_ASCII = "no ascii file"
NO_LINE = "no transcription line"
EMPTY_TEXT = "empty transcription"
TOO_FEW = "too few points"
DUPLICATE = "duplicate line id"

CHUNK_FILES = 64  # stroke files per worker task: ~3 MB, big enough to amortise numpy's per-call cost
TRAIN_LISTS = ("trainset", "testset_t", "testset_f")
# A corpus this small or larger always gets valid and test lines (a few dozen lines of one's own hand do).
MIN_LINES_TO_SPLIT = 5
VALID_LISTS = ("testset_v",)


@dataclass
class PrepareReport:
    """What a prepare made: counts for the summary, and every input left out with its reason."""

    output: Path
    source: str
    fingerprint: str
    files: int
    lines: dict[str, int]
    points: int
    writers: int
    alphabet_size: int
    split_rule: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """One line each, for stderr: damaged archives, an empty train or valid split."""

    def skipped_by_reason(self) -> dict[str, list[str]]:
        """Reason -> the names left out for it, most frequent reason first."""
        by_reason: dict[str, list[str]] = {}
        for name, reason in self.skipped:
            by_reason.setdefault(reason, []).append(name)
        return dict(sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def to_json(self) -> dict:
        data = asdict(self)
        data["output"] = str(self.output)
        data["skipped"] = {reason: len(names) for reason, names in self.skipped_by_reason().items()}
        return data


def prepare(
    source: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    *,
    demo: DemoParams | None = None,
    jobs: int | None = None,
    force: bool = False,
    params: PrepareParams = PrepareParams(),
    inkml_group: str | None = None,
    progress: Progress = ignore,
) -> PrepareReport:
    """What ``hwkit prepare`` does: ``source`` (IAM-OnDB layout or InkML), else ``data/iamondb/``, else the demo corpus.

    With ``demo`` (or when there is no source at all) the demo corpus is generated
    into ``data/demo/`` from those parameters (reused when already there) and
    prepared. ``output`` defaults to ``cache/iamondb.h5``, ``cache/demo.h5``, or for InkML
    ``cache/<file or folder name>.h5``.
    Notes on the choice made arrive as ``{"event": "note", "text"}``.
    """
    from hwkit.paths import CACHE_DIR, DATA_DIR

    if demo is not None and source is not None:
        raise OptionError("source", "give either a source or demo parameters, not both")
    if source is None and demo is None:
        if (DATA_DIR / "iamondb").is_dir():
            source = DATA_DIR / "iamondb"
            progress({"event": "note", "text": f"preparing IAM-OnDB from {source}/"})
        else:
            demo = DemoParams()
            progress({"event": "note", "text": f"no {DATA_DIR / 'iamondb'}/ found: preparing the built-in demo "
                                               f"corpus in {DATA_DIR / 'demo'}/"})  # fmt: skip
    if demo is not None:
        from hwkit.demo import ensure_demo_corpus

        output = output or CACHE_DIR / "demo.h5"
        check_writable(output, force)  # before spending time on the corpus
        source = ensure_demo_corpus(DATA_DIR / "demo", lines=demo.lines, writers=demo.writers, seed=demo.seed,
                                    capitals=demo.capitals, numbers=demo.numbers, jobs=jobs, progress=progress)  # fmt: skip
    if is_inkml(source):
        output = output or CACHE_DIR / f"{Path(source).stem}.h5"
        return prepare_inkml(source, output, force=force, params=params, group_type=inkml_group, progress=progress)
    output = output or CACHE_DIR / ("demo.h5" if iam.is_demo(source) else "iamondb.h5")
    return prepare_corpus(source, output, jobs=jobs, force=force, params=params, progress=progress)


def prepare_corpus(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    jobs: int | None = None,
    force: bool = False,
    params: PrepareParams = PrepareParams(),
    progress: Progress = ignore,
) -> PrepareReport:
    """Parse, clean and split an IAM-OnDB root (folders or archives) into a store at ``output``.

    ``progress`` gets ``{"event": "files", "done", "total", "lines", "points"}`` (``hwkit.progress``)
    in this process only, after each parsed chunk; ``total`` is None while archives are streamed.
    """
    output = Path(output)
    check_writable(output, force)
    corpus = iam.find_corpus(source)
    with Spool(output) as spool:
        got = _collect(corpus, jobs, params, progress, spool)
        if not got.lines:
            _no_lines(corpus.root, got.skips)
        lists = {name: iam.read_task_list(path) for name, path in corpus.task_lists.items()}
        return _finish(got, output, params, force, source="demo" if corpus.demo else "iam-ondb",
                       fingerprint=corpus.fingerprint(), task_lists=lists, warnings=_archive_warnings(corpus, got),
                       decisions={"text_encoding": iam.TEXT_ENCODING})  # fmt: skip


def prepare_inkml(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    force: bool = False,
    params: PrepareParams = PrepareParams(),
    group_type: str | None = None,
    progress: Progress = ignore,
) -> PrepareReport:
    """An InkML file, or a folder of them (searched recursively), -> a store at ``output``.

    Every transcribed group is a line (``hwkit.inkml`` says which); groups and
    files left out are recorded with their reasons, as for IAM-OnDB, and so are
    lines with an empty text or too few points. Line ids are the file's path
    under ``source`` without ``.inkml`` (plus ``-k`` for files of several lines).
    Writers are unknown, so lines are split by file, or by line for one file.
    ``group_type`` takes the groups annotated with that type as the lines instead
    (``"Textline"`` for IAMonDo, whose innermost transcribed groups are words).
    """
    root, output = Path(source), Path(output)
    check_writable(output, force)
    files = [root] if root.is_file() else _inkml_files(root)
    if not files:
        raise CorpusError(f"{root}: no .inkml files")
    with Spool(output) as spool:
        return _prepare_inkml_files(root, files, output, spool, force=force, params=params, group_type=group_type,
                                    progress=progress)  # fmt: skip


def _prepare_inkml_files(root: Path, files: list[Path], output: Path, spool: Spool, *, force: bool,
                         params: PrepareParams, group_type: str | None, progress: Progress) -> PrepareReport:  # fmt: skip
    from hwkit.inkml import Skipped, parse_inkml

    skips, n_points, digest = iam.Skips(), 0, hashlib.sha256()
    steps: dict[str, float] = {}  # line id -> its pen's median step while down
    for done, path in enumerate(files, 1):
        rel = path.name if path == root else path.relative_to(root).as_posix()
        if path != root and (path.is_symlink() or not path.is_file()):  # never follow a link out of the tree
            skips.add(rel, iam.NOT_REGULAR)
            continue
        try:
            data = path.read_bytes()
        except OSError:
            skips.add(rel, iam.UNREADABLE)
            continue
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        good = []
        for item in parse_inkml(data, rel, group_type=group_type):
            if isinstance(item, Skipped):
                skips.add(item.line_id, item.reason)
            elif not item.text:
                skips.add(item.line_id, EMPTY_TEXT)
            elif np.abs(item.points[:, :2]).max() > iam.MAX_COORDINATE:
                skips.add(item.line_id, iam.OUT_OF_RANGE)
            else:
                good.append(item)
        for item, offsets in zip(good, clean_lines([item.points for item in good], params.max_jump)):
            if len(offsets) < params.min_points:
                skips.add(item.line_id, TOO_FEW)
            else:
                spool.add(offsets, item.text, item.line_id, -1)
                n_points += len(offsets)
                steps[item.line_id] = _pen_step(offsets)
        progress({"event": "files", "done": done, "total": len(files), "lines": len(spool.lines), "points": n_points})
    if not spool.lines:
        _no_lines(root, skips)
    got = _Collected(spool.lines, skips, {}, {}, set(), len(files), n_points)
    mixed = _mixed_scales(steps)
    return _finish(got, output, params, force, source="inkml", fingerprint=digest.hexdigest(),
                   warnings=[mixed] if mixed else [],
                   decisions={"units": "millimetres where the files give a physical scale, else their own",
                              "inkml_group": group_type or "innermost transcribed group"})  # fmt: skip


MIXED_SCALE = 20.0  # lines whose pens step this many times farther than others' are in other units


def _pen_step(offsets: np.ndarray) -> float:
    down, _ = step_lengths(offsets)
    return float(np.median(down)) if len(down) else 0.0


def _mixed_scales(steps: dict[str, float]) -> str | None:
    """A note when the lines are in different units: files that give a physical scale are read in mm,
    others in their own units (often 100 times smaller steps or larger), and one store's normalisation
    cannot fit both. Judged by each line's median step while the pen is down; None when they agree."""
    known = {k: v for k, v in steps.items() if v > 0}
    if len(known) < 2:
        return None
    small, large = min(known, key=known.get), max(known, key=known.get)
    ratio = known[large] / known[small]
    if ratio < MIXED_SCALE:
        return None
    return (f"the lines are not all in one unit: the pen steps {ratio:.0f} times farther in {large} than in "
            f"{small} (files with an inkSource resolution or channel units are read in mm, others in their own "
            "units); prepare them apart, or give every file the same scale")


def is_inkml(source: str | os.PathLike) -> bool:
    """An InkML file (``.inkml`` in any case, or ``.xml`` whose root element is ``<ink>``), or a folder
    that holds ``.inkml`` files and no IAM-OnDB ``lineStrokes``."""
    path = Path(source)
    if path.is_file():
        return path.suffix.lower() == ".inkml" or (path.suffix.lower() == ".xml" and _ink_root(path))
    return path.is_dir() and not (path / "lineStrokes").exists() and bool(_inkml_files(path))


def _inkml_files(root: Path) -> list[Path]:
    """The ``.inkml`` files under ``root``, whatever the case of the suffix (``A.INKML`` from Windows tools)."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".inkml")


def _ink_root(path: Path) -> bool:
    """Does the file's first element look like InkML's ``<ink>`` (with or without a namespace prefix)? Read
    from its head only: an IAM-OnDB stroke file (``<WhiteboardCaptureSession>``) is ``.xml`` too."""
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    head = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", head, flags=re.S)
    return re.match(r"\s*<(?:[\w.-]+:)?ink[\s/>]", head.lstrip("\ufeff")) is not None


@dataclass
class _Collected:
    """What reading a corpus gave: the kept lines, every skip, and the labels they were judged by."""

    lines: list[SpooledLine]  # their points wait in a Spool file, not in memory
    skips: iam.Skips
    texts: dict[str, list[str] | None]  # form id -> its CSR lines
    writers: dict[str, int]  # form id -> writer id
    seen: set[str]  # line ids of the stroke files met
    files: int  # stroke files accounted for
    points: int


def _collect(corpus: iam.Corpus, jobs: int | None, params: PrepareParams, progress: Progress,
             spool: Spool) -> _Collected:  # fmt: skip
    """Read the labels, then parse and clean every stroke file (in worker processes) into ``spool``."""
    jobs = max(1, jobs or default_jobs())
    if not corpus.strokes.archived:
        jobs = min(jobs, -(-len(corpus.strokes.files) // CHUNK_FILES))
    skips = iam.Skips()
    for part in (corpus.strokes, corpus.ascii, corpus.original):
        for relpath in part.not_regular if part is not None else ():
            skips.add(relpath, iam.NOT_REGULAR)
        for relpath in part.unreadable_folders if part is not None else ():
            skips.add(relpath, iam.UNREADABLE_FOLDER)
    with worker_pool(jobs) as pool:  # started first, so that workers boot while the labels are read
        texts = _read_texts(corpus, skips)
        _require_readable(corpus.ascii, skips)
        writers = _read_writers(corpus, skips)
        if corpus.strokes.archived:
            files: Iterable[tuple[str, bytes | None]] = iam.iter_part(corpus.strokes, skips)
            total = None
        else:
            files = [(relpath, None) for relpath in corpus.strokes.files]
            total = len(files)
        done = [0]  # files accounted for, whether parsed or left out by name or labels
        seen: set[str] = set()

        def labelled() -> Iterator[tuple[str, str, bytes | None, str]]:
            for relpath, data in files:
                reason, line_id, text = _label(relpath, texts, seen)
                if reason:
                    skips.add(line_id or relpath, reason)
                    done[0] += 1
                else:
                    yield line_id, relpath, data, text

        n_points = 0
        root = None if corpus.strokes.archived else str(corpus.root)
        chunks = _chunked(labelled(), CHUNK_FILES)
        for chunk, results in _parse_chunks(chunks, root, params.max_jump, pool, ahead=2 * (jobs - 1)):
            for (line_id, _relpath, _data, text), result in zip(chunk, results):
                if isinstance(result, str):
                    skips.add(line_id, result)
                elif len(result) < params.min_points:
                    skips.add(line_id, TOO_FEW)
                else:
                    spool.add(result, text, line_id, writers.get(_form_of(line_id), -1))
                    n_points += len(result)
            done[0] += len(chunk)
            progress({"event": "files", "done": done[0], "total": total, "lines": len(spool.lines),
                      "points": n_points})  # fmt: skip
    _require_readable(corpus.strokes, skips)
    return _Collected(spool.lines, skips, texts, writers, seen, done[0], n_points)


def _no_lines(root: Path, skips: iam.Skips) -> None:
    common = Counter(reason for _, reason in skips).most_common(1)
    why = f", mostly {common[0][0]!r}" if common else ""
    raise CorpusError(f"{root}: no usable lines ({len(skips)} inputs left out{why})")


def _finish(got: _Collected, output: Path, params: PrepareParams, force: bool, *, source: str, fingerprint: str,
            task_lists: Mapping[str, set[str]] | None = None, warnings: Sequence[str] = (),
            decisions: Mapping | None = None) -> PrepareReport:  # fmt: skip
    """Split the kept lines, record every decision, write the store, and report."""
    lines, skips, lists = got.lines, got.skips, task_lists or {}
    lines.sort(key=lambda line: line.line_id)
    skips.sort()
    line_ids, writer_ids = [line.line_id for line in lines], [line.writer_id for line in lines]
    splits, split_rule = split_lines(line_ids, writer_ids, lists, params)
    recorded = {
        **params.to_dict(),
        "cleaning": [
            "drop repeated identical points within a stroke (strokes.drop_repeats)",
            "lift the pen before a pen-down step longer than max_jump: the stroke is split there and "
            "every reading kept (strokes.split_jumps)",
            "leave out lines with fewer than min_points points after cleaning",
            "leave moves longer than stats_max_move out of the normalisation statistics",
            "leave out lines whose transcription is empty or missing",
            f"leave out lines with a reading beyond {iam.MAX_COORDINATE:g} (a glitch, not ink)",
        ],
        **(decisions or {}),
        "split": split_rule,
    }
    warnings = [*warnings, *(f"split {name!r} is empty; hwkit train needs train and valid lines"
                             for name in ("train", "valid") if not splits[name])]  # fmt: skip
    write_store(output, lines, splits, skips, source=source, source_fingerprint=fingerprint,
                prepare_params=recorded, force=force, stats_max_move=params.stats_max_move)  # fmt: skip
    return PrepareReport(
        output=output,
        source=source,
        fingerprint=fingerprint,
        files=got.files,
        lines={name: len(splits[name]) for name in SPLITS},
        points=got.points,
        writers=len({line.writer_id for line in lines if line.writer_id >= 0}),
        alphabet_size=len(Alphabet.from_texts(line.text for line in lines).chars),
        split_rule=split_rule["rule"],
        skipped=list(skips),
        warnings=warnings,
    )


def _require_readable(part: iam.Part, skips: iam.Skips) -> None:
    """A lineStrokes or ascii archive of which not one file could be read is an error, not a skip."""
    if skips.archive_damage(part) == "unreadable":
        raise CorpusError(
            f"{part.path}: unreadable archive (not one file could be read: not a tar.gz file, "
            "or cut short before its first file)"
        )


def _archive_warnings(corpus: iam.Corpus, got: _Collected) -> list[str]:
    """One line per damaged archive, saying what its damage cost.

    The files lost past a cut are not listed anywhere, so each loss is counted
    from another part: stroke files from the lines the transcriptions name, and
    transcriptions and writers from the lines that went without them.
    """
    out = []
    for part in (corpus.strokes, corpus.ascii, corpus.original):
        state = got.skips.archive_damage(part)
        if state is None:
            continue
        name = part.path.name
        if part is corpus.strokes:
            per_form = Counter(_form_of(line_id) for line_id in got.seen)
            lost = sum(max(0, sum(1 for text in block if text) - per_form[form])
                       for form, block in got.texts.items() if block is not None)  # fmt: skip
            out.append(f"{name} is {state}: {lost:,} files could not be read")
        elif part is corpus.ascii:
            lost = len(got.skips.names(NO_ASCII))
            out.append(f"{name} is {state}: {lost:,} lines left out for want of their transcription")
        else:
            lost = sum(1 for line in got.lines if line.writer_id < 0 and _form_of(line.line_id) not in got.writers)
            out.append(f"{name} is {state}: {lost:,} lines have no writer id")
    return out


# -- labels -----------------------------------------------------------------------


def _form_of(line_id: str) -> str:
    return line_id.rsplit("-", 1)[0]


def _read_texts(corpus: iam.Corpus, skipped: iam.Skips) -> dict[str, list[str] | None]:
    """Form id -> CSR lines (None when the file has no CSR block)."""
    texts = {}
    for relpath, data in iam.iter_part(corpus.ascii, skipped):
        name = relpath.rsplit("/", 1)[-1]
        if name.endswith(".txt"):
            texts[name[: -len(".txt")]] = iam.parse_transcriptions(data)
    return texts


def _read_writers(corpus: iam.Corpus, skipped: iam.Skips) -> dict[str, int]:
    """Form id -> writer id, from the heads of the original files."""
    writers = {}
    if corpus.original is None:
        return writers
    for relpath, head in iam.iter_part(corpus.original, skipped, head=iam.ORIGINAL_HEAD):
        form = iam.original_form_id(relpath)
        if form is None:
            continue
        try:
            writers[form] = iam.parse_writer(head)
        except iam.Skip as skip:
            skipped.add(relpath, skip.reason)
    return writers


def _label(relpath: str, texts: Mapping[str, list[str] | None], seen: set[str]) -> tuple[str, str, str]:
    """``(reason, line_id, text)`` for a stroke file; reason is "" when the file has a usable label.

    A file left out under no line id of its own (a stray file, a second file with
    the id of a line already seen) is recorded under its path.
    """
    name = iam.stroke_name(relpath)
    if name is None:
        return iam.NOT_STROKE_FILE, "", ""
    line_id, form, number = name
    if line_id in seen:
        return DUPLICATE, "", ""
    seen.add(line_id)
    if form not in texts:
        return NO_ASCII, line_id, ""
    block = texts[form]
    if block is None or number > len(block):
        return NO_LINE, line_id, ""
    if not block[number - 1]:
        return EMPTY_TEXT, line_id, ""
    return "", line_id, block[number - 1]


# -- parsing in workers -----------------------------------------------------------


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_chunks(
    chunks: Iterator[list[tuple[str, str, bytes | None, str]]],
    root: str | None,
    max_jump: float,
    pool: multiprocessing.pool.Pool | None,
    ahead: int,
) -> Iterator[tuple[list, list[np.ndarray | str]]]:
    """Yield ``(chunk, results)`` in order, parsed in ``pool`` and here (``workers.in_order``).

    Chunks are drawn no faster than they are parsed, which keeps memory bounded
    when they are archive members read in this thread.
    """

    def task(chunk):
        return root, [(relpath, data) for _, relpath, data, _ in chunk], max_jump

    return in_order(parse_chunk, chunks, task, pool, ahead)


def parse_chunk(root: str | None, files: Sequence[tuple[str, bytes | None]], max_jump: float) -> list[np.ndarray | str]:
    """Stroke files -> cleaned offsets ``(n, 3)`` float32, or a skip reason; runs in a worker.

    A file given without bytes is read from ``root`` here, so folder corpora
    never pass through the parent process.
    """
    data: list[bytes] = []
    left_out: dict[int, str] = {}
    for i, (relpath, blob) in enumerate(files):
        if blob is None:
            try:
                with open(os.path.join(root, relpath), "rb", buffering=0) as f:
                    too_large = os.fstat(f.fileno()).st_size > iam.MAX_FILE_BYTES
                    blob = b"" if too_large else f.readall()
                if too_large:
                    left_out[i] = iam.TOO_LARGE
            except OSError:
                left_out[i] = iam.UNREADABLE
                blob = b""
        data.append(blob)
    parsed: list[np.ndarray | str] = iam.parse_strokes(data)
    for i, reason in left_out.items():
        parsed[i] = reason
    for i, result in enumerate(parsed):
        if not isinstance(result, str) and len(result) and np.abs(result[:, :2]).max() > iam.MAX_COORDINATE:
            parsed[i] = iam.OUT_OF_RANGE
    good = [i for i, result in enumerate(parsed) if not isinstance(result, str)]
    for i, offsets in zip(good, clean_lines([parsed[i] for i in good], max_jump)):
        parsed[i] = offsets
    return parsed


def clean_lines(lines: Sequence[np.ndarray], max_jump: float) -> list[np.ndarray]:
    """Absolute ``points`` of many lines -> the offsets the store keeps: repeats dropped, jumps split.

    The same as ``points_to_offsets(split_jumps(drop_repeats(p), max_jump))`` per
    line, done in one pass over all of them: a line ends with the pen up, so
    neither step reaches across lines, and a fourth column carries each point's
    line number through them.
    """
    if not lines:
        return []
    sizes = [len(p) for p in lines]
    joined = np.empty((sum(sizes), 4))
    np.concatenate(lines, out=joined[:, :3])
    joined[:, 3] = np.repeat(np.arange(len(lines)), sizes)
    points = split_jumps(drop_repeats(joined), max_jump)
    offsets = points_to_offsets(points)
    bounds = np.searchsorted(points[:, 3], np.arange(len(lines) + 1))
    offsets[bounds[:-1][np.diff(bounds) > 0], :2] = 0  # each line starts at its own origin
    offsets = offsets[:, :3].astype(np.float32)
    return [offsets[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


# -- splits -----------------------------------------------------------------------


def split_lines(
    line_ids: Sequence[str],
    writer_ids: Sequence[int],
    task_lists: Mapping[str, set[str]],
    params: PrepareParams = PrepareParams(),
) -> tuple[dict[str, list[int]], dict]:
    """Split line indices into train/valid/test; returns the splits and the rule, for the record.

    With the IAM-OnDB task lists (entries are form or line ids) the split is
    Graves': train = trainset + testset_t + testset_f, valid = testset_v, test =
    lines in no list. Without them (or when they match no line) whole writers,
    or whole forms where the writer is unknown, are ordered by a hash of their
    key and dealt out: valid and test take groups until they hold their share
    of lines (passing over a group that would take them past twice that, or a
    quarter of all lines if more), train keeps the rest and always at least one group. That rule is
    recorded as "writer hash", or "form hash" when no writer is known at all.
    When either way leaves valid empty (one writer: a person's own hand, or a
    demo corpus of one writer) and there are ``MIN_LINES_TO_SPLIT`` lines or
    more, lines are dealt out by a hash of their id instead, at least one to
    valid and one to test ("line hash").
    """
    forms = [_form_of(line_id) for line_id in line_ids]
    in_list = {name: task_lists.get(name, set()) for name in TRAIN_LISTS + VALID_LISTS}
    valid_ids = set().union(*(in_list[n] for n in VALID_LISTS))
    train_ids = set().union(*(in_list[n] for n in TRAIN_LISTS))
    listed = valid_ids | train_ids
    if any(line_id in listed or form in listed for line_id, form in zip(line_ids, forms)):
        splits: dict[str, list[int]] = {name: [] for name in SPLITS}
        for i, (line_id, form) in enumerate(zip(line_ids, forms)):
            name = (
                "valid" if line_id in valid_ids or form in valid_ids
                else "train" if line_id in train_ids or form in train_ids
                else "test"
            )
            splits[name].append(i)
        rule = {
            "rule": "task lists",
            "train": list(TRAIN_LISTS),
            "valid": list(VALID_LISTS),
            "test": "lines in no list",
            "lists_found": sorted(task_lists),
        }
        return _by_line_if_no_valid(line_ids, splits, rule, params)

    groups: dict[str, list[int]] = {}
    for i, (writer, form) in enumerate(zip(writer_ids, forms)):
        groups.setdefault(f"writer {writer}" if writer >= 0 else f"form {form}", []).append(i)
    order = deque(sorted(groups, key=lambda key: hashlib.sha256(key.encode()).hexdigest()))
    splits = {name: [] for name in SPLITS}
    for name, fraction in (("valid", params.valid_fraction), ("test", params.test_fraction)):
        share, passed = fraction * len(line_ids), []
        while len(order) > 1 and len(splits[name]) < share:
            key = order.popleft()
            if len(splits[name]) + len(groups[key]) > max(2 * share, len(line_ids) / 4, 1):  # far too big: train's
                passed.append(key)
            else:
                splits[name] += groups[key]
        order.extendleft(reversed(passed))
    for key in order:
        splits["train"] += groups[key]
    known = any(writer >= 0 for writer in writer_ids)
    rule = {
        "rule": "writer hash" if known else "form hash",
        "group": "writer, or form where the writer is unknown" if known else "form (no writer ids known)",
        "order": "sha256 of the group key",
        "valid_fraction": params.valid_fraction,
        "test_fraction": params.test_fraction,
        "task_lists_found": sorted(task_lists),
    }
    return _by_line_if_no_valid(line_ids, splits, rule, params)


def _by_line_if_no_valid(line_ids: Sequence[str], splits: dict[str, list[int]], rule: dict,
                         params: PrepareParams) -> tuple[dict[str, list[int]], dict]:  # fmt: skip
    """``splits`` sorted, unless they leave valid empty (one person's own hand, or task lists that name
    one writer) with ``MIN_LINES_TO_SPLIT`` lines or more: then lines are dealt out by a hash of their id,
    so that training can still stop early on lines it does not learn from."""
    if not splits["valid"] and len(line_ids) >= MIN_LINES_TO_SPLIT:
        by_hash = sorted(range(len(line_ids)), key=lambda i: hashlib.sha256(line_ids[i].encode()).hexdigest())
        for name, fraction in (("valid", params.valid_fraction), ("test", params.test_fraction)):
            take = max(1, math.ceil(fraction * len(line_ids)))
            splits[name], by_hash = by_hash[:take], by_hash[take:]
        splits["train"] = by_hash
        rule = {**rule, "rule": "line hash", "group": "line (too few writers or forms to split by)",
                "order": "sha256 of the line id"}  # fmt: skip
    return {name: sorted(idx) for name, idx in splits.items()}, rule
