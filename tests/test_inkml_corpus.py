"""InkML as a corpus: ``hwkit prepare`` reads files and folders of it, ``hwkit sample -o x.inkml`` writes it back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import synthetic_lines
from hwkit.cli import cli
from hwkit.inkml import write_inkml
from hwkit.store import Store
from hwkit.strokes import offsets_to_points
from hwkit.train import start

FIXTURES = Path(__file__).parent / "fixtures" / "inkml"
KEEP_ALL = ["--min-points", "2", "--max-jump", "1e9"]  # no cleaning: what goes in must come out


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_folder_of_inkml_becomes_a_store_with_every_skip_recorded(tmp_path):
    corpus = tmp_path / "ink"
    shutil.copytree(FIXTURES, corpus / "nested")
    result = run("prepare", corpus, "-o", tmp_path / "ink.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "ink.h5")
    assert store.source == "inkml" and len(store) == 12 and store.line_ids[0].startswith("nested/")
    assert dict(zip(store.line_ids, store.texts))["nested/one_line"] == "Fish & chips"
    reasons = {reason for _, reason in store.skipped}
    assert {"entity declaration", "malformed xml", "no traces", "no transcription", "channel mismatch",
            "non-numeric trace value"} <= reasons  # fmt: skip
    assert all(len(store.split(name)) for name in ("train", "valid", "test"))


def test_inkml_written_by_hand_comes_back_as_the_same_strokes(tmp_path):
    lines = synthetic_lines(6, seed=4, min_points=30)
    for k in range(2):  # two files of three lines each
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"page{k}.inkml").write_text(
            write_inkml([(line.offsets, line.text) for line in lines[3 * k : 3 * k + 3]]), encoding="utf-8"
        )
    result = run("prepare", tmp_path / "in", "-o", tmp_path / "back.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "back.h5")
    assert store.line_ids == [f"page{k}-{i:02d}" for k in range(2) for i in range(1, 4)]
    for i, line in enumerate(lines):
        assert store.texts[i] == line.text
        np.testing.assert_allclose(offsets_to_points(store.offsets(i)), offsets_to_points(line.offsets), atol=1e-3)


def test_sampled_handwriting_round_trips_through_inkml(tiny_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start(tiny_store, "synthesis", "tiny", run_dir=tmp_path / "synth", max_steps=1)
    written = run("sample", tmp_path / "synth", "--text", "the fox", "--text", "ok dog", "--seed", "2",
                  "--npz", "--inkml", "-o", "out/fox")  # fmt: skip
    assert written.exit_code == 0, written.output
    assert written.stdout.split() == ["out/fox.npz", "out/fox.inkml"]
    result = run("prepare", "out/fox.inkml", "-o", "fox.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    store, sampled = Store("fox.h5"), np.load("out/fox.npz")
    assert store.texts == ["the fox", "ok dog"]
    for i in range(2):
        want = sampled["offsets"][sampled["line_offsets"][i] : sampled["line_offsets"][i + 1]]
        np.testing.assert_allclose(offsets_to_points(store.offsets(i)), offsets_to_points(want), atol=1e-3)


def test_a_folder_without_inkml_or_iam_ondb_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("prepare", tmp_path / "empty", "-o", tmp_path / "x.h5")
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["entity_bomb.inkml", "malformed.inkml"])
def test_an_inkml_file_with_no_usable_line_is_a_one_line_error(tmp_path, name):
    result = run("prepare", FIXTURES / name, "-o", tmp_path / "x.h5")
    assert result.exit_code == 1 and "no usable lines" in result.stderr


def test_inkml_group_picks_iamondo_text_lines_instead_of_words(tmp_path):
    words = run("prepare", FIXTURES / "iamondo_style.inkml", "-o", tmp_path / "words.h5", *KEEP_ALL)
    lines = run("prepare", FIXTURES / "iamondo_style.inkml", "-o", tmp_path / "lines.h5", *KEEP_ALL,
                "--inkml-group", "Textline")  # fmt: skip
    assert words.exit_code == 0 and lines.exit_code == 0, words.output + lines.output
    by_word, by_line = Store(tmp_path / "words.h5"), Store(tmp_path / "lines.h5")
    assert len(by_line) < len(by_word) and all(" " in text for text in by_line.texts)
    assert by_line.prepare_params["inkml_group"] == "Textline"


def test_a_line_id_with_the_folder_of_its_file_is_a_style_not_a_path(tmp_path, monkeypatch):
    from hwkit.checkpoint import BUNDLED, Checkpoint
    from hwkit.errors import StyleError
    from hwkit.generate import style_primes

    lines = synthetic_lines(3, seed=5, min_points=30)
    (tmp_path / "ink" / "sub").mkdir(parents=True)
    (tmp_path / "ink" / "sub" / "page.inkml").write_text(write_inkml([(x.offsets, x.text) for x in lines]))
    assert run("prepare", tmp_path / "ink", "-o", tmp_path / "ink.h5", *KEEP_ALL).exit_code == 0
    monkeypatch.chdir(tmp_path)
    [prime] = style_primes(["sub/page-02"], tmp_path / "ink.h5", Checkpoint.load(BUNDLED))
    assert prime.text == lines[1].text
    np.testing.assert_allclose(prime.offsets[1:], lines[1].offsets[1:], atol=1e-3)
    with pytest.raises(StyleError, match="no such style file"):  # a folder and no such line: a file not there
        style_primes(["sub/page-09"], tmp_path / "ink.h5", Checkpoint.load(BUNDLED))


def test_inkml_is_found_whatever_the_case_of_its_suffix_and_in_an_xml_file(tmp_path):
    data = (FIXTURES / "one_line.inkml").read_bytes()
    (tmp_path / "upper").mkdir()
    (tmp_path / "upper" / "PAGE.INKML").write_bytes(data)
    (tmp_path / "upper" / "notes.txt").write_text("not ink")
    result = run("prepare", tmp_path / "upper", "-o", tmp_path / "upper.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    assert Store(tmp_path / "upper.h5").line_ids == ["PAGE"]
    (tmp_path / "page.xml").write_bytes(data)  # an InkML file some tool saved as .xml
    result = run("prepare", tmp_path / "page.xml", "-o", tmp_path / "xml.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    assert Store(tmp_path / "xml.h5").texts == ["Fish & chips"]
    (tmp_path / "session.xml").write_text('<?xml version="1.0"?>\n<WhiteboardCaptureSession/>')
    result = run("prepare", tmp_path / "session.xml", "-o", tmp_path / "s.h5")
    assert result.exit_code != 0 and "Traceback" not in result.output  # an IAM-OnDB stroke file is not InkML


def test_a_corpus_mixing_millimetres_and_raw_units_is_noted(tmp_path):
    """A file with an inkSource resolution is read in mm, one without in its own units: 100 times apart,
    which one store's normalisation cannot fit, so prepare says so."""
    lines = synthetic_lines(4, seed=6, min_points=30)
    raw = write_inkml([(x.offsets, x.text) for x in lines[:2]])
    tablet = ('<inkSource xml:id="tablet"><traceFormat><channel name="X" type="decimal"/><channel name="Y" '
              'type="decimal"/></traceFormat><channelProperties><channelProperty channel="X" name="resolution" '
              'value="1000" units="1/cm"/><channelProperty channel="Y" name="resolution" value="1000" units="1/cm"/>'
              "</channelProperties></inkSource>")  # fmt: skip
    scaled = write_inkml([(x.offsets, x.text) for x in lines[2:]])
    scaled = scaled.replace("<definitions>", "<definitions>" + tablet).replace(
        '<context xml:id="hwkit">', '<context xml:id="hwkit" inkSourceRef="#tablet">')
    for name, doc in (("raw.inkml", raw), ("tablet.inkml", scaled)):
        (tmp_path / "mixed").mkdir(exist_ok=True)
        (tmp_path / "mixed" / name).write_text(doc)
    result = run("prepare", tmp_path / "mixed", "-o", tmp_path / "mixed.h5", *KEEP_ALL)
    assert result.exit_code == 0, result.output
    assert "not all in one unit" in result.stderr and "tablet-0" in result.stderr and "raw-0" in result.stderr
    (tmp_path / "mixed" / "tablet.inkml").unlink()
    alike = run("prepare", tmp_path / "mixed", "-o", tmp_path / "alike.h5", *KEEP_ALL)
    assert alike.exit_code == 0 and "not all in one unit" not in alike.stderr


