"""``hwkit read`` and ``hwkit evaluate`` through click, on a tiny letter store with models trained for seconds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import letter_store
from hwkit.cer import cer, most_misread
from hwkit.checkpoint import Checkpoint
from hwkit.cli import cli
from hwkit.errors import TextError
from hwkit.evaluation import compare_reports
from hwkit.store import Store
from hwkit.train import start


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A store of letter strings, a recognizer that reads it, and barely trained synthesis and prediction nets."""
    root = tmp_path_factory.mktemp("letters")
    store = letter_store(root / "letters.h5")
    reader = start(store, "recognizer", "tiny", run_dir=root / "reader", hidden=32, batch_size=16, lr=1e-2,
                   epochs=60, max_steps=200, log_every=50)  # fmt: skip
    synth = start(store, "synthesis", "tiny", run_dir=root / "synth", max_steps=2)
    pred = start(store, "prediction", "tiny", run_dir=root / "pred", max_steps=2)
    return {"store": store, "reader": reader.run_dir, "synth": synth.run_dir, "pred": pred.run_dir, "root": root}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_read_a_split_prints_each_line_and_scores_it(models):
    result = run("read", models["reader"], "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["scored_lines"] == len(doc["readings"]) == 24
    assert all(r["truth"] and set(r) == {"source", "text", "truth", "scaled"} for r in doc["readings"])
    assert all(r["scaled"] == 1.0 for r in doc["readings"])  # its own store: already in its units
    assert doc["cer"] < 0.5 and "CER" in result.stderr  # trained for seconds: far better than chance
    plain = run("read", models["reader"], "--lines", "r080", "--lines", "r081")
    assert plain.exit_code == 0 and [line.split("\t")[0] for line in plain.stdout.splitlines()] == ["r080", "r081"]


def test_read_files_written_by_sample(models, tmp_path):
    out = tmp_path / "written"
    sampled = run("sample", models["synth"], "--text", "tea", "--text", "cost", "--seed", "0", "--npz", "--inkml",
                  "-o", out)  # fmt: skip
    assert sampled.exit_code == 0, sampled.output
    result = run("read", models["reader"], out.with_suffix(".npz"), out.with_suffix(".inkml"), "--json")
    assert result.exit_code == 0, result.output
    readings = json.loads(result.stdout)["readings"]
    assert [r["source"] for r in readings] == ["written.npz#0", "written.npz#1", "written.inkml#0", "written.inkml#1"]
    assert [r["truth"] for r in readings] == ["tea", "cost"] * 2
    assert [r["text"] for r in readings[:2]] == [r["text"] for r in readings[2:]]  # the same ink, read the same
    one = tmp_path / "one"  # a file of one line is named by the file alone, whatever its kind
    assert run("sample", models["synth"], "--text", "tea", "--seed", "0", "--npz", "--inkml", "-o", one).exit_code == 0
    plain = run("read", models["reader"], one.with_suffix(".npz"), one.with_suffix(".inkml"))
    assert [line.split("\t")[0] for line in plain.stdout.splitlines()] == ["one.npz", "one.inkml"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["synth", "--split", "test"], "reading needs a recognizer"),
        (["reader"], "nothing to read"),
        (["reader", "missing.npz"], "missing.npz: no such file"),
    ],
)
def test_read_errors_are_one_line(models, args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("read", models[args[0]], *args[1:])
    assert result.exit_code in (1, 2) and says in result.stderr and "Traceback" not in result.output


def test_read_with_only_a_file_of_ink_says_the_recognizer_comes_first(tmp_path):
    result = run("read", tmp_path / "mine.inkml")
    assert result.exit_code == 2 and "give the recognizer first" in result.stderr
    assert "mine.inkml is ink, not a recognizer" in result.stderr and "--files" not in result.stderr


def test_evaluate_primed_writes_each_text_in_a_train_lines_hand(models, tmp_path, monkeypatch):
    from hwkit import evaluation, legibility

    primes_seen = []
    original = legibility.sample_text

    def spy(*args, primes=None, **kwargs):
        primes_seen.append(primes)
        return original(*args, primes=primes, **kwargs)

    monkeypatch.setattr(legibility, "sample_text", spy)
    # this letters-only model has no space, and priming joins texts with one: said plainly, after the choice
    with pytest.raises(TextError, match="alphabet has no space, so it cannot be primed"):
        evaluation.evaluate_checkpoint(models["synth"], reader=models["reader"], max_texts=4, biases=[1.0],
                                       primed=True, tries=1)  # fmt: skip
    (primes,) = primes_seen
    from hwkit.checkpoint import find_checkpoint

    store = Store(Checkpoint.load(find_checkpoint(models["synth"])).store["path"])
    train_texts = {store.texts[i] for i in store.split("train")}
    assert len(primes) == 4 and all(p is not None and p.text in train_texts for p in primes)


def test_evaluate_synthesis_reports_every_field_and_a_grid(models, tmp_path):
    grid = tmp_path / "grid.png"
    result = run("evaluate", models["synth"], "--reader", models["reader"], "--texts", "6", "--bias", "0.5",
                 "--bias", "2", "--grid", grid, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "synthesis" and set(report["loss"]) == {"test", "valid"}
    for scores in report["loss"].values():
        assert scores["lines"] == 24 and np.isfinite([scores["nats_per_line"], scores["nats_per_point"]]).all()
    writing = report["writing"]
    store = Store(report["store"])
    asked = [store.texts[i] for i in store.split("test")[:6]]
    assert writing["texts"] == 6 and [r["bias"] for r in writing["runs"]] == [0.5, 2.0]
    for r in writing["runs"]:
        assert set(r) == {"bias", "seed", "lines", "stopped_by_rule", "hit_cap", "length_ratio_median", "cer",
                          "errors", "hand", "prime_hand", "readings"}
        assert r["prime_hand"] is None  # unprimed: this letters-only model has no space to join a prime with
        assert cer(asked, r["readings"]) == pytest.approx(r["cer"])
        assert set(r["errors"]["error_rate"]) == {"capitals", "digits", "lower case", "spaces"}
        assert set(r["errors"]["word_accuracy"]) == {"first", "later"}
        assert r["stopped_by_rule"] + r["hit_cap"] == r["lines"] == 6 and r["length_ratio_median"] > 0
    # the judge reads real lines far better than the same readings scored against shuffled texts
    assert writing["reader_cer_on_real_test_lines"] < 0.5 < writing["reader_cer_against_shuffled_texts"]
    with Image.open(writing["grid"]) as image:
        assert image.format == "PNG" and image.height > 100
    args = ("evaluate", models["synth"], "--reader", models["reader"], "--texts", "30", "--bias", "1")
    tables = run(*args, "--grid", tmp_path / "grid2.png")
    assert tables.exit_code == 0, tables.output
    assert "holds 24 text(s), fewer than the 30 asked for" in tables.stderr  # the split is smaller: said, not hidden
    assert "characters misread" in tables.stdout and "judged by" in tables.stdout
    (same,) = json.loads(run(*args, "--grid", tmp_path / "grid3.png", "--json").stdout)["writing"]["runs"]
    worst = most_misread([same["errors"]])  # the same seed writes the same lines: the table names their worst
    listed = [f"{c} {bad}/{n} ({'dropped' if not got else 'as ' + got} {times})" for c, bad, n, got, times in worst]
    assert worst and all(item in tables.stdout for item in listed), (listed, tables.stdout)  # a tiny model misreads plenty


def test_evaluate_pools_the_seeds_of_each_bias_with_intervals(models, tmp_path):
    args = ("evaluate", models["synth"], "--reader", models["reader"], "--texts", "6", "--bias", "1", "--seed", "1",
            "--seed", "2", "--grid", tmp_path / "grid.png")  # fmt: skip
    writing = json.loads(run(*args, "--json").stdout)["writing"]
    (pooled,) = writing["pooled"]
    assert pooled["bias"] == 1.0 and pooled["seeds"] == [1, 2] and pooled["lines"] == 12
    runs = writing["runs"]
    assert pooled["cer"]["rate"] == pytest.approx(np.mean([r["cer"] for r in runs]))  # the same texts at each seed
    lower = pooled["lower case"]
    assert lower["count"] == sum(r["errors"]["characters"]["lower case"] for r in runs)
    assert lower["wrong"] == sum(r["errors"]["misread"]["lower case"] for r in runs)
    assert lower["low"] <= lower["rate"] <= lower["high"]
    real = writing["reader_pooled_on_real_test_lines"]
    assert real["cer"]["rate"] == pytest.approx(writing["reader_cer_on_real_test_lines"])
    tables = run(*args)
    assert tables.exit_code == 0, tables.output
    assert "pooled over seeds 1, 2" in tables.stdout and "real test lines (judge)" in tables.stdout
    one_seed = run(*args[:-4], "--grid", tmp_path / "grid2.png")  # one seed: nothing to pool
    assert one_seed.exit_code == 0 and "pooled over" not in one_seed.stdout


def test_compare_pairs_two_reports_text_by_text(models, tmp_path):
    args = ("evaluate", models["synth"], "--reader", models["reader"], "--texts", "8", "--bias", "1", "--seed", "1",
            "--seed", "2", "--grid", tmp_path / "grid.png", "--json")  # fmt: skip
    report = json.loads(run(*args).stdout)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(report))
    same = run("compare", old, old, "--json")
    assert same.exit_code == 0, same.output
    (entry,) = json.loads(same.stdout)["biases"]
    assert entry["bias"] == 1.0 and entry["old_lines"] == entry["new_lines"] == 16
    for row in entry["shares"].values():
        if row is not None:
            assert row["difference"] == pytest.approx(0) and row["verdict"] == "no clear difference"
    asked = report["writing"]["asked"]
    assert all(r["cer"] > 0.2 for r in report["writing"]["runs"])  # trained for two steps: far from legible
    perfect = json.loads(json.dumps(report))  # a model whose every line reads as its text
    for r in perfect["writing"]["runs"]:
        r["readings"] = list(asked)
    new = tmp_path / "new.json"
    new.write_text(json.dumps(perfect))
    compared = json.loads(run("compare", old, new, "--json").stdout)["biases"][0]["shares"]
    assert compared["cer"]["verdict"] == "better" and compared["cer"]["high"] < 0
    assert compared["cer"]["new"] == 0 and compared["cer"]["difference"] == pytest.approx(-compared["cer"]["old"])
    assert json.loads(run("compare", new, old, "--json").stdout)["biases"][0]["shares"]["cer"]["verdict"] == "worse"
    tables = run("compare", new, old)
    assert tables.exit_code == 0 and "paired by text" in tables.stdout and "worse" in tables.stdout
    other = json.loads(json.dumps(report))
    other["writing"]["asked"] = asked[::-1]
    (tmp_path / "other.json").write_text(json.dumps(other))
    (tmp_path / "loss.json").write_text(json.dumps({"kind": "prediction", "loss": {}}))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "list.json").write_text("[1, 2]")
    cut = json.loads(json.dumps(report))
    cut["writing"]["runs"][0]["readings"].pop()
    (tmp_path / "cut.json").write_text(json.dumps(cut))
    for path, says in (("other.json", "wrote different texts"), ("loss.json", "not one of `hwkit evaluate --json`"),
                       ("broken.json", "not a JSON report"), ("list.json", "not one of `hwkit evaluate --json`"),
                       ("cut.json", "more or fewer readings than texts")):  # fmt: skip
        result = run("compare", old, tmp_path / path)
        assert result.exit_code == 1 and says in result.stderr and "Traceback" not in result.output, result.output


