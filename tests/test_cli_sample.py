"""``hwkit sample`` and ``hwkit style export`` end to end, on tiny checkpoints written here."""

from __future__ import annotations

import json
import math
import re
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from hwkit import checkpoint, render
from hwkit.alphabet import Alphabet
from hwkit.checkpoint import Checkpoint
from hwkit.cli import cli
from hwkit.config import ModelConfig
from hwkit.models import build_model
from hwkit.store import Store
from hwkit.strokes import offsets_to_points, points_to_strokes
from hwkit.style import load_style

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def workdir(tiny_store: Path, tmp_path: Path, monkeypatch) -> Path:
    """A checkout-like folder: models/pred/best.pt, then (newer) models/synth/best.pt, trained on ``tiny_store``.

    The synthesis window is fixed to move 0.4 characters a point, so lines end by
    the stop rule after a few points and the tests stay fast.
    """
    monkeypatch.chdir(tmp_path)
    store = Store(tiny_store)
    alphabet = Alphabet(store.alphabet.chars + "<>&")
    for name, kind in (("pred", "prediction"), ("synth", "synthesis")):
        torch.manual_seed(0)
        size = len(alphabet) if kind == "synthesis" else 0
        config = ModelConfig(kind, hidden=16, layers=2, mixtures=3, window_mixtures=2, alphabet_size=size)
        model = build_model(config)
        if kind == "synthesis":
            with torch.no_grad():
                model.window.weight.zero_()
                model.window.bias.zero_()
                model.window.bias[4:] = math.log(0.4)
        stats = {"mean": store.mean.tolist(), "std": store.std.tolist()}
        Checkpoint(config, alphabet, stats, model.state_dict(), store=store.reference()).save(
            tmp_path / "models" / name / "best.pt"
        )
    os.utime(tmp_path / "models" / "pred" / "best.pt", (1e9, 1e9))  # older than synth
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def strokes(offsets: np.ndarray) -> int:
    return len(points_to_strokes(offsets_to_points(offsets)))


def test_text_to_svg_with_the_newest_checkpoint_by_default(workdir):
    result = run("sample", "--text", "the <fox> & dog", "--text", "ok?", "--seed", "3", "--svg", "--npz")
    assert result.exit_code == 0, result.output
    paths = [Path(p) for p in result.stdout.split()]
    assert [p.suffix for p in paths] == [".svg", ".npz"] and all(p.parent == Path("samples") for p in paths)
    assert "2 stopped by the attention rule" in result.stderr and "seed 3" in result.stderr
    svg = paths[0].read_text()
    assert "the &lt;fox&gt; &amp; dog" in svg
    arrays = np.load(paths[1])
    assert arrays["text"].tolist() == ["the <fox> & dog", "ok?"]
    groups = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "line"]
    bounds = arrays["line_offsets"]
    for group, a, b in zip(groups, bounds[:-1], bounds[1:]):
        assert len(list(group.iter(f"{SVG}path"))) == strokes(arrays["offsets"][a:b])
    run("sample", "--text", "the <fox> & dog", "--text", "ok?", "--seed", "3", "--npz", "-o", "again.npz")
    assert np.array_equal(np.load("again.npz")["offsets"], arrays["offsets"])  # same seed, same strokes


def test_text_picks_the_newest_synthesis_run_and_no_text_the_newest_run(workdir):
    os.utime(workdir / "models" / "pred" / "best.pt", (2e9, 2e9))  # the prediction run is now the newest
    result = run("sample", "--text", "fox", "--seed", "0", "-o", "t.json")
    assert result.exit_code == 0, result.output
    assert f"with {Path('models') / 'synth' / 'best.pt'}" in result.stderr
    result = run("sample", "--length", "20", "--seed", "0", "-o", "u.json")
    assert result.exit_code == 0, result.output
    assert f"with {Path('models') / 'pred' / 'best.pt'}" in result.stderr


