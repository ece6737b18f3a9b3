"""Is a model any good? The numbers behind ``hwkit evaluate``.

- Every kind: nats per line and per point on the store's test and valid splits
  (the unit of Graves' tables; lower is better).
- A recognizer: its character error rate (CER) on those splits.
- A synthesis model: it writes texts it never saw as training lines (the test
  split's transcriptions, or texts given) at each bias and seed, and a
  recognizer reads them back. Reported per run: how many lines stopped by
  Graves' rule rather than the length cap, written length against the length
  the store's writers give such a text, and the CER of the reading against the
  requested text, and what the reader read. The reader's own CER on real test lines is reported beside
  it (a reader that cannot read real lines cannot judge samples), and so is
  its CER against shuffled texts, a control that must come out near 100%.
  Where the errors are (``cer.error_breakdown``): capitals, digits, lower
  case and word spaces misread, and the first word of a line against the
  others; and whether a line keeps one hand (``handstyle``: its halves compared,
  against how much real test lines' halves differ), and a primed line its
  prime's (the whole line against its prime, against how much two real test
  lines by one writer differ).
- Pooled over the seeds, per bias (``cer.pooled``): the same shares with 95%
  intervals, a text's lines at every seed counted as one cluster, beside the
  judge's shares on real test lines, the level real writing reaches under it.
  A hundred sentences hold only about 130 capitals, so a difference of a few
  points between two models is easily luck.

Everything returned is JSON-ready; the grid of worst and best lines is a PNG.
``compare_reports`` sets two such reports of the same texts side by side, text by
text (``hwkit compare``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwkit.cer import SHARES, cer, cluster_excess, error_breakdown, excess, line_cers, pooled, pooled_share
from hwkit.checkpoint import BUNDLED_JUDGE, Checkpoint, find_checkpoint, find_store
from hwkit.config import WRITERS
from hwkit.errors import CheckpointError, HwkitError, TextError
from hwkit.paths import MODELS_DIR
from hwkit.progress import Progress, ignore

DEFAULT_BIASES = (0.5, 1.0, 2.0)
DEFAULT_TEXTS = 100  # test transcriptions written per bias and seed
GRID_LINES = 4  # worst and best lines each in the picture


def evaluate_checkpoint(
    checkpoint: str | os.PathLike | None = None,
    *,
    store: str | os.PathLike | None = None,
    texts: Sequence[str] | None = None,
    max_texts: int = DEFAULT_TEXTS,
    biases: Sequence[float] = DEFAULT_BIASES,
    seeds: Sequence[int] = (1,),
    primed: bool | None = None,
    tries: int | None = None,
    reader: str | os.PathLike | None = None,
    grid: str | os.PathLike | None = None,
    device: str = "auto",
    models_dir: str | os.PathLike = MODELS_DIR,
    progress: Progress = ignore,
) -> dict:
    """Scores of the model at ``checkpoint`` (default: the newest ``best.pt``, else the bundled model).

    ``store`` defaults to the one the checkpoint was trained on. For a synthesis
    model, ``texts`` default to the first ``max_texts`` test transcriptions;
    ``reader`` is a recognizer checkpoint (default: ``models/reader-<store>/best.pt``,
    trained with the demo preset on first use); ``grid`` is where the PNG of
    the worst and best lines goes (none when None). ``primed`` writes each text
    in a hand chosen by the seed (as ``--style auto`` does: a house hand, else a
    train line) instead of unprimed; ``tries`` draws each text that many times
    and keeps the draw the model's own reader reads best. Both default to what
    ``hwkit sample`` does with the model, so the scores are those of its
    samples. A judge that is also the reader choosing among tries flatters the
    choice: the report says so (``judge_chose``); name another ``reader``.
    """
    from hwkit.distributed import pick_device
    from hwkit.files import check_can_write
    from hwkit.reading import Reader
    from hwkit.store import Store

    path = find_checkpoint(checkpoint, models_dir, kind=WRITERS)  # a recognizer is evaluated when named
    ckpt = Checkpoint.load(path)
    store_path = find_store(ckpt, store)
    opened = Store(store_path).load()
    torch_device = pick_device(device, None)
    model = ckpt.build_model(torch_device)
    report: dict = {"checkpoint": str(path), "kind": ckpt.kind, "store": str(store_path), "loss": {}}
    if ckpt.kind == "synthesis":  # what can be wrong with the writing's inputs fails before the scoring
        from_split = texts is None
        texts = _texts_to_write(ckpt, opened, texts, max_texts)
        if from_split and len(texts) < max_texts:
            progress({"event": "note", "text": f"the test split of {store_path} holds {len(texts)} text(s), fewer "
                                               f"than the {max_texts} asked for: writing those"})  # fmt: skip
        judge = Reader(Checkpoint.load(ensure_reader(reader, opened, Path(models_dir), progress)), device)
        if grid is not None:
            check_can_write(grid)
    for split in ("test", "valid"):
        if len(opened.split(split)):
            progress({"event": "note", "text": f"scoring the {split} split"})
            report["loss"][split] = _split_scores(model, ckpt, opened, split, torch_device)
    if ckpt.kind == "recognizer":
        report["cer"] = {split: scores.pop("cer") for split, scores in report["loss"].items()}
    if ckpt.kind == "synthesis":
        report["writing"] = _writing(ckpt, model, opened, texts, max_texts, biases, seeds, judge, grid, device,
                                     Path(models_dir), progress, primed, tries)  # fmt: skip
    return report


def default_grid(checkpoint: str | os.PathLike | None) -> Path:
    """Where the grid of worst and best lines goes: beside the checkpoint, or in ``samples/`` for a
    bundled model (never into the installed package)."""
    from hwkit.checkpoint import BUNDLED
    from hwkit.paths import SAMPLES_DIR, timestamp

    path = find_checkpoint(checkpoint, kind=WRITERS)
    folder = SAMPLES_DIR if path.resolve().parent == BUNDLED.resolve().parent else path.parent
    return folder / f"evaluate-{timestamp()}.png"


def _split_scores(model, ckpt: Checkpoint, store, split: str, device) -> dict:
    """Loss (and CER) on a split, the lines normalised and encoded as the model was trained: with its own
    stats and alphabet, which are not the store's when it was fine-tuned or trained elsewhere."""
    from hwkit.dataset import StrokeDataset
    from hwkit.train import evaluate

    alphabet = ckpt.alphabet if ckpt.kind != "prediction" else None
    if alphabet is not None:
        missing = sorted({c for i in store.split(split) for c in alphabet.unknown(store.texts[i])})
        if missing:
            raise TextError(f"{store.path}: the {split} split has characters {ckpt.name} lacks: "
                            f"{' '.join(map(repr, missing))}; score it on a store it can encode")  # fmt: skip
    dataset = StrokeDataset(store, split, in_memory=True, alphabet=alphabet, stats=ckpt.stats)
    scores = evaluate(model, dataset, batch_size=16, device=device)
    extra = {"cer": scores.cer} if scores.cer is not None else {"pen_nats_per_line": scores.pen_nats_per_line}
    return {"lines": len(dataset), "nats_per_line": scores.nats_per_line, "nats_per_point": scores.nats_per_point,
            **extra}  # fmt: skip


