"""House hands and best-of-tries (``hwkit.legibility``), and how sample, pages and evaluate use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hwkit import legibility
from hwkit.checkpoint import Checkpoint
from hwkit.cli import cli
from hwkit.errors import CheckpointError, OptionError, TextError
from hwkit.generate import generate
from hwkit.sample import Prime, sample_text
from hwkit.store import Store
from hwkit.train import start


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A store of spaced words in 5 writers' scribbles, a synthesis net and a recognizer trained for 2 steps."""
    from helpers import synthetic_lines
    from hwkit.store import write_store

    root = tmp_path_factory.mktemp("legible")
    lines = synthetic_lines(40, seed=3, min_points=30, max_points=80)
    store = write_store(root / "words.h5", lines, {"train": range(30), "valid": range(30, 35), "test": range(35, 40)},
                        source="iamondb", prepare_params={"max_jump": 1000.0})  # fmt: skip
    synth = start(store, "synthesis", "tiny", run_dir=root / "synth", max_steps=2)
    models = root / "models"
    reader = start(store, "recognizer", "tiny", run_dir=models / f"reader-{Store(store).fingerprint[:12]}",
                   max_steps=2)  # fmt: skip
    return {"store": store, "synth": synth.best_path, "reader": reader.best_path, "models": models, "root": root}


class ScriptedReader:
    """Reads each line as its text, except where ``wrong(k)`` says the k-th line read so far is misread."""

    def __init__(self, texts_of, wrong):
        self.texts_of, self.wrong, self.seen = texts_of, wrong, 0

    def read(self, lines):
        out = []
        for offsets in lines:
            text = self.texts_of(self.seen)
            out.append(text + "qq" * self.wrong(self.seen))
            self.seen += 1
        return out


def test_best_of_keeps_the_draw_read_best_and_one_try_is_a_plain_sample(tiny):
    ckpt = Checkpoint.load(tiny["synth"])
    model = ckpt.build_model()
    texts, tries = ["ab cd", "ef"], 4
    common = {"stats": ckpt.stats, "bias": 0.5, "seed": 11}
    draws = sample_text(model, ckpt.alphabet, [t for t in texts for _ in range(tries)], **common).lines
    # draw 2 of the first text and draw 1 of the second are read right; the others with 1-3 errors
    errors = {0: 3, 1: 1, 2: 0, 3: 2, 4: 2, 5: 0, 6: 1, 7: 3}
    reader = ScriptedReader(lambda k: draws[k].text, errors.__getitem__)
    kept = legibility.best_of(model, ckpt.alphabet, texts, tries=tries, reader=reader, **common).lines
    assert [line.text for line in kept] == texts
    assert np.array_equal(kept[0].offsets, draws[2].offsets) and np.array_equal(kept[1].offsets, draws[5].offsets)
    assert reader.seen == len(draws)  # each text had a draw read right: no second round
    plain = sample_text(model, ckpt.alphabet, texts, **common).lines
    one = legibility.best_of(model, ckpt.alphabet, texts, tries=1, **common).lines
    assert all(np.array_equal(a.offsets, b.offsets) for a, b in zip(one, plain))
    with pytest.raises(ValueError, match="needs a reader"):
        legibility.best_of(model, ckpt.alphabet, texts, tries=2, **common)