def test_every_format_and_plot_from_one_batch(workdir):
    result = run(
        "sample", "models/synth", "--text", "a fox and a dog jumps over", "--width", "12", "--n", "2",
        "--png", "--animate", "--json", "--plot-attention", "--plot-density", "--colour", "eos", "-o", "out/page",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(Path(p).name for p in result.stdout.split())
    assert names == ["page.animated.svg", "page.attention.png", "page.density.png", "page.json", "page.png"]
    assert "6 stopped by the attention rule" in result.stderr  # 3 wrapped lines x 2 versions
    with Image.open("out/page.png") as image:
        assert image.width == round(render.Style().cell_width + 2 * render.Style().margin)
    animated = ET.fromstring(Path("out/page.animated.svg").read_text())
    n_paths = len(list(animated.iter(f"{SVG}path")))
    assert n_paths > 0 and len(list(animated.iter(f"{SVG}animate"))) == 2 * n_paths


def test_prediction_checkpoint_writes_lines_without_text(workdir):
    result = run("sample", "models/pred", "--n", "3", "--length", "30", "--seed", "1", "-o", "free.json")
    assert result.exit_code == 0, result.output
    assert "3 reached --length" in result.stderr
    doc = json.loads(Path("free.json").read_text())
    assert [len(line["offsets"]) for line in doc["lines"]] == [30, 30, 30]


def test_style_export_then_write_in_that_hand(workdir, tiny_store):
    store = Store(tiny_store)
    line_id = store.line_ids[5]
    result = run("style", "export", line_id, str(tiny_store), "-o", "styles/me.json")
    assert result.exit_code == 0, result.output
    style = load_style(result.stdout.strip())
    line = store.line(5)
    assert style.text == line.text and np.array_equal(style.offsets, line.offsets)

    for wrong in ("styles/me.inkml", "styles/me.png"):  # a style file is JSON, whatever its name says
        refused = run("style", "export", line_id, str(tiny_store), "-o", wrong)
        assert refused.exit_code == 2 and "name it .json" in refused.stderr and not Path(wrong).exists()

    args = ["sample", "--text", "dog", "--seed", "2", "--keep-prime", "--npz"]
    from_file = run(*args, "--style", "styles/me.json", "-o", "file.npz")
    from_store = run(*args, "--style", line_id, "-o", "store.npz")  # looked up in the checkpoint's store
    assert from_file.exit_code == 0 and from_store.exit_code == 0, from_file.output + from_store.output
    a, b = np.load("file.npz"), np.load("store.npz")
    assert np.array_equal(a["offsets"], b["offsets"])
    p = int(a["prime_rows"][0])
    assert p == len(line.offsets) and np.array_equal(a["offsets"][:p], line.offsets)
    assert a["text"][0] == f"{line.text} dog"


def test_style_auto_primes_every_line_with_one_train_line_chosen_by_the_seed(workdir, tiny_store):
    from hwkit.generate import hand_lines

    store = Store(tiny_store)
    args = ["sample", "--text", "dog", "--text", "cat", "--style", "auto", "--keep-prime", "--npz"]
    first = run(*args, "--seed", "4", "-o", "a.npz")
    again = run(*args, "--seed", "4", "-o", "b.npz")
    assert first.exit_code == 0 and again.exit_code == 0, first.output
    chosen = re.search(r"--style auto: the hand of line (\S+) ", first.stderr)[1]
    assert chosen in first.stderr and chosen in again.stderr
    index = store.line_ids.index(chosen)
    assert index in set(hand_lines(store).tolist()) and index in set(store.split("train").tolist())
    a = np.load("a.npz")
    p = int(a["prime_rows"][0])
    assert list(a["prime_rows"]) == [p, p] and np.array_equal(a["offsets"][:p], store.offsets(index))  # both lines
    assert np.array_equal(a["offsets"], np.load("b.npz")["offsets"])
    seeds = {re.search(r"line (\S+) ", run(*args, "--seed", str(k), "-o", f"{k}.npz").stderr)[1] for k in range(8)}
    assert len(seeds) > 1  # the seed chooses


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--text", "fox \u00e9t\u00e9 \u2603"], ["'\u00e9'", "'\u2603'", "--replace-unknown"]),
        (["nowhere.pt", "--text", "fox"], ["nowhere.pt", "no such checkpoint"]),
        (["--text", "fox", "--style", "no-such-line"], ["no-such-line"]),
        (["--text", "fox", "--style", "styles/gone.json"], ["styles/gone.json: no such style file"]),
        (["--text", "fox", "--style", "x00-000", "--store", "nope.h5"], ["nope.h5", "no such file"]),
        (["--text", "  "], ["the text to write is empty"]),
        (["--text-file", "empty.txt"], ["empty.txt: the text to write is empty"]),
        (["--text", "fox", "--style", "deep.json"], ["deep.json", "not a readable style file (RecursionError)"]),
        (["--text", "fox", "--style", "huge.json"], ["huge.json", "50,000 points; a style is one line"]),
        (["--text", "fox " * 3000, "--width", "10", "--tries", "1"],
         ["1,500 lines in one request; write at most 1,000"]),
        (["models/pred", "--n", "1001"], ["1,001 lines in one request"]),
    ],
)
def test_user_errors_are_one_line(workdir, args, fragments):
    Path("deep.json").write_text("[" * 100_000 + "]" * 100_000)  # nesting deeper than any parser's stack
    huge = {"format": "hwkit-style", "format_version": 1, "text": "fox", "offsets": [[1.0, 0.0, 0.0]] * 50_000}
    Path("huge.json").write_text(json.dumps(huge))
    Path("empty.txt").write_text("\n  \n")
    one_line_error(run("sample", *args), *fragments)