def _texts_to_write(ckpt: Checkpoint, store, texts: Sequence[str] | None, max_texts: int) -> list[str]:
    if texts is None:
        texts = [store.texts[i] for i in store.split("test")[:max_texts]]
    texts = [t.strip() for t in texts if t.strip()]
    unknown = sorted({c for t in texts for c in ckpt.alphabet.unknown(t)})
    if unknown:
        raise TextError(f"texts have characters the model's alphabet lacks: {' '.join(map(repr, unknown))}")
    if not texts:
        raise TextError("no texts to write")
    return texts


def _writing(ckpt: Checkpoint, model, store, texts, max_texts, biases, seeds, judge, grid, device, models_dir,
             progress: Progress, primed: bool | None = None, tries: int | None = None) -> dict:  # fmt: skip
    from hwkit.generate import auto_hands, encodable
    from hwkit.legibility import best_of, chooser
    from hwkit.sample import Prime

    primed = bool(ckpt.hands) if primed is None else primed
    tries, choosing = chooser(ckpt, tries, models_dir, device)
    judge_chose = choosing is not None and choosing.checkpoint.path.resolve() == judge.checkpoint.path.resolve()
    if judge_chose:
        progress({"event": "note", "text": f"{judge.checkpoint.path} both chooses among the tries and judges "
                                           "them, which flatters the choice; --reader names another judge"})  # fmt: skip
    real = store.split("test")[:max_texts]
    truths = [store.texts[i] for i in real]
    real_lines = [store.offsets(int(i)) for i in real]
    readings = judge.read(real_lines)
    from hwkit.handstyle import Calibration, PrimeCalibration

    try:
        hands = Calibration.from_real(real_lines)
    except ValueError:  # too few real lines long enough to say what one hand looks like
        hands = None
    try:
        prime_hands = PrimeCalibration.from_real(real_lines, [int(store.writer_ids[i]) for i in real])
    except ValueError:  # no two writers among them, or none with two lines
        prime_hands = None
    control = truths[1:] + truths[:1]  # each line scored against another line's text: the metric must fail
    points_per_char = _points_per_char(store)
    runs, pictures = [], []
    readings_at: dict[float, list[str]] = {}  # every seed's readings, per bias
    for bias in biases:
        for seed in seeds:
            progress({"event": "note", "text": f"writing {len(texts)} lines at bias {bias:g}, seed {seed}"})
            primes = None
            if primed:  # each text in a hand of its own, chosen by the seed
                primes = [Prime(p.offsets, encodable(ckpt.alphabet, p.text, True, []))
                          for p in auto_hands(ckpt, store, seed, len(texts))[0]]  # fmt: skip
            result = best_of(model, ckpt.alphabet, texts, stats=ckpt.stats, bias=bias, seed=seed, primes=primes,
                             tries=tries, reader=choosing, hold=ckpt.hand_thresholds)  # fmt: skip
            offsets = [line.offsets for line in result.lines]
            read = judge.read(offsets)
            per_line = line_cers(texts, read)
            ratio = [len(o) / (points_per_char * len(t)) for o, t in zip(offsets, texts)]
            stops = result.stop_counts()
            runs.append({
                "bias": bias,
                "seed": seed,
                "lines": len(texts),
                "stopped_by_rule": stops.get("rule", 0),
                "hit_cap": stops.get("cap", 0),
                "length_ratio_median": float(np.median(ratio)),
                "cer": cer(texts, read),
                "errors": error_breakdown(texts, read),
                "hand": hands.switch_rate(offsets) if hands is not None else None,
                "prime_hand": (prime_hands.other_hand_rate([p.offsets for p in primes], offsets)
                               if primes is not None and prime_hands is not None else None),
                "readings": read,
            })  # fmt: skip
            pictures.append((bias, offsets, read, per_line))
            readings_at.setdefault(bias, []).extend(read)
    report = {"reader": str(judge.checkpoint.path), "primed": primed, "asked": texts, "house_hands": bool(primed and ckpt.hands),
              "tries": tries, "chooser": str(choosing.checkpoint.path) if choosing is not None else None, "judge_chose": judge_chose,
              "reader_cer_on_real_test_lines": cer(truths, readings),
              "reader_cer_against_shuffled_texts": cer(control, readings), "texts": len(texts),
              "reader_errors_on_real_test_lines": error_breakdown(truths, readings),
              "real_lines_switch_rate": hands.real_switch_rate if hands is not None else None,
              "real_same_writer_other_hand_rate": prime_hands.same_writer_rate if prime_hands else None,
              "real_other_writer_other_hand_rate": prime_hands.other_writer_rate if prime_hands else None,
              "reader_pooled_on_real_test_lines": pooled(truths, readings),
              "points_per_char": points_per_char, "runs": runs,
              "pooled": [{"bias": bias, "seeds": list(seeds), **_pooled_runs(texts, read)}
                         for bias, read in readings_at.items()]}  # fmt: skip
    if grid is not None:
        bias, offsets, read, per_line = min(pictures, key=lambda p: abs(p[0] - 1.0))
        report["grid"] = str(draw_grid(Path(grid), texts, offsets, read, per_line, bias))
    return report