def _primed_report(asked: list[str], verdicts: list[list[bool | None]]) -> dict:
    """The parts of an ``evaluate --json`` report that ``compare_reports`` reads: one run per seed, read exactly."""
    runs = [{"bias": 1.0, "seed": seed, "readings": list(asked), "prime_hand": {"per_line": per_line}}
            for seed, per_line in enumerate(verdicts, 1)]  # fmt: skip
    return {"writing": {"asked": asked, "runs": runs}}


def test_compare_pairs_the_prime_hand_verdicts_text_by_text():
    asked = [f"text {k}" for k in range(6)]
    old = _primed_report(asked, [[True, True, False, None, True, False], [True, False, False, True, True, None]])
    kept = compare_reports(old, old)[0]["shares"]["prime hand"]
    assert kept["old"] == kept["new"] == pytest.approx(6 / 10) and kept["difference"] == pytest.approx(0)
    assert kept["verdict"] == "no clear difference"
    fixed = _primed_report(asked, [[False] * 6, [False] * 6])  # every line in its prime's hand
    better = compare_reports(old, fixed)[0]["shares"]["prime hand"]
    # each text's two new lines charged old's rate on that text (1, 1/2, 0, 1, 1, 0), per new line measured
    assert better["new"] == 0 and better["difference"] == pytest.approx(-2 * (1 + 0.5 + 0 + 1 + 1 + 0) / 12)
    assert better["verdict"] == "better" and better["high"] < 0
    assert compare_reports(fixed, old)[0]["shares"]["prime hand"]["verdict"] == "worse"
    unprimed = json.loads(json.dumps(old))
    for r in unprimed["writing"]["runs"]:
        r["prime_hand"] = None
    assert "prime hand" not in compare_reports(unprimed, old)[0]["shares"]  # nothing to pair it with
    assert compare_reports(old, fixed)[0]["shares"]["cer"]["difference"] == 0  # the legibility shares still pair