def test_nothing_trained_yet_writes_with_the_bundled_demo_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("sample", "--text", "fox", "--seed", "0", "-o", "fox.json")
    assert result.exit_code == 0, result.output
    assert "bundled demo model" in result.stderr and result.stdout.split() == ["fox.json"]
    (line,) = json.loads((tmp_path / "fox.json").read_text())["lines"]
    assert line["text"] == "fox" and line["stop"] == "rule"
    named = run("sample", str(checkpoint.BUNDLED), "--text", "fox", "--seed", "0", "-o", "named.json")
    assert named.exit_code == 0 and "yet" not in named.stderr  # asked for by name: nothing to explain
    monkeypatch.setattr(checkpoint, "BUNDLED", tmp_path / "not-installed.pt")
    one_line_error(run("sample", "--text", "fox"), "no synthesis checkpoint under models", "--model synthesis")


def test_replace_unknown_says_what_it_replaced(workdir):
    result = run("sample", "--text", "caf\u00e9 \u2603", "--replace-unknown", "--seed", "0", "-o", "r.json")
    assert result.exit_code == 0, result.output
    assert "'\u00e9' -> 'e'" in result.stderr and "'\u2603' -> ' '" in result.stderr


@pytest.mark.parametrize(
    "args, flag, code",
    [
        # what this checkpoint cannot do: a one-line error, exit 1
        (["models/pred", "--text", "fox"], "--text", 1),
        (["models/synth"], "needs --text", 1),
        (["models/synth", "--text", "fox", "--length", "50"], "--length", 1),
        (["models/synth", "--text", "fox", "--strokes", "3"], "--strokes", 1),
        (["models/pred", "--plot-attention"], "--plot-attention", 1),
        # flags that make no sense together: usage error, exit 2
        (["models/synth", "--text", "fox", "--keep-prime"], "--keep-prime", 2),
        (["models/synth", "--text", "fox", "--store", "x.h5"], "--store", 2),
    ],
)
def test_flags_the_checkpoint_or_other_flags_make_meaningless_are_refused(workdir, args, flag, code):
    result = run("sample", *args)
    assert result.exit_code == code, result.output
    assert flag in result.stderr and "Traceback" not in result.output
    if code == 1:
        assert result.stderr.count("\n") == 1
    assert not Path("samples").exists()


