"""The built-in demo corpus: synthetic handwriting in the exact IAM-OnDB layout.

IAM-OnDB needs a sign-up, so a fresh checkout has no handwriting to learn from.
``ensure_demo_corpus`` writes a stand-in that ``hwkit prepare`` reads through the
same parser as the real download: ``lineStrokes/``, ``ascii/`` and ``original/``
trees, the four split lists, and a ``DEMO.json`` marker (its presence is how a
store learns that its source is the demo, not IAM-OnDB).

Every writer, form and line draws from its own generator seeded by
``(seed, kind, index)``, so the files depend only on the parameters, never on the
order of work, and the same parameters give byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit import iam
from hwkit.config import DemoParams
from hwkit.demo_style import Trajectory, WriterStyle, random_style, render_line
from hwkit.demo_text import make_texts
from hwkit.errors import ConfigError, CorpusError
from hwkit.progress import Progress, ignore
from hwkit.store import Line
from hwkit.strokes import PEN_UP, points_to_offsets

MARKER = iam.DEMO_MARKER  # how prepare tells the demo corpus from IAM-OnDB
TASK_LISTS = tuple(f"{name}.txt" for name in iam.TASK_LISTS)
WRITER_ID_BASE = 10000  # writer w is IAM-style writerID "10000 + w"
FORMS_PER_FOLDER = 20  # forms a01-000u .. a01-019u share the folder a01
FORMS_PER_TASK = 8  # forms a worker writes per task: about 60 lines, 0.1 s
ENCODING = iam.TEXT_ENCODING
PUNCTUATION = "\"'().,;:!?"  # what a word the numbers drill writes as a number keeps around it

# independent generator streams, each seeded by (seed, stream, index)
_STYLE, _FORMS, _TEXT, _LINE, _PAGE, _SPLIT, _CAPITALS, _NUMBERS = range(8)


@dataclass(frozen=True)
class Form:
    """One page: consecutive lines of one paragraph by one writer."""

    form_id: str  # e.g. a01-000u
    writer: int
    first_line: int  # global index of its first line (seeds the line generators)
    n_lines: int

    @property
    def folder(self) -> str:  # a01/a01-000
        return f"{self.form_id[:3]}/{self.form_id[:-1]}"

    @property
    def writer_id(self) -> str:
        return str(WRITER_ID_BASE + self.writer)


def ensure_demo_corpus(
    root: Path,
    *,
    lines: int = 3000,
    writers: int = 40,
    seed: int = 0,
    capitals: float = 0.0,
    numbers: float = 0.0,
    jobs: int | None = None,
    progress: Progress = ignore,
) -> Path:
    """Make ``root`` hold the demo corpus for these parameters; return ``root``.

    A corpus whose ``DEMO.json`` already records the same parameters is reused.
    Otherwise it is generated in a temporary folder beside ``root`` and swapped in
    only when complete, so an interrupted run never leaves a half corpus that looks
    whole. A non-empty ``root`` without ``DEMO.json`` is not ours and is refused.
    ``progress`` gets ``{"event": "lines", "done", "total"}`` as forms are written, by
    ``jobs`` processes (``write_demo_corpus``), and a ``{"event": "note"}`` when a corpus of other
    parameters is replaced.
    """
    root = Path(root)
    if lines < 1 or writers < 1:
        raise CorpusError(f"a demo corpus needs at least one line and one writer (got {lines} and {writers})")
    params = DemoParams(lines=lines, writers=writers, seed=seed, capitals=capitals, numbers=numbers)
    marker = root / MARKER
    if marker.is_file() and _read_marker(marker) == params:
        return root
    if marker.is_file():  # stores prepared from the old corpus stay as they are; the folder is a cache
        progress({"event": "note", "text": f"{root}/ held a demo corpus made with other parameters: it is "
                                           "replaced (stores prepared from it are kept)"})  # fmt: skip
    if root.exists() and not marker.is_file() and (not root.is_dir() or any(root.iterdir())):
        raise CorpusError(f"{root}: exists and is not a demo corpus (no {MARKER}); move it or pick another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(root)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}-{os.getpid()}-", suffix=".partial", dir=root.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the corpus is ordinary data
    try:
        write_demo_corpus(work, params, progress, jobs)
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}-{os.getpid()}-", suffix=".old", dir=root.parent))
            os.replace(root, old / "corpus")
            os.replace(work, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root


def remove_stale_work(root: Path) -> None:
    """Delete the half-written corpora (``.demo-<pid>-*.partial``, ``.old``) of generations that were
    killed: tens of MB each, otherwise left behind for good. A live process's work is never touched."""
    from hwkit.files import process_alive

    for work in root.parent.glob(f".{root.name}-*-*"):
        pid = work.name[len(root.name) + 2 :].split("-", 1)[0]
        if work.is_dir() and work.suffix in (".partial", ".old") and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(work, ignore_errors=True)