def test_best_of_draws_again_the_texts_no_draw_was_read_right_and_keeps_the_best_of_both_rounds(tiny):
    ckpt = Checkpoint.load(tiny["synth"])
    model = ckpt.build_model()
    texts, tries = ["ab cd", "ef", "gh"], 2
    common = {"stats": ckpt.stats, "bias": 0.5, "seed": 11}
    first = sample_text(model, ckpt.alphabet, [t for t in texts for _ in range(tries)], **common).lines
    again = ["ab cd", "ab cd", "gh", "gh"]  # "ef" had a draw read right
    second = sample_text(model, ckpt.alphabet, again, **{**common, "seed": 11 + legibility.SECOND_ROUND_SEED}).lines
    drawn = first + second
    # "ab cd": 2 and 3 errors, then 1 and 0; "ef": 1 and 0; "gh": 1 and 2, then 3 and 2
    errors = [2, 3, 1, 0, 1, 2, 1, 0, 3, 2]
    reader = ScriptedReader(lambda k: drawn[k].text, errors.__getitem__)
    result = legibility.best_of(model, ckpt.alphabet, texts, tries=tries, reader=reader, **common)
    assert reader.seen == len(drawn) and result.seed == 11
    kept = [line.offsets for line in result.lines]
    assert np.array_equal(kept[0], second[1].offsets)  # read right in the second round
    assert np.array_equal(kept[1], first[3].offsets)
    assert np.array_equal(kept[2], first[4].offsets)  # the first round's was read better


def test_best_of_breaks_ties_by_the_stop_rule_then_the_first_draw(tiny):
    ckpt = Checkpoint.load(tiny["synth"])
    model = ckpt.build_model()
    common = {"stats": ckpt.stats, "bias": 0.0, "seed": 4}
    draws = sample_text(model, ckpt.alphabet, ["ab"] * 3, **common).lines
    reader = ScriptedReader(lambda k: "ab", lambda k: 0)
    kept = legibility.best_of(model, ckpt.alphabet, ["ab"], tries=3, reader=reader, **common).lines[0]
    expected = min(range(3), key=lambda i: (draws[i].stop != "rule", i))
    assert np.array_equal(kept.offsets, draws[expected].offsets)


def test_best_of_prefers_among_draws_read_alike_one_that_keeps_its_hand(tiny, monkeypatch):
    ckpt = Checkpoint.load(tiny["synth"])
    model = ckpt.build_model()
    store = Store(tiny["store"])
    prime = Prime(store.offsets(0), store.texts[0])
    common = {"stats": ckpt.stats, "bias": 0.0, "seed": 4, "primes": prime, "keep_prime": True}
    draws = sample_text(model, ckpt.alphabet, ["ab"] * 3, **common).lines
    asked = draws[0].text  # with the prime's text kept: what the reader reads right
    judged = []

    def scripted(offsets, thresholds):  # draws 0 and 1 switch hand, draw 2 keeps it
        judged.append(len(offsets))
        return len(judged) < 3

    monkeypatch.setattr(legibility, "switches", scripted)
    reader = ScriptedReader(lambda k: asked, lambda k: 0)
    kept = legibility.best_of(model, ckpt.alphabet, ["ab"], tries=3, reader=reader, hold=[1.0, 1.0, 1.0],
                              **common).lines[0]  # fmt: skip
    assert np.array_equal(kept.offsets, draws[2].offsets)
    assert judged == [len(d.offsets) - d.prime_rows for d in draws]  # the written ink alone, not the prime
    judged.clear()  # without thresholds the hand is not asked about, and the stop rule then the first draw decide
    reader = ScriptedReader(lambda k: asked, lambda k: 0)
    plain = legibility.best_of(model, ckpt.alphabet, ["ab"], tries=3, reader=reader, **common).lines[0]
    assert not judged and np.array_equal(plain.offsets, draws[min(range(3), key=lambda i: (draws[i].stop != "rule", i))].offsets)
    # a misread draw still loses to one read right, however well it holds its hand
    reader = ScriptedReader(lambda k: asked, lambda k: k == 2)
    judged.clear()
    kept = legibility.best_of(model, ckpt.alphabet, ["ab"], tries=3, reader=reader, hold=[1.0, 1.0, 1.0],
                              **common).lines[0]  # fmt: skip
    assert not np.array_equal(kept.offsets, draws[2].offsets)