def _held_out_demo_lines(texts: list[str], writers: int | None = None) -> list:
    """``texts`` in the hands of the quickstart corpus's held-out writers (the first ``writers`` of them)."""
    from hwkit.config import DemoParams
    from hwkit.demo import held_out_writers, writer_lines

    demo = DemoParams()
    return [line for w in held_out_writers(demo.seed, demo.writers)[:writers]
            for line in writer_lines(w, texts, seed=demo.seed)]  # fmt: skip


def test_the_bundled_judge_reads_new_demo_writing_and_is_not_the_reader_that_chooses():
    from hwkit.checkpoint import BUNDLED, BUNDLED_JUDGE, BUNDLED_READER
    from hwkit.reading import Reader

    judge = Checkpoint.load(BUNDLED_JUDGE)
    assert judge.kind == "recognizer"
    trained_on = {Checkpoint.load(p).store["fingerprint"] for p in (BUNDLED, BUNDLED_READER)}
    assert judge.store["fingerprint"] not in trained_on  # other writers, other texts: an independent grade
    texts = ["Zoe paid 17 euros for 3 jars of Greek honey.", "Why did Quentin wait until Friday?"]
    lines = _held_out_demo_lines(texts, 3)
    read = Reader(judge, "cpu").read([line.offsets for line in lines])
    assert cer([line.text for line in lines], read) < 0.03, read  # writers of the quickstart corpus it never saw