def _pooled_runs(texts: Sequence[str], read: Sequence[str]) -> dict:
    """``cer.pooled`` over runs that each wrote ``texts`` in order: a text's lines form one cluster."""
    runs = len(read) // len(texts)
    return pooled(list(texts) * runs, read, list(range(len(texts))) * runs)


def _points_per_char(store) -> float:
    """Pen points per character in the store's train split: how long a text's line runs in its writers' hands."""
    train = store.split("train")
    lengths = np.diff(store.line_offsets)[train]
    chars = sum(len(store.texts[i]) for i in train)
    return float(lengths.sum() / max(chars, 1))


def ensure_reader(reader, store, models_dir: Path, progress: Progress) -> Path:
    """The judge: the named recognizer, else the one cached for this store, else the bundled judge for a
    demo-corpus store, else one trained now (demo preset) and cached."""
    from hwkit.legibility import store_reader_dir

    if reader is not None:
        return find_checkpoint(reader)
    cached = store_reader_dir(store.fingerprint, models_dir)
    if (cached / "best.pt").is_file():
        return cached / "best.pt"
    if store.source == "demo" and BUNDLED_JUDGE.is_file():
        return BUNDLED_JUDGE
    from hwkit.train import resume, start

    if (cached / "last.pt").is_file():  # a first training that was interrupted: go on with it
        progress({"event": "note", "text": f"going on with the recognizer training in {cached}"})
        result = resume(cached, store.path, progress=progress)
    else:
        progress({"event": "note", "text": f"no recognizer for this store yet: training one into {cached} (once)"})
        result = start(store.path, "recognizer", "demo", run_dir=cached, progress=progress)
    if result.best_path is None:
        raise CheckpointError(f"{cached}: the recognizer finished no validation; pass --reader")
    return result.best_path