def test_best_of_keeps_among_draws_read_alike_the_one_in_its_primes_hand(tiny, monkeypatch):
    from test_handstyle import _line, _slanted

    from hwkit.sample import SampleResult, SampledLine
    from hwkit.strokes import points_to_offsets

    ink = points_to_offsets(_line("the quick brown fox jumps over a lazy dog", 2, np.random.default_rng(0)))
    prime = Prime(ink, "the quick brown fox jumps over a lazy dog")
    # three draws of the prime's own ink, at 25 and -20 degrees more slant, and at its own slant
    slants = [25.0, -20.0, 0.0]

    def drawn(model, alphabet, texts, *, primes, **options):
        assert len(primes) == len(texts) == 3
        lines = [SampledLine(_slanted(ink, d), np.zeros(len(ink)), None, "rule", t) for d, t in zip(slants, texts)]
        return SampleResult(lines, 1)

    monkeypatch.setattr(legibility, "sample_text", drawn)
    hold = [1.0, 1.0, 5.0]  # the halves of a draw never differ by more than this: no draw switches hand
    reader = ScriptedReader(lambda k: "ab", lambda k: 0)
    kept = legibility.best_of(None, None, ["ab"], tries=3, reader=reader, primes=prime, hold=hold).lines[0]
    assert np.array_equal(kept.offsets, _slanted(ink, 0.0))
    reader = ScriptedReader(lambda k: "ab", lambda k: k == 2)  # the draw in the prime's hand misread: it loses
    kept = legibility.best_of(None, None, ["ab"], tries=3, reader=reader, primes=prime, hold=hold).lines[0]
    assert np.array_equal(kept.offsets, _slanted(ink, -20.0))  # the nearer of the other two
    reader = ScriptedReader(lambda k: "ab", lambda k: 0)  # without a prime, the first draw
    kept = legibility.best_of(None, None, ["ab"], tries=3, reader=reader, primes=[None], hold=hold).lines[0]
    assert np.array_equal(kept.offsets, _slanted(ink, 25.0))