@pytest.mark.parametrize(
    "args, written",
    [
        (["models/pred", "--length", "10", "--png", "-o", "out/pred1"], ["out/pred1.png"]),
        (["--text", "ok", "--png", "--plot-attention", "-o", "out/style1"], ["out/style1.png", "out/style1.attention.png"]),
        (["--text", "ok", "--colour", "eos", "--png", "-o", "out/eos"], ["out/eos.png"]),
        (["--text", "ok", "--npz", "-o", "out/d"], ["out/d.npz"]),
        (["--text", "ok", "-o", "out/c"], ["out/c.svg"]),
        (["--text", "ok", "--threads", "1", "-o", "out/t"], ["out/t.svg"]),
        (["--text", "ok", "-o", "new/deep/x.PNG"], ["new/deep/x.PNG"]),  # suffix picks PNG, any case
        (["--text", "ok", "--npz", "-o", "out/e.NPZ"], ["out/e.NPZ"]),
        (["--text", "ok", "--animate", "-o", "out/a.svg"], ["out/a.svg"]),
        (["--text", "ok", "--svg", "--json", "-o", "out/b.json"], ["out/b.svg", "out/b.json"]),
        (["--text", "ok", "--animate", "-o", "out/f"], ["out/f.animated.svg"]),
        (["--text", "ok", "--png", "-o", "out/run.v2"], ["out/run.v2.png"]),  # a dot in the name, not a file type
        (["--text", "ok", "-o", "out/my.letter"], ["out/my.letter.svg"]),
    ],
)
def test_output_paths_printed_are_exactly_the_files_written(workdir, args, written):
    result = run("sample", "--seed", "0", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == written
    folders = {Path(w).parent for w in written}
    assert sorted(str(f) for d in folders for f in d.iterdir()) == sorted(written)  # nothing else written
    for w in written:
        if w.lower().endswith(".png"):
            with Image.open(w) as image:
                assert image.format == "PNG"
        elif w.lower().endswith(".npz"):
            assert np.load(w)["text"].tolist() == ["ok"]
        elif w.endswith(".svg"):
            ET.fromstring(Path(w).read_text())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--png", "-o", "out/b.svg"], "does not fit --png"),
        (["--svg", "--npz", "-o", "out/b.png"], "does not fit --svg --npz"),
        (["-o", "out/b.txt"], "unknown suffix '.txt'"),
        (["--png", "-o", "out/b.jpg"], "unknown suffix '.jpg'"),  # another file type, not part of the name
    ],
)
def test_a_suffix_that_contradicts_the_format_is_refused_before_any_work(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)  # no checkpoint here: loading one would fail with exit 1
    result = run("sample", "--text", "fox", *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "-o" in result.stderr and "Traceback" not in result.output
    assert not Path("out").exists()


def test_style_line_from_another_folder_finds_or_names_the_checkpoints_store(workdir, tiny_store):
    (workdir / "cache").mkdir()
    (workdir / "cache" / "demo.h5").write_bytes(tiny_store.read_bytes())
    ckpt = Checkpoint.load(workdir / "models" / "synth" / "best.pt")
    ckpt.store["path"] = "cache/demo.h5"  # as `hwkit train` records it: relative to where it ran
    ckpt.save(workdir / "models" / "rel" / "best.pt")
    line_id = Store(tiny_store).line_ids[3]
    (workdir / "elsewhere").mkdir()
    os.chdir(workdir / "elsewhere")
    args = ["sample", "../models/rel", "--text", "dog", "--seed", "1", "--style", line_id]

    found = run(*args, "-o", "found.npz")  # under a folder above the checkpoint, same fingerprint
    assert found.exit_code == 0, found.output
    (workdir / "cache" / "demo.h5").unlink()
    one_line_error(run(*args, "-o", "lost.npz"), line_id, "store cache/demo.h5 not found (from here)", "--store FILE")
    given = run(*args, "--store", str(tiny_store), "-o", "given.npz")
    assert given.exit_code == 0, given.output
    assert np.array_equal(np.load("found.npz")["offsets"], np.load("given.npz")["offsets"])


def test_eos_colouring_is_noted_as_not_applying_to_the_animation(workdir):
    result = run("sample", "--text", "ok", "--colour", "eos", "--animate", "--png", "-o", "out/anim")
    assert result.exit_code == 0, result.output
    assert "animation is drawn in one colour" in result.stderr
    assert result.stdout.split() == ["out/anim.png", "out/anim.animated.svg"]


def test_replace_unknown_falls_back_to_a_space_when_no_bracket_fits(workdir):
    result = run("sample", "--text", "[ok]", "--replace-unknown", "--seed", "0", "-o", "r.json")
    assert result.exit_code == 0, result.output
    assert "'[' -> ' '" in result.stderr and "']' -> ' '" in result.stderr
    assert json.loads(Path("r.json").read_text())["lines"][0]["text"] == " ok "


def test_a_text_file_that_is_not_utf8_is_a_usage_error(workdir):
    Path("latin1.txt").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    result = run("sample", "--text-file", "latin1.txt")
    assert result.exit_code == 2 and "latin1.txt: not UTF-8 text (byte 4)" in result.stderr
    assert "Traceback" not in result.output


def test_style_auto_on_a_store_without_train_lines_is_one_line_error(tmp_path, monkeypatch):
    from hwkit.errors import StyleError
    from hwkit.generate import hand_lines
    from hwkit.store import Line, write_store

    offsets = np.zeros((50, 3), np.float32)
    offsets[-1, 2] = 1
    path = write_store(tmp_path / "held-out.h5", [Line(offsets, "a line", "x-01", 0)], {"test": [0]}, source="demo")
    with pytest.raises(StyleError, match="no train line"):
        hand_lines(Store(path))


def _window_past_the_text_at_once(workdir: Path) -> None:
    """The synth model's window runs past the whole text while it reads a prime: a primed line comes out
    empty, as an undertrained model's can."""
    path = workdir / "models" / "synth" / "best.pt"
    ckpt = Checkpoint.load(path)
    weights = dict(ckpt.weights)
    weights["window.bias"] = weights["window.bias"].clone()
    weights["window.bias"][2:4] = math.log(1e-6)  # Gaussians so wide that none underflows, far past the text
    weights["window.bias"][4:] = math.log(10.0)
    ckpt.weights = weights
    ckpt.save(path)


@pytest.mark.parametrize("tries", ["1", "2"])
def test_a_line_that_comes_out_empty_is_warned_about_and_chosen_among_tries(workdir, tries):
    # an undertrained model can end a line before its first point; a reader choosing among tries reads it as
    # nothing (it crashed, reading two rows at least) and the command says what came out
    _window_past_the_text_at_once(workdir)
    result = run("sample", "--text", "ab", "--style", "auto", "--seed", "1", "--tries", tries, "--npz", "-o", "out")
    assert result.exit_code == 0, result.output
    assert "warning: 1 line(s) came out empty" in result.stderr
    assert len(np.load("out.npz")["offsets"]) < 2


@pytest.mark.parametrize("where", ["proc", "file"])
def test_an_output_path_that_cannot_be_written_fails_before_sampling(workdir, monkeypatch, where):
    from hwkit import generate

    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("sampled before checking -o"))
    if where == "proc":  # no file can be made there, not even by root
        if not Path("/proc/self").exists():
            pytest.skip("no /proc")
        target = Path("/proc/hwkit-test/page.png")
    else:
        Path("blocker").write_text("a file where a folder should be")
        target = Path("blocker/page.png")
    result = run("sample", "--text", "ab", "-o", str(target))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {target}: cannot be written") and len(result.stderr.splitlines()) == 1
