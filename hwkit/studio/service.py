"""What the studio does, without HTTP: models and hands by id, writing jobs, results, recordings, styles.

Everything the browser names is an id from a list this module made: a model
is ``bundled`` or the name of a run folder under ``models/``; a hand is
``line:<line id>`` (a line of the model's store), ``style:<name>`` (a file in
``styles/``) or ``rec:<corpus>/<line id>`` (a line recorded into
``data/<corpus>/``). No path from a request is ever opened as given, so
nothing outside those folders can be read or written.

A writing is lines (each wrapped to ``WIDTH`` characters, the points streamed
as the network draws them) or pages (``letter.write_in_hand``: the text laid
out on paper in one hand, with progress by lines written, and downloads of
each page as ``hwkit sample --page`` writes them, plotter files included).

Writing is CPU/GPU work: jobs run on one worker thread (models are loaded
once and shared), at most ``max_jobs`` at a time counting the running one; a
request past that gets ``Busy`` at once instead of waiting behind the others.
A job reports the points as the network draws them (``sample_text``'s
``on_rows``) through ``emit``; a client that goes away sets ``cancel`` and the
job stops at its next report.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwkit.errors import HwkitError
from hwkit.paths import DATA_DIR, MODELS_DIR

STYLES_DIR = Path("styles")
MAX_TEXT = 600  # characters per request
MAX_LINES = 8  # written lines per request (one batch)
MAX_TRIES = 8  # draws per line, the best kept (beyond 4 the bundled model gained nothing measured)
WIDTH = 50  # characters per written line
MAX_RESULTS = 32  # finished writings kept for download
MAX_PAGE_TEXT = 4000  # characters per page request: about two A5 pages of 3.5 mm writing
PAGE_SIZES = ("a6", "a5", "a4", "letter")  # the papers the Write page offers (hwkit sample --page has more)
MAX_MARGIN = 50.0  # mm
SIZES = (1.5, 10.0)  # x-height, mm
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_STYLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
DOWNLOADS = {"svg": "image/svg+xml", "png": "image/png", "animate": "image/svg+xml",
             "npz": "application/octet-stream", "json": "application/json", "attention": "image/png"}  # fmt: skip
PAGE_DOWNLOADS = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf",
                  "plotter": "image/svg+xml", "gcode": "text/plain", "hpgl": "application/vnd.hp-hpgl"}  # fmt: skip


class RequestError(HwkitError):
    """A request the studio refuses, said for the page to show (HTTP 400 or 404)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Busy(HwkitError):
    """Every writing slot is taken (HTTP 503)."""


class Cancelled(Exception):
    """The client went away; the job stops."""


@dataclass
class Job:
    model_id: str
    texts: list[str]
    prime: object  # Prime | None
    bias: float
    seed: int
    tries: int = 1
    reader: object = None  # hwkit.reading.Reader choosing among tries; None for one
    setting: object = None  # a page job's page.Setting (``texts`` is then the whole text); None: lines
    notes: list[str] = field(default_factory=list)  # for the page to show (characters replaced)
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Loaded:
    checkpoint: object
    model: object
    scale: object = None  # recording.ModelScale, measured on first use


