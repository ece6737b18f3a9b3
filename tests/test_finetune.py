"""Fine-tuning (``--init-from``): a trained model adapts to a new hand, alphabets grow, runs record their origin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwkit.alphabet import Alphabet
from hwkit.checkpoint import BUNDLED, Checkpoint
from hwkit.config import ModelConfig, make_configs
from hwkit.dataset import StrokeDataset
from hwkit.demo import held_out_writers, writer_lines
from hwkit.demo_text import make_texts
from hwkit.errors import OptionError, TextError
from hwkit.models import build_model
from hwkit.prepare import split_lines
from hwkit.store import Store, write_store
from hwkit.finetune import load_grown
from hwkit.train import evaluate, resume, start


@pytest.fixture(scope="module")
def new_hand(tmp_path_factory):
    """24 lines by a demo writer the bundled model never saw, split as prepare splits one writer's lines."""
    writer = held_out_writers(0, 40)[0]
    lines = writer_lines(writer, make_texts(24, np.random.default_rng(5)), line_seed=3)
    splits, rule = split_lines([line.line_id for line in lines], [writer] * len(lines), {})
    assert rule["rule"] == "line hash" and splits["valid"] and splits["test"]  # one writer still gets held-out lines
    return write_store(tmp_path_factory.mktemp("hand") / "hand.h5", lines, splits, source="demo")


def pen_nats(checkpoint: Checkpoint, store, split: str = "valid") -> float:
    """Nats per line in raw pen units: comparable between models that normalise differently."""
    data = StrokeDataset(store, split, in_memory=True, alphabet=checkpoint.alphabet, stats=checkpoint.stats)
    return evaluate(checkpoint.build_model(), data, 8, torch.device("cpu")).pen_nats_per_line


def test_fine_tuning_the_bundled_model_beats_it_and_beats_training_from_scratch(new_hand, tmp_path):
    bundled = Checkpoint.load(BUNDLED)
    tuned = start(new_hand, init_from=BUNDLED, run_dir=tmp_path / "tuned", max_steps=16, time_limit=0)
    scratch = start(new_hand, "synthesis", "demo", run_dir=tmp_path / "scratch",
                    max_steps=8, batch_size=8, lr=2e-4, time_limit=0)  # fmt: skip
    before, after = pen_nats(bundled, new_hand), pen_nats(Checkpoint.load(tuned.best_path), new_hand)
    from_scratch = pen_nats(Checkpoint.load(scratch.best_path), new_hand)
    assert after < before - 50, (before, after)  # tens of nats per line better on the new hand's held-out lines (stage 5: 88)
    assert after < from_scratch - 1000, (after, from_scratch)  # and far better than the same steps from random weights
    record = Checkpoint.load(tuned.best_path)
    assert record.init_from["path"] == str(BUNDLED) and record.init_from["weights_sha256"] == bundled.weights_sha256()
    assert record.init_from["store"] == bundled.store and record.alphabet == bundled.alphabet
    assert record.stats["std"] == Store(new_hand).std.tolist()  # it writes in the new data's pen units
    assert record.train_config.anchor == 10.0 and record.resume.anchor is not None