def test_ink_in_millimetres_is_read_and_primes_as_ink_in_the_models_units(tmp_path):
    """The same line from a tool that gives a physical scale (mm, 100 times smaller than the bundled
    models' tablet units) is read as the line, not as a dot, and said to be scaled."""
    from hwkit.checkpoint import BUNDLED, Checkpoint
    from hwkit.demo import held_out_writers, writer_lines
    from hwkit.generate import style_primes

    [line] = writer_lines(held_out_writers(0, 40)[0], ["morning light on the hills"], line_seed=1)
    tablet = ('<inkSource xml:id="tablet"><traceFormat><channel name="X" type="decimal"/><channel name="Y" '
              'type="decimal"/></traceFormat><channelProperties><channelProperty channel="X" name="resolution" '
              'value="1000" units="1/cm"/><channelProperty channel="Y" name="resolution" value="1000" units="1/cm"/>'
              "</channelProperties></inkSource>")  # fmt: skip
    raw = write_inkml([(line.offsets, line.text)])
    (tmp_path / "raw.inkml").write_text(raw)
    (tmp_path / "mm.inkml").write_text(raw.replace("<definitions>", "<definitions>" + tablet).replace(
        '<context xml:id="hwkit">', '<context xml:id="hwkit" inkSourceRef="#tablet">'))
    result = run("read", "bundled", tmp_path / "raw.inkml", tmp_path / "mm.inkml")
    assert result.exit_code == 0, result.output
    readings = dict(row.split("\t") for row in result.stdout.splitlines())
    assert readings["mm.inkml"] == readings["raw.inkml"] and len(readings["raw.inkml"]) > 10
    assert "mm.inkml is in other units" in result.stderr and "raw.inkml is in" not in result.stderr
    assert run("prepare", tmp_path / "mm.inkml", "-o", tmp_path / "mm.h5", *KEEP_ALL).exit_code == 0
    notes = []
    [prime] = style_primes(["mm"], tmp_path / "mm.h5", Checkpoint.load(BUNDLED), notes=notes)
    np.testing.assert_allclose(np.abs(prime.offsets[:, :2]).sum(), np.abs(line.offsets[:, :2]).sum(), rtol=0.5)
    assert any("--style mm is in other units" in n for n in notes)