class Studio:
    def __init__(self, root: str | Path = ".", model: str | Path | None = None, *, max_jobs: int = 3,
                 device: str = "cpu"):  # fmt: skip
        self.root = Path(root)
        self.models_dir = self.root / MODELS_DIR
        self.data_dir = self.root / DATA_DIR
        self.styles_dir = self.root / STYLES_DIR
        self.default_model = model
        self.device = device
        self.max_jobs = max_jobs
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hwkit-studio")
        self._jobs = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._loaded: dict[str, _Loaded] = {}
        self._kinds: dict[tuple[Path, int], str | None] = {}
        self._scale_lock = threading.Lock()
        self._results: OrderedDict[str, object] = OrderedDict()
        self.closing = threading.Event()

    # -- models -----------------------------------------------------------------------

    def models(self) -> list[dict]:
        """``{"id", "label"}`` of every synthesis model: the one given at start, the bundled one, runs."""
        from hwkit.checkpoint import BUNDLED, _kind_of

        out = []
        if self.default_model is not None:
            out.append({"id": "given", "label": f"{self.default_model} (given to hwkit serve)"})
        if BUNDLED.is_file():
            out.append({"id": "bundled", "label": "bundled demo model"})
        runs = sorted(self.models_dir.glob("*/best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in runs:
            key = (path, path.stat().st_mtime_ns)
            if key not in self._kinds:  # loading a checkpoint to learn its kind is slow: once per file version
                self._kinds[key] = _kind_of(path)
            if _RUN_NAME.fullmatch(path.parent.name) and self._kinds[key] == "synthesis":
                out.append({"id": path.parent.name, "label": f"models/{path.parent.name}"})
        return out

    def default_model_id(self) -> str:
        found = self.models()
        if not found:
            raise RequestError("no synthesis model: train one (hwkit train --model synthesis)", 404)
        return found[0]["id"]

    def model_path(self, model_id: str) -> Path:
        from hwkit.checkpoint import BUNDLED, find_checkpoint

        if model_id == "given" and self.default_model is not None:
            return find_checkpoint(self.default_model, self.models_dir, kind="synthesis")
        if model_id == "bundled":
            return BUNDLED
        if isinstance(model_id, str) and _RUN_NAME.fullmatch(model_id) and (self.models_dir / model_id).is_dir():
            return find_checkpoint(self.models_dir / model_id, self.models_dir, kind="synthesis")
        raise RequestError(f"no model {model_id!r}", 404)

    def load(self, model_id: str) -> _Loaded:
        import torch

        with self._model_lock:
            if model_id not in self._loaded:
                from hwkit.checkpoint import Checkpoint

                ckpt = Checkpoint.load(self.model_path(model_id))
                if ckpt.kind != "synthesis":
                    raise RequestError(f"{model_id}: a {ckpt.kind} cannot write text", 400)
                self._loaded[model_id] = _Loaded(ckpt, ckpt.build_model(torch.device(self.device)))
            return self._loaded[model_id]

    # -- hands ------------------------------------------------------------------------

    def hands(self, model_id: str) -> list[dict]:
        """``{"id", "label", "kind"}`` of every hand the model can write in (none first)."""
        from hwkit.checkpoint import find_store
        from hwkit.store import Store
        from hwkit.studio.recording import list_recordings

        out = [{"id": "", "label": "none (the model picks a hand as it goes)", "kind": "none"}]
        recorded = [{"id": f"rec:{corpus.name}/{rec['line_id']}", "label": f"{corpus.name}: {rec['text']}",
                     "kind": "recording", "name": f"{corpus.name}-{rec['line_id']}"}
                    for corpus in sorted(p for p in self.data_dir.glob("*") if p.is_dir())
                    for rec in list_recordings(corpus)]  # fmt: skip
        names = {r.pop("name") for r in recorded}
        for path in sorted(self.styles_dir.glob("*.json")):
            made = path.stem in names or any(path.stem.startswith(n + "-") for n in names)  # make_style's names
            if _STYLE_NAME.fullmatch(path.stem) and not made:  # a recorded line's file: listed as the recording
                out.append({"id": f"style:{path.stem}", "label": path.stem, "kind": "style"})
        out += recorded
        ckpt = self.load(model_id).checkpoint
        try:
            store = Store(find_store(ckpt, None))
        except HwkitError:
            store = None
        if ckpt.hands or store is not None:
            label = "one of the model's house hands" if ckpt.hands else "a writer"
            out.insert(0, {"id": "auto", "label": f"auto: {label}, chosen by the seed", "kind": "none"})
        if store is None:
            return out
        seen = set()
        for i, writer in enumerate(store.writer_ids):  # one line of each writer; each line where none is known
            key = int(writer) if writer >= 0 else store.line_ids[i]  # (InkML and recorded corpora: writer -1)
            if key not in seen and len(seen) < 60:
                seen.add(key)
                who = f"writer {writer}" if writer >= 0 else store.line_ids[i]
                out.append({"id": f"line:{store.line_ids[i]}", "label": f"{who}: {store.texts[i]}", "kind": "store"})
        return out

    def prime(self, model_id: str, hand: str, seed: int = 0):
        """The ``Prime`` a hand id names, in the model's units (None for no hand; ``auto``: a house hand of the
        model, else a train line of its store, chosen by ``seed``, as ``hwkit sample --style auto``)."""
        from hwkit.checkpoint import find_store
        from hwkit.generate import MAX_PRIME_POINTS
        from hwkit.studio.recording import RecordingError, read_recording, recording_prime
        from hwkit.style import load_style, style_from_store

        if not hand:
            return None
        kind, _, name = str(hand).partition(":")
        try:
            if kind == "style" and _STYLE_NAME.fullmatch(name) and (self.styles_dir / f"{name}.json").is_file():
                prime = load_style(self.styles_dir / f"{name}.json")
            elif kind == "rec":
                corpus, _, line_id = name.partition("/")
                points, text = read_recording(self.corpus_dir(corpus), line_id)
                prime = recording_prime(points, text, self.scale(model_id))
            elif kind == "auto" and not name:
                from hwkit.generate import style_primes

                prime = style_primes(["auto"], None, self.load(model_id).checkpoint, seed=seed)[0]
            elif kind == "line":
                from hwkit.store import Store

                prime = style_from_store(Store(find_store(self.load(model_id).checkpoint, None)), name)[0]
            else:
                raise RequestError(f"no hand {hand!r}", 404)
        except (RecordingError, HwkitError) as exc:
            if isinstance(exc, RequestError):
                raise
            raise RequestError(f"hand {hand!r}: {exc}", 404) from None
        if len(prime.offsets) > MAX_PRIME_POINTS:
            raise RequestError(f"hand {hand!r}: {len(prime.offsets):,} points, more than a line ({MAX_PRIME_POINTS:,})")
        return prime

    def scale(self, model_id: str):
        """The model's x-height and step length, measured once on a line it writes."""
        loaded = self.load(model_id)
        with self._scale_lock:  # measured once, however many requests ask at the same time
            return self._measure_scale(loaded)

    def _measure_scale(self, loaded: _Loaded):
        from hwkit.page import x_height
        from hwkit.sample import sample_text
        from hwkit.strokes import step_lengths
        from hwkit.studio.recording import ModelScale

        if loaded.scale is None:
            ckpt = loaded.checkpoint
            line = sample_text(loaded.model, ckpt.alphabet, ["the quick brown fox jumps over a lazy dog"],
                               stats=ckpt.stats, bias=1.0, seed=0).lines[0]  # fmt: skip
            down, _ = step_lengths(line.offsets)
            loaded.scale = ModelScale(x_height(line.offsets), float(np.median(down)))
        return loaded.scale

    # -- writing ----------------------------------------------------------------------

    def make_job(self, request: dict, pages: bool = False) -> Job:
        """Check a write request (text, model, hand, bias, seed, tries, replace_unknown; for ``pages`` also
        paper, margin and size, in mm) and take a slot.

        ``tries`` (empty: the model's default, as ``hwkit sample``) draws each line
        that many times and keeps the draw the model's recognizer reads best.
        """
        from hwkit.errors import OptionError
        from hwkit.generate import encodable
        from hwkit.legibility import chooser
        from hwkit.letter import encoded_text
        from hwkit.sample import wrap

        if not isinstance(request, dict):
            raise RequestError("send a JSON object")
        text = request.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequestError("write some text first")
        limit = MAX_PAGE_TEXT if pages else MAX_TEXT
        if len(text) > limit:
            raise RequestError(f"the text is {len(text):,} characters; write at most {limit:,} at a time")
        setting = _setting(request) if pages else None
        colour = request.get("colour")
        if colour is not None:  # checked before the writing, not first at a download
            from hwkit import outputs

            if not isinstance(colour, str):
                raise RequestError("colour is a colour name or #rrggbb")
            outputs.check_colour(colour, pages=pages)
        lines = [text] if pages else [line for para in text.splitlines() if para.strip() for line in wrap(para, WIDTH)]
        if len(lines) > MAX_LINES:
            raise RequestError(f"that is {len(lines)} lines; write at most {MAX_LINES} at a time (or a page)")
        bias, seed = request.get("bias", 1.0), request.get("seed")
        if not isinstance(bias, (int, float)) or not 0 <= bias <= 10:
            raise RequestError("bias is a number from 0 to 10")
        if seed is None or seed == "":
            seed = secrets.randbits(31)
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise RequestError("seed is a whole number of at least 0")
        tries = request.get("tries")
        if tries == "":
            tries = None
        if tries is not None and (not isinstance(tries, int) or isinstance(tries, bool) or not 1 <= tries <= MAX_TRIES):
            raise RequestError(f"tries is a whole number from 1 to {MAX_TRIES}")
        model_id = str(request.get("model") or self.default_model_id())
        loaded = self.load(model_id)
        notes: list[str] = []
        replace = bool(request.get("replace_unknown"))
        try:
            if pages:
                lines = [encoded_text(loaded.checkpoint, text, replace, notes)]
            else:
                lines = [encodable(loaded.checkpoint.alphabet, t, replace, notes) for t in lines]
        except HwkitError as exc:
            raise RequestError(str(exc).replace("use --replace-unknown",
                                                "tick 'replace characters the model lacks'")) from None
        prime = self.prime(model_id, request.get("hand") or "", seed)
        try:
            tries, reader = chooser(loaded.checkpoint, tries, self.models_dir, self.device)
        except OptionError as exc:
            raise RequestError(str(exc).replace("no recognizer", "this model has no recognizer")) from None
        with self._lock:
            if self._jobs >= self.max_jobs:
                raise Busy(f"busy: {self._jobs} writings are running or waiting; try again in a moment")
            self._jobs += 1
        return Job(model_id, lines, prime, float(bias), seed, tries, reader, setting, notes)

    def run(self, job: Job, emit) -> None:
        """Write a job's lines (on the worker thread), reporting as ``emit(event_dict)``; frees its slot.

        With tries, the points streamed are each line's first draw, and its ``line``
        event brings the draw kept, which the page draws in its place.
        """
        from hwkit.generate import encodable
        from hwkit.legibility import best_of
        from hwkit.sample import Prime

        try:
            if self.closing.is_set():
                raise Cancelled()
            loaded = self.load(job.model_id)
            ckpt = loaded.checkpoint
            if job.setting is not None:  # write_in_hand makes the hand's text writable itself
                self._run_pages(job, emit, loaded, job.prime)
                return
            prime = job.prime
            if prime is not None:
                prime = Prime(prime.offsets, encodable(ckpt.alphabet, prime.text, True, []))
            emit({"event": "start", "lines": job.texts, "seed": job.seed, "tries": job.tries, "notes": job.notes})

            def on_rows(chunks: list) -> None:
                if job.cancel.is_set() or self.closing.is_set():
                    raise Cancelled()
                for i in range(len(job.texts)):
                    chunk = chunks[i * job.tries]  # each line's draws in turn; the page watches the first
                    if len(chunk):
                        emit({"event": "points", "line": i, "offsets": _rounded(chunk)})

            result = best_of(loaded.model, ckpt.alphabet, job.texts, tries=job.tries, reader=job.reader,
                             hold=ckpt.hand_thresholds, stats=ckpt.stats, bias=job.bias, seed=job.seed,
                             primes=[prime] * len(job.texts), on_rows=on_rows)  # fmt: skip
            for i, line in enumerate(result.lines):
                emit({"event": "line", "line": i, "stop": line.stop, "offsets": _rounded(line.offsets)})
            result_id = self._keep(result)
            emit({"event": "done", "result": result_id, "stops": dict(result.stop_counts())})
        except Cancelled:
            emit({"event": "error", "message": "cancelled"})
        except Exception as exc:  # the page shows it; the server stays up
            emit({"event": "error", "message": str(exc) or type(exc).__name__})
        finally:
            with self._lock:
                self._jobs -= 1

    def _run_pages(self, job: Job, emit, loaded: _Loaded, prime) -> None:
        """A page job: progress by lines written (a round writes many lines at once, so there are no
        points to stream), then the pages, kept for download."""
        from hwkit.letter import write_in_hand

        paper = job.setting.paper
        emit({"event": "start", "pages": True, "seed": job.seed, "tries": job.tries, "paper": list(paper)})

        def check(_=None) -> None:  # every few pen steps: a client that left stops the writing at once
            if job.cancel.is_set() or self.closing.is_set():
                raise Cancelled()

        def progress(event: dict) -> None:
            check()
            emit({"event": "progress", "done": event["done"], "total": event["total"], "round": event["round"]})

        letter = write_in_hand(loaded.model, loaded.checkpoint, job.texts[0], job.setting, hand=prime, seed=job.seed,
                               bias=job.bias, tries=job.tries, reader=job.reader, progress=progress,
                               on_rows=check)  # fmt: skip
        doc = letter.document
        emit({"event": "done", "result": self._keep(letter), "pages": len(doc.pages), "lines": len(doc.lines),
              "rounds": doc.rounds, "written": doc.written, "notes": job.notes + letter.notes})  # fmt: skip

    def _keep(self, result) -> str:
        result_id = secrets.token_hex(8)
        with self._lock:
            self._results[result_id] = result
            while len(self._results) > MAX_RESULTS:
                self._results.popitem(last=False)
        return result_id

    def download(self, result_id: str, fmt: str, *, colour: str = "black", width: float = 1.6,
                 line: int | None = None, page: int | None = None) -> tuple[bytes, str, str]:  # fmt: skip
        """A finished writing as a file: ``(bytes, media type, file name)``, made by ``hwkit.outputs``;
        ``line`` picks one line of it (the page shows each line's attention under that line). Of pages:
        ``page`` (default the first) in any ``PAGE_DOWNLOADS`` format but the PDF, which holds them all;
        pages are drawn with ``hwkit sample --page``'s 0.4 mm pen, not ``width``."""
        from hwkit import outputs
        from hwkit.letter import Letter
        from hwkit.sample import SampleResult

        with self._lock:
            result = self._results.get(result_id)
        if result is None:
            raise RequestError("that writing is no longer kept; write it again", 404)
        if isinstance(result, Letter):
            return self._page_file(result, fmt, colour, page)
        if page is not None:
            raise RequestError("that writing is lines, not pages")
        if line is not None:
            if not 0 <= line < len(result.lines):
                raise RequestError(f"that writing has no line {line}", 404)
            result = SampleResult([result.lines[line]], result.seed)
        if fmt not in DOWNLOADS:
            raise RequestError(f"no download format {fmt!r}", 404)
        outputs.check_colour(colour)
        with tempfile.TemporaryDirectory() as tmp:
            targets = outputs.plan([] if fmt == "attention" else [fmt], Path(tmp) / "handwriting",
                                   ["attention"] if fmt == "attention" else [])  # fmt: skip
            path = outputs.write(result, {fmt: targets[fmt]}, colour=colour, stroke_width=width)[0]
            return path.read_bytes(), DOWNLOADS[fmt], path.name

    def _page_file(self, letter, fmt: str, colour: str, page: int | None) -> tuple[bytes, str, str]:
        from hwkit import outputs

        pages = letter.document.pages
        if fmt not in PAGE_DOWNLOADS:
            raise RequestError(f"no download format {fmt!r} for pages", 404)
        if page is not None and not 0 <= page < len(pages):
            raise RequestError(f"that writing has no page {page + 1}", 404)
        chosen = pages if fmt == "pdf" else [pages[page or 0]]
        name = "letter" if fmt == "pdf" else f"page-{(page or 0) + 1}"
        with tempfile.TemporaryDirectory() as tmp:
            targets = outputs.plan([fmt], Path(tmp) / name, table=outputs.PAGE_FORMATS)
            path = outputs.write_pages(chosen, targets, colour=colour)[0]
            return path.read_bytes(), PAGE_DOWNLOADS[fmt], path.name

    # -- recording --------------------------------------------------------------------

    def corpus_dir(self, name: str) -> Path:
        from hwkit.studio.recording import check_corpus_name

        return self.data_dir / check_corpus_name(name)

    def record(self, request: dict) -> dict:
        from hwkit.studio.recording import save_recording

        if not isinstance(request, dict):
            raise RequestError("send a JSON object")
        corpus = self.corpus_dir(request.get("corpus", ""))
        line_id = save_recording(corpus, request.get("text"), request.get("strokes"))
        return {"line_id": line_id, "hand": f"rec:{corpus.name}/{line_id}", "corpus": corpus.name}

    def recordings(self, corpus: str) -> list[dict]:
        from hwkit.studio.recording import list_recordings

        return list_recordings(self.corpus_dir(corpus))

    def make_style(self, request: dict) -> dict:
        """A recorded line (in the given model's units) kept as a style file in ``styles/``."""
        from hwkit.style import save_style

        if not isinstance(request, dict):
            raise RequestError("send a JSON object")
        hand = str(request.get("hand", ""))
        if not hand.startswith("rec:"):
            raise RequestError("only a recorded line becomes a new style")
        model_id = str(request.get("model") or self.default_model_id())
        prime = self.prime(model_id, hand)
        corpus, _, line_id = hand[4:].partition("/")
        name = f"{corpus}-{line_id}" + ("" if model_id == "bundled" else f"-{model_id}")  # scaled for that model
        about = {"recorded": {"corpus": corpus, "line_id": line_id}, "model": model_id}
        self.styles_dir.mkdir(parents=True, exist_ok=True)
        save_style(self.styles_dir / f"{name}.json", prime, about, force=True)
        return {"hand": f"style:{name}", "label": name}

    def prompt(self) -> str:
        from hwkit.demo_text import make_texts

        return make_texts(1, np.random.default_rng(secrets.randbits(32)))[0]

    def close(self) -> None:
        """Stop: running jobs end at their next report, waiting ones never start."""
        self.closing.set()
        self.executor.shutdown(wait=True, cancel_futures=True)


def _setting(request: dict):
    """The ``page.Setting`` of a page request: ``paper`` (one of ``PAGE_SIZES``), ``margin`` and ``size`` (mm)."""
    from hwkit.page import PAPER_SIZES, Setting

    paper, margin, size = request.get("paper"), request.get("margin", 15), request.get("size", 3.5)
    if paper not in PAGE_SIZES:
        raise RequestError(f"paper is one of {', '.join(PAGE_SIZES)}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= MAX_MARGIN:
        raise RequestError(f"the margin is a number of mm from 0 to {MAX_MARGIN:g}")
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not SIZES[0] <= size <= SIZES[1]:
        raise RequestError(f"the size is an x-height from {SIZES[0]:g} to {SIZES[1]:g} mm")
    try:
        return Setting(paper=PAPER_SIZES[paper], margins=(float(margin),) * 4, size=float(size))
    except HwkitError as exc:  # said for the command line: the page names its fields
        why = getattr(exc, "why", str(exc))
        raise RequestError(why.replace("give a --size under", "make the size at most").replace("--", "")) from None


def _rounded(offsets: np.ndarray) -> list:
    """Offsets as JSON lists, to 0.01 pen units (float64 first, so 0.62 is sent as 0.62)."""
    return np.round(offsets.astype(np.float64), 2).tolist()
