"""``hwkit sample --page``: the bundled network writes a short note onto a page, in one hand, to every page format."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hwkit import legibility
from hwkit import letter as letter_module
from hwkit.checkpoint import BUNDLED
from hwkit.cli import cli
from hwkit.letter import write_document
from hwkit.page import Setting

SVG = "{http://www.w3.org/2000/svg}"
NOTE = "Dear Ann,\n\nsee you soon.\fBye"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_a_note_on_two_pages_in_every_page_format(tmp_path):
    pytest.importorskip("vpype")
    (tmp_path / "note.txt").write_text(NOTE, encoding="utf-8")
    result = run("sample", str(BUNDLED), "--text-file", str(tmp_path / "note.txt"), "--page", "A6", "--margin", "12mm",
                 "--size", "3", "--bias", "1", "--seed", "2", "--svg", "--png", "--pdf", "--plotter", "--gcode",
                 "--hpgl", "-o", str(tmp_path / "out" / "note"))  # fmt: skip
    assert result.exit_code == 0, result.output
    written = [Path(p) for p in result.stdout.split()]
    names = sorted(p.name for p in written)
    pages = [f"note-{k}{s}" for k in (1, 2) for s in (".svg", ".png", ".plotter.svg", ".gcode", ".hpgl")]
    assert names == sorted([*pages, "note.pdf"])
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    assert "\n2 page(s), " in "\n" + result.stderr
    texts = []
    for k in (1, 2):
        root = ET.parse(tmp_path / "out" / f"note-{k}.svg").getroot()
        assert (root.get("width"), root.get("height")) == ("105mm", "148mm")
        texts.append([g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "line"])
    assert texts[0][0] == "Dear Ann," and " ".join(texts[0][1:]) == "see you soon."  # a paragraph, then a form feed
    assert texts[1] == ["Bye"]
    pdf = (tmp_path / "out" / "note.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 2
    image = Image.open(tmp_path / "out" / "note-2.png")
    assert image.size == (round(105 / 25.4 * 150), round(148 / 25.4 * 150))
    assert np.asarray(image.convert("L")).min() < 80  # ink on the page


def test_without_a_style_the_hand_is_a_house_hand_chosen_by_the_seed(tmp_path, monkeypatch):
    from hwkit.checkpoint import Checkpoint

    monkeypatch.chdir(tmp_path)  # no store anywhere near: the hands travel inside the model
    hands = {h["text"] for h in Checkpoint.load(BUNDLED).hands}
    setting = Setting(paper=(105.0, 148.0), margins=(10.0,) * 4, size=3.0)
    made = write_document("one two three", setting, BUNDLED, seed=5, tries=1)
    assert made.hand.text in hands and any("house hand" in note for note in made.notes)
    again = write_document("one two three", setting, BUNDLED, seed=5, tries=1)
    assert again.hand.text == made.hand.text  # the seed chooses
    others = {write_document("one", setting, BUNDLED, seed=s, tries=1).hand.text for s in range(6)}
    assert len(others) > 1


def test_characters_the_model_lacks_are_replaced_on_pages_too(tmp_path):
    result = run("sample", str(BUNDLED), "--text", "Zürich café", "--page", "A6", "--replace-unknown", "--seed", "1",
                 "--bias", "1", "-o", str(tmp_path / "z"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "replaced in text: 'ü' -> 'u', 'é' -> 'e'" in result.stderr
    root = ET.parse(tmp_path / "z.svg").getroot()
    lines = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "line"]
    assert " ".join(lines) == "Zurich cafe"
    empty = run("sample", str(BUNDLED), "--text", "  \f ", "--page", "A6", "-o", str(tmp_path / "e"))
    assert empty.exit_code == 1 and "the text to write is empty" in empty.stderr


def test_every_line_is_primed_with_the_same_hand(monkeypatch):
    seen = []
    original = letter_module.sample_text

    def spy(model, alphabet, texts, *, primes=None, **kwargs):
        seen.append((list(texts), primes))
        return original(model, alphabet, texts, primes=primes, **kwargs)

    monkeypatch.setattr(letter_module, "sample_text", spy)
    monkeypatch.setattr(legibility, "sample_text", spy)
    setting = Setting(paper=(105.0, 148.0), margins=(10.0,) * 4, size=3.0)
    made = write_document("one two three four five six seven eight nine ten", setting, BUNDLED, seed=5, batch=2,
                          auto_hand=False, tries=1)  # fmt: skip
    hand_call, *line_calls = seen
    assert hand_call[1] is None  # the hand is chosen by one unprimed line ...
    assert made.hand.text == "one two three four five six seven eight"
    assert line_calls and all(p is made.hand for _, primes in line_calls for p in primes)  # ... and carried on
    assert all(len(texts) <= 2 for texts, _ in line_calls)
    xs = np.concatenate([s[:, 0] for s in made.document.pages[0].strokes])
    assert xs.min() >= 10 - 1e-6 and xs.max() <= 95 + 1e-6
    # the hand's x-height becomes --size
    assert made.scale * letter_module.x_height(made.hand.offsets) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--page", "A5", "--animate"], "--animate: does not apply to pages"),
        (["--page", "A5", "--n", "2"], "--n: does not apply to pages"),
        (["--pdf"], "--pdf: only with --page"),
        (["--page", "B7"], "'B7': give a3"),
        (["--page", "A5", "--margin", "80mm"], "the margins leave"),
        (["--page", "A5", "--gcode", "--gcode-set", "feed"], "give KEY=VALUE"),
        (["--page", "A6", "--size", "30"], "give a --size under"),
        (["--page", "0x100mm"], "a page needs a width and a height"),
        (["--page", "A5", "--hpgl", "--hpgl-device", "nosuch"], "unknown plotter"),
        (["--page", "legal", "--hpgl", "--hpgl-device", "sketchmate"], "larger than any paper sketchmate takes"),
        (["--page", "A5", "--hpgl", "--hpgl-paper", "zz"], "'zz': hp7475a takes a4, a3, a, b"),
        (["--page", "A4", "--margin", "5mm", "--hpgl"], "hp7475a on its a4 paper reaches only part of the page"),
        (["--page", "A5", "--gcode", "--gcode-profile", "nosuch"], "no such profile"),
        (["--page", "A5", "--gcode", "--gcode-set", "fed=3000"], "fed: not a value of hwkit-z"),
        (["--page", "A5", "--gcode", "--gcode-profile", "hwkit-z", "--gcode-set", "pen_down=90"], "pen_down: not"),
        (["--page", "A5", "--gcode", "--gcode-set", "z_down=abc"], "z_down=abc: give a number"),
        (["--page", "A5", "--colour", "eos"], "colours lines, not pages"),
        (["--page", "A5", "--style", "a", "--style", "b"], "one --style"),
    ],
)
def test_page_options_are_refused_where_they_make_no_sense(tmp_path, args, message):
    result = run("sample", str(BUNDLED), "--text", "hi", *args, "-o", str(tmp_path / "x"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # refused before any file is written