def write_demo_corpus(root: Path, params: DemoParams, progress: Progress = ignore, jobs: int | None = None) -> None:
    """Write the whole tree into the existing folder ``root``; the marker goes last.

    Forms are written by ``jobs`` processes (default: one per CPU); every form draws
    from random streams of its own, so the tree is the same for any ``jobs``.
    ``progress`` gets ``{"event": "lines", "done", "total"}`` as forms are written (``hwkit.progress``).
    """
    from hwkit.workers import default_jobs, in_order, worker_pool

    root = Path(root)
    done = 0
    forms = plan_forms(params)
    jobs = min(max(1, jobs or default_jobs()), -(-len(forms) // FORMS_PER_TASK))
    by_writer: dict[int, list[str]] = {}
    chunks = [forms[k : k + FORMS_PER_TASK] for k in range(0, len(forms), FORMS_PER_TASK)]
    with worker_pool(jobs) as pool:
        for chunk, _ in in_order(write_forms, chunks, lambda chunk: (str(root), params, chunk), pool, 2 * (jobs - 1)):
            for form in chunk:
                by_writer.setdefault(form.writer, []).append(form.form_id)
                done += form.n_lines
            progress({"event": "lines", "done": done, "total": params.lines})
    for name, writers in split_writers(params.seed, params.writers).items():
        ids = [f for w in writers for f in by_writer.get(w, [])]
        (root / name).write_text("".join(f"{i}\n" for i in ids), encoding=ENCODING)
    (root / MARKER).write_text(json.dumps(params.to_dict(), indent=2) + "\n", encoding="utf-8")


def write_forms(root: str, params: DemoParams, forms: Sequence[Form]) -> None:
    """Render and write ``forms`` into ``root``: one task of ``write_demo_corpus``, run in a worker."""
    for form in forms:
        texts = form_texts(params.seed, form, params.capitals, params.numbers)
        style = writer_style(params.seed, form.writer)
        lines = [render_line(t, style, _rng(params.seed, _LINE, form.first_line + k)) for k, t in enumerate(texts)]
        _write_form(Path(root), form, texts, lines, style, _rng(params.seed, _PAGE, form.first_line))


def writer_style(seed: int, writer: int) -> WriterStyle:
    return random_style(_rng(seed, _STYLE, writer))


def plan_forms(params: DemoParams) -> list[Form]:
    """Share the lines among the writers as evenly as possible, in forms of 6-10 lines."""
    forms: list[Form] = []
    line = 0
    for w in range(params.writers):
        rng = _rng(params.seed, _FORMS, w)
        left = params.lines // params.writers + (w < params.lines % params.writers)
        while left:
            n = min(left, int(rng.integers(6, 11)))
            forms.append(Form(_form_id(len(forms)), w, line, n))
            line, left = line + n, left - n
    return forms


def form_texts(seed: int, form: Form, capitals: float = 0.0, numbers: float = 0.0) -> list[str]:
    """The form's transcription: ``n_lines`` consecutive lines of one paragraph.

    ``capitals`` gives that share of the words starting lower case a capital; ``numbers`` then writes that
    share of all words as a number of 1-4 digits drawn alike (a word's punctuation stays), so every digit is
    drilled as often, where the generator's own numbers are mostly years. Each draws from a stream of its
    own, so the other words (and a corpus without either) stay as they were.
    """
    texts = make_texts(form.n_lines, _rng(seed, _TEXT, form.first_line))
    if capitals:
        rng = _rng(seed, _CAPITALS, form.first_line)
        texts = [" ".join(w[0].upper() + w[1:] if w[:1].islower() and rng.random() < capitals else w
                          for w in t.split(" ")) for t in texts]  # fmt: skip
    if numbers:
        rng = _rng(seed, _NUMBERS, form.first_line)
        texts = [" ".join(_as_number(w, rng) if rng.random() < numbers else w for w in t.split(" ")) for t in texts]
    return texts


def _as_number(word: str, rng: np.random.Generator) -> str:
    """``word`` written as a number of 1-4 digits, its leading and trailing punctuation kept."""
    core = word.strip(PUNCTUATION)
    if not core:
        return word
    head = word[: len(word) - len(word.lstrip(PUNCTUATION))]
    tail = word[len(word.rstrip(PUNCTUATION)) :]
    return head + "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(1, 5)))) + tail


def writer_lines(writer: int, texts: Sequence[str], *, seed: int = 0, line_seed: int = 0) -> list[Line]:
    """``texts`` written in the hand of demo writer ``writer`` (of the corpus made with ``seed``).

    New lines in a known hand: what fine-tuning experiments and tests need, a
    writer held out of a model's training (``held_out_writers``) writing text of
    one's choosing. ``line_seed`` varies the strokes, not the hand.
    """
    style = writer_style(seed, writer)
    lines = []
    for i, text in enumerate(texts):
        points = render_line(text, style, _rng(line_seed, _LINE, writer, i)).points
        lines.append(Line(points_to_offsets(points).astype(np.float32), text, f"w{writer:03d}-{i:04d}", writer))
    return lines


def held_out_writers(seed: int, writers: int) -> list[int]:
    """The writers of a demo corpus in no task list: its test split, never trained or validated on."""
    listed = {w for group in split_writers(seed, writers).values() for w in group}
    return [w for w in range(writers) if w not in listed]


def split_writers(seed: int, writers: int) -> dict[str, list[int]]:
    """Task list file -> its writers; every writer is in at most one list.

    About a tenth of the writers go to each of ``testset_v``, ``testset_t`` and
    ``testset_f`` and a tenth to no list at all (as some IAM-OnDB forms are), the
    rest to ``trainset``; ``testset_v`` and the unlisted writers get one each as
    soon as there are writers enough to keep one for training.
    """
    order = _rng(seed, _SPLIT, 0).permutation(writers)
    tenth = int(writers / 10 + 0.5)
    sizes = [max(tenth, 1 if writers >= 2 else 0), max(tenth, 1 if writers >= 3 else 0), tenth, tenth]
    valid, _unlisted, test_t, test_f, train = np.split(order, np.cumsum(sizes))
    return {name: sorted(group.tolist()) for name, group in zip(TASK_LISTS, (train, valid, test_t, test_f))}


def _form_id(k: int) -> str:
    folder = k // FORMS_PER_FOLDER
    if folder >= 26 * 99:
        raise CorpusError("a demo corpus can hold at most 51480 forms")
    return f"{chr(ord('a') + folder // 99)}{folder % 99 + 1:02d}-{k % FORMS_PER_FOLDER:03d}u"


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _write_form(
    root: Path, form: Form, texts: list[str], lines: list[Trajectory], style: WriterStyle, rng: np.random.Generator
) -> None:
    """Place the lines on a whiteboard page and write the form's three files."""
    left = rng.uniform(300.0, 900.0)
    top = rng.uniform(500.0, 900.0) + style.height
    gap = style.height * rng.uniform(2.0, 2.8)
    clock = rng.uniform(60.0, 3000.0)  # session time of the first pen-down, seconds
    placed = []
    for k, line in enumerate(lines):
        xy = np.rint(line.points[:, :2] + (left + rng.normal(0.0, 40.0), top + k * gap)).astype(np.int64)
        placed.append((xy, line.points[:, PEN_UP] > 0.5, clock + line.times))
        clock += line.times[-1] + rng.uniform(0.8, 2.5)
    every = np.concatenate([xy for xy, _, _ in placed])
    board = iam.board_xml(every.min(axis=0) - 50, every.max(axis=0) + 50)

    for sub in ("lineStrokes", "ascii", "original"):
        (root / sub / form.folder).mkdir(parents=True, exist_ok=True)
    for k, (xy, up, times) in enumerate(placed):
        path = root / "lineStrokes" / form.folder / f"{form.form_id}-{k + 1:02d}.xml"
        path.write_text(iam.stroke_file_xml(xy, up, times, board), encoding=ENCODING)
    ocr = textwrap.wrap(" ".join(texts), 60)  # the printed prompt, wrapped differently
    ascii_text = "OCR:\n\n" + "\n".join(ocr) + "\n\nCSR:\n\n" + "\n".join(texts) + "\n"
    (root / "ascii" / form.folder / f"{form.form_id}.txt").write_text(ascii_text, encoding=ENCODING)
    (root / "original" / form.folder / f"strokes{form.form_id[-1]}.xml").write_text(
        _original_xml(form, texts), encoding=ENCODING
    )


def _original_xml(form: Form, texts: list[str]) -> str:
    return iam.original_file_xml(form.form_id, form.writer_id, texts)


def _read_marker(path: Path) -> DemoParams | None:
    """The parameters a corpus records (those added since it was made at their defaults); None if unreadable."""
    try:
        return DemoParams.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ConfigError):
        return None
