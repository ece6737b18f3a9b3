"""``hwkit sample`` and ``hwkit style export`` end to end, on tiny checkpoints written here."""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from hwkit import render
from hwkit.alphabet import Alphabet
from hwkit.checkpoint import save_checkpoint
from hwkit.cli import cli
from hwkit.models import ModelConfig, build_model
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
        save_checkpoint(
            tmp_path / "models" / name / "best.pt",
            {
                "model_config": config.to_dict(),
                "alphabet": alphabet.chars,
                "stats": {"mean": store.mean.tolist(), "std": store.std.tolist()},
                "store": {"path": str(tiny_store), "fingerprint": store.fingerprint, "source": store.source},
                "model": model.state_dict(),
            },
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

    args = ["sample", "--text", "dog", "--seed", "2", "--keep-prime", "--npz"]
    from_file = run(*args, "--style", "styles/me.json", "-o", "file.npz")
    from_store = run(*args, "--style", line_id, "-o", "store.npz")  # looked up in the checkpoint's store
    assert from_file.exit_code == 0 and from_store.exit_code == 0, from_file.output + from_store.output
    a, b = np.load("file.npz"), np.load("store.npz")
    assert np.array_equal(a["offsets"], b["offsets"])
    p = int(a["prime_rows"][0])
    assert p == len(line.offsets) and np.array_equal(a["offsets"][:p], line.offsets)
    assert a["text"][0] == f"{line.text} dog"


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--text", "fox \u00e9t\u00e9 \u2603"], ["'\u00e9'", "'\u2603'", "--replace-unknown"]),
        (["models/pred", "--text", "fox"], ["prediction model", "--text"]),
        (["nowhere.pt", "--text", "fox"], ["nowhere.pt", "no such checkpoint"]),
        (["models/synth"], ["needs --text"]),
        (["--text", "fox", "--style", "no-such-line"], ["no-such-line"]),
    ],
)
def test_user_errors_are_one_line(workdir, args, fragments):
    one_line_error(run("sample", *args), *fragments)


def test_no_checkpoint_at_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run("sample", "--text", "fox"), "no checkpoint under models")


def test_replace_unknown_says_what_it_replaced(workdir):
    result = run("sample", "--text", "caf\u00e9 \u2603", "--replace-unknown", "--seed", "0", "-o", "r.json")
    assert result.exit_code == 0, result.output
    assert "'\u00e9' -> 'e'" in result.stderr and "'\u2603' -> ' '" in result.stderr