def test_a_fine_tuning_run_resumes_with_its_alphabet_and_anchor(new_hand, tmp_path):
    first = start(new_hand, init_from=BUNDLED, run_dir=tmp_path / "t", max_steps=2, time_limit=0)
    resume(first.run_dir, max_steps=3, anchor=0.0)  # the pull off for a while: the initial weights stay kept
    again = resume(first.run_dir, max_steps=4, anchor=10.0)
    ckpt = Checkpoint.load(again.last_path)
    assert ckpt.step == 4 and ckpt.alphabet == Checkpoint.load(BUNDLED).alphabet and ckpt.init_from is not None
    assert all(torch.equal(a, b) for a, b in zip(ckpt.resume.anchor.values(), Checkpoint.load(first.last_path).resume.anchor.values()))


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"preset": "finetune"}, "preset: fine-tuning only"),
        ({"anchor": 1.0}, "anchor: fine-tuning only"),
        ({"extend_alphabet": True}, "extend_alphabet: fine-tuning only"),
        ({"init_from": BUNDLED, "hidden": 64}, "hidden: fixed by the initial model"),
        ({"init_from": BUNDLED, "kind": "prediction"}, "the initial model is a synthesis model"),
    ],
)
def test_options_that_do_not_fit_fine_tuning_are_refused(new_hand, tmp_path, kwargs, says):
    with pytest.raises(OptionError, match=says):
        start(new_hand, run_dir=tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()


def test_another_preset_on_an_initial_model_says_what_it_sets(new_hand, tmp_path):
    """--preset tiny --init-from: the sizes stay the initial model's, and no anchor pulls; said, not silent."""
    notes = []
    result = start(new_hand, "synthesis", "tiny", init_from=BUNDLED, run_dir=tmp_path / "t", max_steps=1,
                   progress=lambda e: notes.append(e["text"]) if e["event"] == "note" else None)  # fmt: skip
    said = [n for n in notes if n.startswith("--preset tiny with --init-from")]
    assert len(said) == 1 and "finetune's --anchor" in said[0]
    ckpt = Checkpoint.load(result.last_path)
    assert ckpt.model_config.hidden == Checkpoint.load(BUNDLED).model_config.hidden and ckpt.train_config.anchor is None
    notes.clear()
    start(new_hand, init_from=BUNDLED, run_dir=tmp_path / "f", max_steps=1, progress=lambda e: notes.append(e))
    assert not any("with --init-from" in str(e) for e in notes)  # the finetune preset: nothing to say


def test_characters_the_model_lacks_are_named_or_get_fresh_weights(make_store, tmp_path):
    base_store = make_store("base", texts=["the fox"] * 24)
    base = start(base_store, "synthesis", "tiny", run_dir=tmp_path / "base", max_steps=1)
    wider = make_store("wider", texts=["the fox \u00e9"] * 24)
    with pytest.raises(TextError, match="characters the model's alphabet lacks: '\u00e9'"):
        start(wider, init_from=base.run_dir, run_dir=tmp_path / "refused", max_steps=1)

    init = Checkpoint.load(base.best_path)
    grown = build_model(ModelConfig(**{**init.model_config.to_dict(), "alphabet_size": len(init.alphabet) + 1}))
    load_grown(grown, init)
    a = len(init.alphabet)
    for name, old in init.weights.items():  # every old weight in place; the window's new column is fresh
        new = grown.state_dict()[name]
        assert torch.equal(new[tuple(slice(0, n) for n in old.shape)], old), name
    assert grown.cell.weight_ih.shape[1] == 3 + a + 1 and grown.cell.weight_ih[:, -1].abs().sum() > 0

    tuned = start(wider, init_from=base.run_dir, extend_alphabet=True, run_dir=tmp_path / "grown", max_steps=1)
    ckpt = Checkpoint.load(tuned.best_path)
    assert ckpt.alphabet == Alphabet(init.alphabet.chars + "\u00e9") and ckpt.model_config.alphabet_size == a + 1


def test_a_stroke_context_is_grown_onto_a_model_with_its_alphabet_and_never_taken_off(make_store, tmp_path):
    base = start(make_store("base", texts=["the fox"] * 24), "synthesis", "tiny", run_dir=tmp_path / "base", max_steps=1)
    wider = make_store("wider", texts=["the fox \u00e9"] * 24)
    tuned = start(wider, init_from=base.run_dir, extend_alphabet=True, stroke_context=True,
                  run_dir=tmp_path / "context", max_steps=1, time_limit=0)  # fmt: skip
    ckpt = Checkpoint.load(tuned.best_path)
    assert ckpt.model_config.stroke_context and ckpt.model_config.alphabet_size == len(ckpt.alphabet)
    store = Store(wider)
    origin = -store.mean[:2] / store.std[:2]  # a zero move, in the new store's normalised units
    np.testing.assert_allclose(ckpt.weights["pen_origin"].numpy(), origin, rtol=1e-6)
    assert ckpt.weights["context_ih"].abs().sum() > 0  # one step moved the weights it started at zero
    ckpt.build_model()  # rebuilds from the checkpoint alone
    with pytest.raises(OptionError, match="stroke_context: the initial model reads the stroke context"):
        start(wider, init_from=tuned.run_dir, stroke_context=False, run_dir=tmp_path / "off", max_steps=1)
    with pytest.raises(OptionError, match="stroke_context: for the handwriting nets"):
        start(wider, "recognizer", "tiny", stroke_context=True, run_dir=tmp_path / "reader", max_steps=1)


def test_a_jump_table_is_grown_with_training_and_needs_the_stroke_context(make_store, tmp_path):
    store = make_store("jumps", texts=["The Fox"] * 24)
    base = start(store, "synthesis", "tiny", stroke_context=True, run_dir=tmp_path / "base", max_steps=1)
    grown = start(store, init_from=base.run_dir, jump_table=True, run_dir=tmp_path / "grown", max_steps=1, time_limit=0)
    ckpt = Checkpoint.load(grown.best_path)
    assert ckpt.model_config.jump_table and ckpt.model_config.stroke_context
    assert ckpt.weights["jump"].abs().sum() > 0  # one step moved the table it started at zero
    again = start(store, init_from=grown.run_dir, run_dir=tmp_path / "again", max_steps=1)  # kept without the flag
    assert Checkpoint.load(again.best_path).model_config.jump_table
    words = Checkpoint.load(start(store, init_from=grown.run_dir, word_table=True, run_dir=tmp_path / "words",
                                  max_steps=1, time_limit=0).best_path)  # fmt: skip
    assert words.model_config.word_table and words.weights["jump_word"].shape[1] == len(words.alphabet)
    assert int(words.weights["space"]) == int(words.alphabet.encode(" ")[0])  # words parted where the store parts them
    with pytest.raises(OptionError, match="jump_table: the initial model has a jump table"):
        start(store, init_from=grown.run_dir, jump_table=False, run_dir=tmp_path / "off", max_steps=1)
    with pytest.raises(OptionError, match="jump_table: places the pen by the stroke context"):
        start(tmp_path / "no-such.h5", "synthesis", "tiny", jump_table=True, run_dir=tmp_path / "bare")  # before the store
    with pytest.raises(OptionError, match="jump_table: places the pen by the stroke context"):
        make_configs("synthesis", "tiny", alphabet_size=5, jump_table=True)
    with pytest.raises(OptionError, match="word_table: is part of the jump table"):
        make_configs("synthesis", "tiny", alphabet_size=5, stroke_context=True, word_table=True)
    with pytest.raises(OptionError, match="jump_table: synthesis only"):
        start(store, "prediction", "tiny", stroke_context=True, jump_table=True, run_dir=tmp_path / "pred", max_steps=1)