def draw_grid(path: Path, texts: Sequence[str], offsets: Sequence[np.ndarray], read: Sequence[str],
              per_line: Sequence[float], bias: float) -> Path:  # fmt: skip
    """The ``GRID_LINES`` worst and best lines, each captioned with the text asked for and the text read."""
    from hwkit import render
    from hwkit.files import atomic_path

    order = np.argsort(per_line, kind="stable")
    worst = list(order[::-1][: min(GRID_LINES, (len(order) + 1) // 2)])  # few lines: half worst, half best
    best = [i for i in order[:GRID_LINES] if i not in worst]
    chosen = worst + best
    captions = [f"{'worst' if k < len(worst) else 'best'} (bias {bias:g}), CER {per_line[i]:.0%}\n"
                f"asked: {texts[i]}\nread:  {read[i]}" for k, i in enumerate(chosen)]  # fmt: skip
    placed = render.layout([offsets[i] for i in chosen], captions, render.Style(colour="black"))
    with atomic_path(path) as tmp:
        render.layout_png(placed).save(tmp, format="PNG")
    return path


PRIME_HAND = "prime hand"  # the share of primed lines in another hand than their prime's


def _prime_verdicts(report: dict, bias: float, texts: int) -> dict | None:
    """``{text: {PRIME_HAND: [lines in another hand, lines measured]}}`` over a report's runs at ``bias``;
    None when any run lacks per-line verdicts (unprimed, or an older hwkit's report)."""
    runs = [run for run in report["writing"]["runs"] if run["bias"] == bias]
    if not runs or any(not (run.get("prime_hand") or {}).get("per_line") for run in runs):
        return None
    counts = {k: {PRIME_HAND: [0, 0]} for k in range(texts)}
    for run in runs:
        for k, verdict in enumerate(run["prime_hand"]["per_line"]):
            if verdict is not None:
                counts[k][PRIME_HAND][0] += int(verdict)
                counts[k][PRIME_HAND][1] += 1
    return counts


def compare_reports(old: dict, new: dict) -> list[dict]:
    """Two ``evaluate_checkpoint`` reports of synthesis models that wrote the same texts, bias by bias.

    For each bias both wrote at, and each of ``cer.SHARES`` (lower is better), and ``PRIME_HAND``
    where both were primed and kept each line's verdict: the two pooled
    shares and their difference, ``new`` minus ``old``, with an approximate 95% interval. The
    difference is paired by text (``cer.excess``: each text's lines in ``new`` charged ``old``'s
    rate on that text), so texts hard for both cost nothing and the interval is far narrower
    than the two pooled intervals side by side. ``HwkitError`` when the reports cannot be paired.
    """
    for name, report in (("old", old), ("new", new)):
        writing = report.get("writing") if isinstance(report, dict) else None
        runs = writing.get("runs") if isinstance(writing, dict) else None
        if not isinstance(runs, list) or not isinstance(writing.get("asked"), list) or any(
                not isinstance(run, dict) or not isinstance(run.get("readings"), list) for run in runs):  # fmt: skip
            raise HwkitError(f"the {name} report is not one of `hwkit evaluate --json` on a synthesis model "
                             "with its readings (an older hwkit's, or another kind of model)")  # fmt: skip
        if any(len(run["readings"]) != len(writing["asked"]) for run in runs):
            raise HwkitError(f"the {name} report has runs with more or fewer readings than texts: it was cut or edited")
    asked = old["writing"]["asked"]
    if new["writing"]["asked"] != asked:
        raise HwkitError("the reports wrote different texts: compare runs of the same --text-file (or --texts)")
    clusters = list(range(len(asked)))
    out = []
    for bias in sorted({run["bias"] for run in old["writing"]["runs"]} & {run["bias"] for run in new["writing"]["runs"]}):
        read = {}
        for name, report in (("old", old), ("new", new)):
            runs = [run for run in report["writing"]["runs"] if run["bias"] == bias]
            read[name] = [reading for run in runs for reading in run["readings"]]
        runs_old, runs_new = len(read["old"]) // len(asked), len(read["new"]) // len(asked)
        shares_old, shares_new = _pooled_runs(asked, read["old"]), _pooled_runs(asked, read["new"])
        paired = excess(asked * runs_new, read["new"], clusters * runs_new, asked * runs_old, read["old"], clusters * runs_old)
        verdicts = {name: _prime_verdicts(report, bias, len(asked)) for name, report in (("old", old), ("new", new))}
        if verdicts["old"] is not None and verdicts["new"] is not None:  # both primed: the prime's hand, paired alike
            for name, shares in (("old", shares_old), ("new", shares_new)):  # a text's lines as one cluster
                shares[PRIME_HAND] = pooled_share([c[PRIME_HAND] for c in verdicts[name].values()])
            paired.update(cluster_excess(verdicts["new"], verdicts["old"]))
        rows = {}
        for share in [*SHARES, PRIME_HAND]:
            if share not in paired:
                continue
            a, b, d = shares_old[share], shares_new[share], paired[share]
            if a is None or b is None or d is None:
                rows[share] = None
                continue
            diff, half = d["excess"] / b["count"], d["half_width"] / b["count"]
            verdict = "worse" if diff - half > 0 else "better" if diff + half < 0 else "no clear difference"
            bounded = math.isfinite(half)  # one text holding the share: no spread, no interval
            rows[share] = {"old": a["rate"], "new": b["rate"], "difference": diff, "low": diff - half if bounded else None,
                           "high": diff + half if bounded else None, "verdict": verdict}  # fmt: skip
        out.append({"bias": bias, "old_lines": len(read["old"]), "new_lines": len(read["new"]), "shares": rows})
    if not out:
        raise HwkitError("the reports share no bias: compare runs made at the same --bias")
    return out