def test_the_bundled_judge_reads_real_sevens_as_sevens():
    # the judge before it, trained without a numbers drill, read 3 of these 32 real sevens as T
    from hwkit.cer import align
    from hwkit.checkpoint import BUNDLED_JUDGE
    from hwkit.reading import Reader

    lines = _held_out_demo_lines(["Room 77 is on floor 7, not 17.", "Take 707 home by 7:47 on Friday."])
    read = Reader(Checkpoint.load(BUNDLED_JUDGE), "cpu").read([line.offsets for line in lines])
    sevens = [(h[j] if j is not None else "") for line, h in zip(lines, read)
              for i, j in align(line.text, h) if i is not None and line.text[i] == "7"]  # fmt: skip
    assert len(sevens) == 32 and sum(c != "7" for c in sevens) <= 1, read


def test_the_judge_is_named_else_the_stores_own_else_the_bundled_one_for_demo_stores(tmp_path, monkeypatch):
    import shutil

    from hwkit import checkpoint, train
    from hwkit.evaluation import ensure_reader
    from hwkit.legibility import store_reader_dir

    demo = Store(letter_store(tmp_path / "demo.h5"))  # a store hwkit prepare --demo could have written
    models = tmp_path / "models"
    assert ensure_reader(None, demo, models, print) == checkpoint.BUNDLED_JUDGE
    assert ensure_reader(checkpoint.BUNDLED_READER, demo, models, print) == checkpoint.BUNDLED_READER
    own = store_reader_dir(demo.fingerprint, models)
    own.mkdir(parents=True)
    shutil.copy(checkpoint.BUNDLED_READER, own / "best.pt")  # one evaluate trained for this store
    assert ensure_reader(None, demo, models, print) == own / "best.pt"
    mine = Store(letter_store(tmp_path / "mine.h5", seed=1, source="iamondb"))
    trained = []

    def start(store, kind, preset, run_dir, progress):  # stands in for a few minutes of training
        trained.append((kind, run_dir))
        return SimpleNamespace(best_path=run_dir / "best.pt")

    monkeypatch.setattr(train, "start", start)
    mine_dir = store_reader_dir(mine.fingerprint, models)
    assert ensure_reader(None, mine, models, print) == mine_dir / "best.pt"  # no judge of its hands: one is trained
    assert trained == [("recognizer", mine_dir)]


def test_evaluate_recognizer_and_prediction(models):
    reader = run("evaluate", models["reader"], "--json")
    assert reader.exit_code == 0, reader.output
    report = json.loads(reader.stdout)
    assert report["kind"] == "recognizer" and report["cer"]["test"] < 0.5 and "writing" not in report
    table = run("evaluate", models["pred"])
    assert table.exit_code == 0, table.output
    assert "prediction model" in table.stdout and "nats/line" in table.stdout and "writing" not in table.stdout