def test_house_hands_are_the_writers_read_best_one_line_each(tiny):
    store = Store(tiny["store"])
    ckpt = Checkpoint.load(tiny["synth"])
    valid = [store.texts[i].strip() for i in store.split("valid")]
    per_hand = [4, 0, 2, 1, 3]  # errors on every line written in the k-th candidate hand
    reader = ScriptedReader(lambda k: valid[k % len(valid)], lambda k: per_hand[k // len(valid) % len(per_hand)])
    events = []
    hands = legibility.house_hands(ckpt, store, reader, count=3, texts=len(valid), progress=events.append)
    writers = {int(store.writer_ids[i]) for i in store.split("train")}
    assert len(events) == len(writers) == 5 and [e["done"] for e in events] == [1, 2, 3, 4, 5]
    order = sorted(range(5), key=lambda k: per_hand[k])[:3]
    assert [h["line_id"] for h in hands] == [events[k]["line_id"] for k in order]
    assert [h["cer"] for h in hands] == sorted(h["cer"] for h in hands) and hands[0]["cer"] == 0
    assert len({h["writer_id"] for h in hands}) == 3
    for hand in hands:
        i = store.index_of(hand["line_id"])
        assert hand["text"] == store.texts[i] and np.array_equal(hand["offsets"].numpy(), store.offsets(i))


def with_hands(tiny, path):
    """The tiny synthesis checkpoint carrying two train lines as house hands, saved at ``path``."""
    store = Store(tiny["store"])
    ckpt = Checkpoint.load(tiny["synth"])
    ckpt.hands = [{"line_id": store.line_ids[i], "writer_id": int(store.writer_ids[i]), "text": store.texts[i],
                   "offsets": torch.from_numpy(store.offsets(i)), "cer": 0.1} for i in (0, 1)]  # fmt: skip
    return ckpt.save(path)


def test_resuming_a_run_whose_best_checkpoint_has_hands_says_they_will_not_carry_over(tiny, tmp_path):
    import shutil

    from hwkit.train import resume

    run = Path(shutil.copytree(Path(tiny["synth"]).parent, tmp_path / "run"))
    events = []
    resume(run, max_steps=3, progress=events.append)
    assert not [e for e in events if e["event"] == "note" and "house hands" in e["text"]]  # none yet: nothing said
    with_hands(tiny, run / "best.pt")
    resume(run, max_steps=4, progress=events.append)
    (note,) = [e["text"] for e in events if e["event"] == "note" and "house hands" in e["text"]]
    assert str(run / "best.pt") in note and "hwkit style house" in note


def test_a_checkpoint_carries_its_hands_and_refuses_broken_ones(tiny, tmp_path):
    path = with_hands(tiny, tmp_path / "hands.pt")
    back = Checkpoint.load(path)
    assert [h["line_id"] for h in back.hands] == [Store(tiny["store"]).line_ids[i] for i in (0, 1)]
    back.hand_thresholds = [0.2, 0.5, 6.0]
    slim = Checkpoint.load(back.weights_only().save(tmp_path / "slim.pt"))
    assert len(slim.hands) == 2 and torch.equal(slim.hands[1]["offsets"], back.hands[1]["offsets"])
    assert slim.hand_thresholds == [0.2, 0.5, 6.0]
    for bad in ([0.2, 0.5], [0.2, -1.0, 6.0], [0.2, float("inf"), 6.0], "0.2"):
        data = back.to_dict()
        data["hand_thresholds"] = bad
        torch.save(data, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="hand_thresholds must be three positive numbers"):
            Checkpoint.load(tmp_path / "bad.pt")
    for broken in ({"line_id": "x", "text": "a"}, {"line_id": "x", "text": "a", "offsets": torch.zeros(4, 2)},
                   {"line_id": "x", "text": "a", "offsets": torch.full((4, 3), float("nan"))}):  # fmt: skip
        data = back.to_dict()
        data["hands"] = [broken]
        torch.save(data, tmp_path / "broken.pt")
        with pytest.raises(CheckpointError, match="hand 0 is not"):
            Checkpoint.load(tmp_path / "broken.pt")


def test_a_model_with_house_hands_writes_in_one_unless_told_none(tiny, tmp_path):
    path = with_hands(tiny, tmp_path / "hands.pt")
    store = Store(tiny["store"])
    made = generate(path, ["ab cd"], seed=3, keep_prime=True, tries=1, models_dir=tmp_path)
    assert any("house hand" in note for note in made.notes)
    line = made.result.lines[0]
    assert line.prime_rows > 0 and any(np.array_equal(line.offsets[: line.prime_rows], store.offsets(i)) for i in (0, 1))
    cold = generate(path, ["ab cd"], seed=3, styles=("none",), tries=1, models_dir=tmp_path)
    assert cold.result.lines[0].prime_rows == 0 and not any("house hand" in note for note in cold.notes)
    with pytest.raises(OptionError, match="only with a style"):
        generate(path, ["ab"], styles=("none",), keep_prime=True, models_dir=tmp_path)
    # without house hands, --style auto is a train line of the store, as before
    plain = generate(tiny["synth"], ["ab"], seed=3, styles=("auto",), tries=1, models_dir=tmp_path)
    assert any(f"of {tiny['store']}" in note for note in plain.notes)


def test_tries_need_a_reader_and_default_to_four_with_one(tiny, tmp_path):
    with pytest.raises(OptionError, match="no recognizer"):
        generate(tiny["synth"], ["ab"], tries=2, models_dir=tmp_path)  # no reader of this store there
    assert generate(tiny["synth"], ["ab"], seed=1, models_dir=tmp_path).tries == 1
    made = generate(tiny["synth"], ["ab", "cd"], seed=1, models_dir=tiny["models"])
    assert made.tries == legibility.DEFAULT_TRIES and [line.text for line in made.result.lines] == ["ab", "cd"]
    with pytest.raises(TextError, match="300 lines x 4 tries in one request; write at most 1,000 .*fewer --tries"):
        generate(tiny["synth"], ["ab"] * 300, models_dir=tiny["models"])  # every draw is a line of the batch
    result = CliRunner().invoke(cli, ["sample", str(tiny["synth"]), "--text", "ab", "--tries", "3", "-o",
                                      str(tmp_path / "x.svg")])  # fmt: skip
    assert result.exit_code == 2 and "--tries" in result.stderr and "no recognizer" in result.stderr



def test_the_bundled_reader_chooses_for_models_of_demo_stores_that_have_no_reader_of_their_own(tiny, tmp_path):
    from hwkit.checkpoint import BUNDLED_READER

    writer = Checkpoint.load(tiny["synth"])
    assert legibility.find_reader(writer, tmp_path) is None  # scribbles, not the demo generator's hands
    writer.store = {**writer.store, "source": "demo"}  # the same model, had `hwkit prepare --demo` made its store
    assert legibility.find_reader(writer, tmp_path) == BUNDLED_READER  # trained on other demo writers: reads them
    assert legibility.find_reader(writer, tiny["models"]) == tiny["reader"]  # a store's own reader comes first

def test_the_chooser_loads_a_reader_once_until_its_file_changes(tiny, tmp_path):
    import os
    import shutil

    store = Store(tiny["store"])
    folder = tmp_path / "models" / f"reader-{store.fingerprint[:12]}"
    folder.mkdir(parents=True)
    path = Path(shutil.copy(tiny["reader"], folder / "best.pt"))
    writer = Checkpoint.load(tiny["synth"])
    first = legibility.chooser(writer, None, tmp_path / "models")[1]
    assert legibility.chooser(writer, 3, tmp_path / "models")[1] is first  # the studio asks on every request
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a retrained reader
    again = legibility.chooser(writer, None, tmp_path / "models")[1]
    assert again is not first and again.checkpoint.path == path.resolve()


def test_evaluate_says_when_its_judge_also_chose(tiny, tmp_path):
    from hwkit.evaluation import evaluate_checkpoint

    notes = []
    report = evaluate_checkpoint(tiny["synth"], max_texts=3, biases=[1.0], tries=2, models_dir=tiny["models"],
                                 progress=lambda e: notes.append(e.get("text", "")))  # fmt: skip
    w = report["writing"]
    assert w["tries"] == 2 and w["judge_chose"] and w["chooser"] == str(tiny["reader"]) and not w["primed"]
    assert any("flatters" in note for note in notes)
    other = tmp_path / "judge"
    start(tiny["store"], "recognizer", "tiny", run_dir=other, max_steps=1)
    fair = evaluate_checkpoint(tiny["synth"], max_texts=3, biases=[1.0], tries=2, reader=other,
                               models_dir=tiny["models"])["writing"]  # fmt: skip
    assert not fair["judge_chose"] and fair["reader"] == str(other / "best.pt")


def test_evaluate_says_how_often_a_primed_line_leaves_its_primes_hand(tiny, tmp_path):
    from helpers import synthetic_lines
    from hwkit.evaluation import evaluate_checkpoint
    from hwkit.handstyle import PrimeCalibration
    from hwkit.store import write_store

    lines = synthetic_lines(40, seed=5, min_points=40, max_points=90)  # test lines by 4 known writers, 5 each
    path = write_store(tmp_path / "w.h5", lines, {"train": range(20), "valid": range(20), "test": range(20, 40)},
                       source="demo", prepare_params={"max_jump": 1000.0})  # fmt: skip
    synth = start(path, "synthesis", "tiny", run_dir=tmp_path / "synth", max_steps=1)
    w = evaluate_checkpoint(synth.best_path, max_texts=20, biases=[1.0], primed=True, tries=1,
                            reader=tiny["reader"], models_dir=tiny["models"])["writing"]  # fmt: skip
    store = Store(path)
    real = store.split("test")
    expected = PrimeCalibration.from_real([store.offsets(i) for i in real], [int(store.writer_ids[i]) for i in real])
    assert w["real_same_writer_other_hand_rate"] == expected.same_writer_rate
    assert w["real_other_writer_other_hand_rate"] == expected.other_writer_rate
    (run,) = w["runs"]
    assert 0 < run["prime_hand"]["lines"] <= 20 and 0 <= run["prime_hand"]["other_hand_rate"] <= 1
    unprimed = evaluate_checkpoint(synth.best_path, max_texts=4, biases=[1.0], primed=False, tries=1,
                                   reader=tiny["reader"], models_dir=tiny["models"])["writing"]  # fmt: skip
    assert unprimed["runs"][0]["prime_hand"] is None


def test_style_house_picks_with_the_reader_that_chooses_not_the_judge(tmp_path, monkeypatch):
    from hwkit.checkpoint import BUNDLED, BUNDLED_READER
    from helpers import letter_store

    store = letter_store(tmp_path / "demo.h5")  # a demo store: hwkit evaluate would judge it with the bundled judge
    picked_by = []

    def record(writer, opened, reader, **options):  # stands in for writing every candidate hand
        picked_by.append(reader.checkpoint.path)
        return []

    monkeypatch.setattr(legibility, "house_hands", record)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["style", "house", str(BUNDLED), "--store", str(store), "-o", "housed.pt"])
    assert result.exit_code == 0, result.output
    assert picked_by == [BUNDLED_READER.resolve()]


def test_style_house_gives_a_model_its_hands_from_the_command_line(tiny, tmp_path):
    out = tmp_path / "housed.pt"
    result = CliRunner().invoke(cli, ["style", "house", str(tiny["synth"]), "--reader", str(tiny["reader"]),
                                      "--hands", "2", "--texts", "3", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and "candidate 5/5" in result.stderr and "house hands:" in result.stderr
    housed = Checkpoint.load(out)
    assert len(housed.hands) == 2 and housed.hands[0]["cer"] <= housed.hands[1]["cer"]
    assert housed.hand_thresholds == legibility.hand_thresholds(Store(tiny["store"]))  # from its train lines
    assert not Checkpoint.load(tiny["synth"]).hands  # -o leaves the original as it was
    reader = CliRunner().invoke(cli, ["style", "house", str(tiny["reader"])])
    assert reader.exit_code == 1 and "house hands are for synthesis" in reader.stderr


def test_best_of_keeps_among_draws_read_alike_one_that_fits_its_room(monkeypatch):
    from hwkit.sample import SampleResult, SampledLine

    widths = [120.0, 90.0, 60.0]  # each text's three draws: a straight stroke this wide

    def drawn(model, alphabet, texts, *, primes, **options):
        lines = [SampledLine(np.array([[0, 0, 0], [widths[k % 3], 0, 1]], np.float32), np.zeros(2), None, "rule", t)
                 for k, t in enumerate(texts)]  # fmt: skip
        return SampleResult(lines, 1)

    monkeypatch.setattr(legibility, "sample_text", drawn)

    def kept(rooms, wrong=lambda k: 0):
        reader = ScriptedReader(lambda k: ["ab", "cd"][k // 3], wrong)
        lines = legibility.best_of(None, None, ["ab", "cd"], tries=3, reader=reader, rooms=rooms).lines
        return [float(line.offsets[1, 0]) for line in lines]

    assert kept([100.0, 50.0]) == [90.0, 120.0]  # the first draw that fits; where none fits, the first
    assert kept([130.0, 60.0]) == [120.0, 60.0]
    assert kept(None) == [120.0, 120.0]
    assert kept([100.0, 100.0], wrong=lambda k: k in (1, 2)) == [120.0, 90.0]  # read right comes before fitting


def test_best_of_with_rooms_takes_a_draw_that_wrote_nothing(monkeypatch):
    from hwkit.sample import SampleResult, SampledLine

    def drawn(model, alphabet, texts, *, primes, **options):  # a line that came out empty fits any room
        return SampleResult([SampledLine(np.zeros((0, 3), np.float32), np.zeros(0), None, "rule", t) for t in texts], 1)

    monkeypatch.setattr(legibility, "sample_text", drawn)
    reader = ScriptedReader(lambda k: "ab", lambda k: 0)
    (line,) = legibility.best_of(None, None, ["ab"], tries=2, reader=reader, rooms=[5.0]).lines
    assert len(line.offsets) == 0
