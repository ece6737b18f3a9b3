import dataclasses

import pytest
import torch

from hwkit.checkpoint import Checkpoint
from hwkit.dataset import StrokeDataset
from hwkit.errors import OptionError
from hwkit.jumpfit import fit_jump_table
from hwkit.train import evaluate, start

TEXTS = ["The Fox", "HE MET", "a Hat", "Ox and Ax"]


@pytest.fixture
def context_model(make_store, tmp_path):
    store = make_store("caps", n_lines=36, texts=TEXTS * 9)
    run = start(store, "synthesis", "tiny", stroke_context=True, run_dir=tmp_path / "base", max_steps=2, time_limit=0)
    return store, Checkpoint.load(run.best_path)


@pytest.mark.parametrize("word_table,window_pen", [(False, False), (True, False), (False, True)])
def test_a_fitted_jump_table_lowers_the_air_moves_loss_and_leaves_the_rest_as_it_was(context_model, word_table,
                                                                                     window_pen):  # fmt: skip
    store, init = context_model
    events = []
    fit = fit_jump_table(init, store, word_table=word_table, window_pen=window_pen, epochs=6, lr=0.05, batch_size=64,
                         progress=events.append)  # fmt: skip
    ckpt = fit.checkpoint
    assert ckpt.model_config == dataclasses.replace(init.model_config, jump_table=True, word_table=word_table,
                                                    window_pen=window_pen)  # fmt: skip
    assert fit.train_moves > 50 and 1 <= fit.epoch <= 6
    assert fit.valid_after < fit.valid_before == fit.valid_start  # it had no table to start from
    assert ckpt.store["path"] == str(store) and ckpt.init_from["store"] == init.store
    for name, weight in init.weights.items():
        assert torch.equal(ckpt.weights[name], weight), name
    assert ckpt.weights["jump"].abs().sum() > 0
    if window_pen:  # it reads where the pen went since the window's character
        assert ckpt.weights["jump"][:, 5:].abs().sum() > 0
    if word_table:  # the letters it reads are the store's, parted by its space
        assert ckpt.weights["jump_word"].abs().sum() > 0
        assert int(ckpt.weights["space"]) == int(ckpt.alphabet.encode(" ")[0])
    assert ckpt.resume is None and ckpt.init_from["weights_sha256"] == init.weights_sha256()
    # the loss it records is the whole valid lines' loss of the model it writes, as training measures it
    model = ckpt.build_model()
    valid = StrokeDataset(store, "valid", alphabet=ckpt.alphabet, stats=ckpt.stats)
    assert ckpt.best_valid == pytest.approx(evaluate(model, valid, 4, torch.device("cpu")).nats_per_line, rel=1e-4)
    assert [e["done"] for e in events if e["event"] == "epoch"] == list(range(1, 7))
    assert {e.get("split") for e in events if e["event"] == "lines"} == {"train", "valid"}


def test_a_refit_starts_from_the_table_it_has_and_says_so(context_model):
    store, init = context_model
    first = fit_jump_table(init, store, epochs=3, lr=0.05, batch_size=64).checkpoint
    again = fit_jump_table(first, store, epochs=1, lr=1e-9, batch_size=64)
    assert again.valid_start < again.valid_before  # the first fit's table, against none
    assert again.valid_after == pytest.approx(again.valid_start, abs=1e-4)
    words = fit_jump_table(first, store, word_table=True, keep_table=True, epochs=2, lr=0.05, batch_size=64)
    assert torch.equal(words.checkpoint.weights["jump"], first.weights["jump"])  # the table it had, as it was
    assert words.checkpoint.model_config.word_table and words.valid_after <= words.valid_start
    pen = fit_jump_table(first, store, window_pen=True, epochs=2, lr=0.05, batch_size=64)
    assert pen.checkpoint.model_config.window_pen and pen.checkpoint.weights["jump"].shape[1] == 7
    assert pen.valid_start == pytest.approx(again.valid_start, abs=1e-5)  # its new inputs start at zero
    assert pen.valid_after <= pen.valid_start
    with pytest.raises(OptionError, match="lines: fits on at least 1"):
        fit_jump_table(init, store, lines=0)
    with pytest.raises(OptionError, match="keep_table: fits the word table alone"):
        fit_jump_table(init, store, keep_table=True)


def test_a_jump_table_needs_a_synthesis_model_with_the_stroke_context(make_store, tmp_path):
    store = make_store("plain", texts=TEXTS * 6)
    run = start(store, "synthesis", "tiny", run_dir=tmp_path / "plain", max_steps=1, time_limit=0)
    with pytest.raises(OptionError, match="stroke context"):
        fit_jump_table(Checkpoint.load(run.best_path), store, epochs=1)