def test_read_iam_ondb_stroke_files_and_refuse_broken_ones(models, tmp_path):
    from iamtree import write_tree

    write_tree(tmp_path / "iam", forms=1, lines_per_form=2)
    files = sorted((tmp_path / "iam" / "lineStrokes").rglob("*.xml"))
    result = run("read", models["reader"], *files)
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [f.name for f in files]
    broken = tmp_path / "broken.xml"
    broken.write_text("<WhiteboardCaptureSession><StrokeSet>")
    refused = run("read", models["reader"], broken)
    assert refused.exit_code == 1 and "broken.xml: not a readable stroke file" in refused.stderr


def test_a_recognizer_run_resumes_exactly_and_records_cer_each_validation(tmp_path):
    from helpers import letter_store
    from hwkit.checkpoint import Checkpoint
    from hwkit.train import resume

    store = letter_store(tmp_path / "letters.h5", n_lines=32)
    whole = start(store, "recognizer", "tiny", run_dir=tmp_path / "whole", max_steps=6, epochs=3, batch_size=8)
    first = start(store, "recognizer", "tiny", run_dir=tmp_path / "split", max_steps=3, epochs=3, batch_size=8)
    second = resume(first.run_dir, max_steps=6)
    a, b = Checkpoint.load(whole.last_path), Checkpoint.load(second.last_path)
    assert a.step == b.step == 6
    for name in a.weights:
        torch.testing.assert_close(a.weights[name], b.weights[name], rtol=1e-5, atol=1e-6)
    valid = [m for m in b.metrics if m["kind"] == "valid"]
    assert valid and all(0 <= m["cer"] <= 1.5 for m in valid)


def test_evaluate_without_a_checkpoint_takes_the_newest_writer_never_a_reader(models, tmp_path):
    import os
    import shutil

    from hwkit.evaluation import evaluate_checkpoint

    for name in ("synth", "reader"):
        shutil.copytree(models[name], tmp_path / "models" / name)
    os.utime(tmp_path / "models" / "synth" / "best.pt", (1e9, 1e9))  # the reader is newer
    report = evaluate_checkpoint(models_dir=tmp_path / "models", reader=models["reader"], max_texts=2, biases=[1.0])
    assert report["kind"] == "synthesis" and report["checkpoint"].endswith("synth/best.pt")


def test_the_grid_of_a_bundled_model_never_goes_into_the_package(tmp_path, monkeypatch):
    import os

    from hwkit.checkpoint import BUNDLED
    from hwkit.evaluation import default_grid
    from hwkit.paths import SAMPLES_DIR

    monkeypatch.chdir(BUNDLED.parent.parent.parent)  # as a user names it from the checkout: a relative path
    relative = os.path.relpath(BUNDLED)
    for named in (relative, BUNDLED):
        assert default_grid(named).parent == SAMPLES_DIR, named


def test_evaluate_refuses_synthesis_options_for_another_kind_and_an_empty_text_file(models, tmp_path):
    for args, says in ((["--bias", "1"], "--bias: only for a synthesis model"),
                       (["--texts", "5"], "--texts: only for a synthesis model")):  # fmt: skip
        result = run("evaluate", models["reader"], *args)
        assert result.exit_code == 2 and says in result.stderr and "recognizer model" in result.stderr, result.output
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    result = run("evaluate", models["synth"], "--text-file", blank)
    assert result.exit_code == 2 and "blank.txt: no text in it to write" in result.stderr, result.output


@pytest.mark.parametrize(("lines", "labels"), [(3, ["worst", "worst", "best"]), (12, ["worst"] * 4 + ["best"] * 4)])
def test_the_grid_labels_the_worse_half_worst_when_lines_are_few(monkeypatch, tmp_path, lines, labels):
    from hwkit import evaluation, render

    seen = []
    monkeypatch.setattr(render, "layout", lambda offsets, captions, style: seen.extend(captions) or [])
    monkeypatch.setattr(render, "layout_png", lambda placed: Image.new("RGB", (4, 4)))
    per_line = [k / lines for k in range(lines)]
    ink = [np.zeros((2, 3), np.float32)] * lines
    evaluation.draw_grid(tmp_path / "g.png", ["t"] * lines, ink, ["t"] * lines, per_line, 1.0)
    assert [c.split(" ")[0] for c in seen] == labels
    assert seen[0].startswith(f"worst (bias 1), CER {per_line[-1]:.0%}")
    assert seen[labels.index("best")].startswith("best (bias 1), CER 0%")
