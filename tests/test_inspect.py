"""``hwkit inspect``: statistics against the store's own arrays, pictures, escaping, errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hwkit.cli import cli
from hwkit.paths import default_store
from hwkit.strokes import offset_stats

SVG = "{http://www.w3.org/2000/svg}"
NASTY = ["a <b> & c", "[bold]x[/bold]", "plain"]


def run(*args: str):
    return CliRunner().invoke(cli, ["inspect", *map(str, args)])


def _svg_groups(path: Path) -> list[ET.Element]:
    return [g for g in ET.parse(path).getroot().iter(f"{SVG}g") if g.get("class") == "line"]


def test_json_statistics_agree_with_the_store(make_store, tmp_path):
    skipped = [
        ("r1", "no transcription"),
        ("r2", "too short"),
        ("r3", "too short"),
        ("r4", "too short"),
        ("r5", "too short"),
    ]
    path = make_store(n_lines=30, skipped=skipped, prepare_params={"max_jump": 500.0, "min_points": 10})
    result = run(path, "--json", "--n", 4, "--out", tmp_path / "pics")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)

    with h5py.File(path) as f:
        lengths = np.diff(f["line_offsets"][()])
        points = f["points"][()]
        texts = list(f["text"].asstr()[()])
        writers = f["writer_id"][()]
        splits = {name: f[f"splits/{name}"][()] for name in ("train", "valid", "test")}
    chars = np.array([len(t) for t in texts])
    assert stats["lines"] == len(texts) and stats["points"] == len(points) == lengths.sum()
    assert stats["source"] == "demo" and stats["format_version"] == 1
    assert stats["prepare_params"] == {"max_jump": 500.0, "min_points": 10}
    for name, idx in splits.items():
        assert stats["splits"][name] == {
            "lines": len(idx),
            "points": int(lengths[idx].sum()),
            "characters": int(chars[idx].sum()),
            "writers": len({w for w in writers[idx] if w >= 0}),
        }
    assert stats["points_per_line"] == pytest.approx(
        {"min": lengths.min(), "median": np.median(lengths), "p95": np.percentile(lengths, 95), "max": lengths.max()}
    )
    assert stats["points_per_char"]["overall"] == pytest.approx(lengths.sum() / chars.sum())
    line_points = np.split(points, np.cumsum(lengths)[:-1])
    mean, std = offset_stats(line_points[i] for i in splits["train"])
    assert [stats["offset_mean"]["dx"], stats["offset_mean"]["dy"]] == pytest.approx(mean.tolist())
    assert [stats["offset_std"]["dx"], stats["offset_std"]["dy"]] == pytest.approx(std.tolist())
    assert stats["alphabet"]["counts"] == dict(sorted(Counter("".join(texts)).items()))
    assert stats["skipped"]["total"] == 5
    assert stats["skipped"]["by_reason"] == {
        "too short": {"count": 4, "examples": ["r2", "r3", "r4"]},
        "no transcription": {"count": 1, "examples": ["r1"]},
    }
    assert [s["index"] for s in stats["shown"]] == splits["train"][:4].tolist()
    assert set(stats["pictures"]) == {"lines", "histograms"}


def test_pictures_hold_one_group_per_line_with_literal_transcriptions(make_store, tmp_path):
    path = make_store(n_lines=12, texts=NASTY * 4)
    out = tmp_path / "pics"
    result = run(path, "--n", 5, "--out", out, "--png", "--colour", "pen")
    assert result.exit_code == 0, result.output
    groups = _svg_groups(out / "lines.svg")
    assert len(groups) == 5
    texts = [next(g.iter(f"{SVG}text")).text for g in groups]
    assert texts == [NASTY[i % 3] for i in range(5)]
    raw = (out / "lines.svg").read_text()
    assert "a &lt;b&gt; &amp; c" in raw
    for text in NASTY:
        assert text in result.stdout  # the table shows dataset text literally
    for name in ("lines", "histograms"):
        assert (out / f"{name}.svg").is_file() and (out / f"{name}.png").is_file()
        assert f"wrote {out / name}.svg\n" in result.stdout  # paths written are data: stdout, one line each
        assert f"{name}.svg" not in result.stderr


def test_seed_picks_reproducible_lines_of_the_split(make_store, tmp_path):
    path = make_store(n_lines=30)
    picks = []
    for _ in range(2):
        result = run(path, "--json", "--split", "valid", "--n", 3, "--seed", 4, "--out", tmp_path)
        assert result.exit_code == 0, result.output
        picks.append([s["index"] for s in json.loads(result.stdout)["shown"]])
    assert picks[0] == picks[1] and set(picks[0]) <= set(range(20, 25)) and len(set(picks[0])) == 3


def test_batch_is_drawn_as_the_loader_delivers_it(make_store, tmp_path):
    path = make_store(n_lines=30, min_points=20, max_points=200)
    result = run(path, "--json", "--batch", "--batch-size", 6, "--crop", 60, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)["batch"]
    assert 1 <= batch["size"] <= 6 and batch["steps"] <= 60 and batch["crop"] == 60
    assert 0.0 <= batch["padding_fraction"] < 1.0
    groups = _svg_groups(tmp_path / "batch.svg")
    assert len(groups) == batch["size"]
    notes = [list(g.iter(f"{SVG}text"))[1].text for g in groups]
    assert all(f"of {batch['steps']} steps" in note for note in notes)
    assert [note.split(" · ")[0] for note in notes] == batch["line_ids"]


def test_table_output_names_the_sections(make_store, tmp_path):
    result = run(make_store(skipped=[("bad-1", "no transcription")]), "--n", 3, "--batch", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for heading in ("splits", "points per line", "points per character", "alphabet", "skipped at prepare", "batch:"):
        assert heading in result.stdout
    assert "bad-1" in result.stdout and "wrote" not in result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("wrote ")


def test_default_store_prefers_iamondb_then_demo_then_newest(tmp_path, monkeypatch, make_store):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="no store found"):
        default_store()
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("zeta.h5", "demo.h5", "iamondb.h5"):
        make_store(name.removesuffix(".h5")).rename(cache / name)
    assert default_store() == Path("cache/iamondb.h5")
    (cache / "iamondb.h5").unlink()
    assert default_store() == Path("cache/demo.h5")
    (cache / "demo.h5").unlink()
    assert default_store() == Path("cache/zeta.h5")
    result = run("--n", 2, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == "cache/zeta.h5"
    assert (tmp_path / "cache/zeta-inspect/lines.svg").is_file()


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_errors_are_one_line(make_store, tmp_path):
    _one_line_error(run(tmp_path / "missing.h5"), "missing.h5", "no such store")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    _one_line_error(run(foreign), "foreign.h5", "not an hwkit stroke store")
    path = make_store(splits={"train": range(20), "valid": [], "test": range(20, 24)})
    _one_line_error(run(path, "--split", "valid", "--out", tmp_path), "tiny.h5", "'valid' has no lines")
    _one_line_error(run(path, "--split", "test", "--n", 5, "--out", tmp_path), "--n 5", "4 lines")
    _one_line_error(run(path, "--out", "/proc/hwkit-inspect"), "/proc/hwkit-inspect", "cannot be written")
    assert run(path, "--colour", "purple").exit_code == 2
    assert run(path, "--crop", 1).exit_code == 2
    result = run(path, "--crop", 50, "--out", tmp_path)  # --crop cuts batch lines: without --batch, a usage error
    assert result.exit_code == 2 and "--crop" in result.stderr and "--batch" in result.stderr


def test_default_n_draws_all_of_a_small_split(make_store, tmp_path):
    path = make_store(n_lines=30, splits={"train": range(20), "valid": range(20, 22), "test": range(22, 30)})
    result = run(path, "--split", "test", "--json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert [s["index"] for s in json.loads(result.stdout)["shown"]] == list(range(22, 30))
    assert result.stderr.strip().splitlines() == ["note: split 'test' has 8 lines: drawing all of them"]
    result = run(path, "--split", "train", "--json", "--out", tmp_path)  # 20 lines: the default fits, no note
    assert result.exit_code == 0 and result.stderr == "" and len(json.loads(result.stdout)["shown"]) == 20
    _one_line_error(run(path, "--split", "test", "--n", 20, "--out", tmp_path), "--n 20", "8 lines")


def test_json_keeps_stdout_pure_and_lists_the_pictures(make_store, tmp_path):
    result = run(make_store(), "--n", 2, "--json", "--png", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    pictures = json.loads(result.stdout)["pictures"]  # nothing but the JSON on stdout
    assert set(pictures) == {"lines", "lines_png", "histograms", "histograms_png"}
    assert "wrote" not in result.stdout and "wrote" not in result.stderr


def test_a_big_store_is_read_line_by_line_and_its_histogram_sampled(tiny_store, tmp_path, monkeypatch):
    from hwkit import inspection
    from hwkit.store import Store

    loaded = []
    original = Store.load
    monkeypatch.setattr(Store, "load", lambda self: loaded.append(self) or original(self))
    monkeypatch.setattr(inspection, "LOAD_BYTES", 1000)  # this tiny store counts as big
    monkeypatch.setattr(inspection, "HISTOGRAM_POINTS", Store(tiny_store).n_points // 3)
    read = []
    step_lengths = inspection.step_lengths
    monkeypatch.setattr(inspection, "step_lengths", lambda store, lines=None: read.append(lines) or
                        step_lengths(store, lines))  # fmt: skip
    result = inspection.inspect_store(tiny_store, n=3, out=tmp_path / "pics")
    assert not loaded  # never read whole into memory
    assert read[0] is not None and 0 < len(read[0]) < len(Store(tiny_store))
    assert any("random" in note for note in result["notes"])
    assert Path(result["pictures"]["histograms"]).is_file() and result["points"] == Store(tiny_store).n_points


def test_a_failed_picture_write_keeps_the_previous_picture_whole(tiny_store, tmp_path, monkeypatch):
    import errno

    from hwkit import inspection, render

    out = tmp_path / "pics"
    inspection.inspect_store(tiny_store, n=3, out=out)
    before = (out / "histograms.svg").read_bytes()

    def full_disk(panels, path):
        Path(path).write_bytes(b"<svg")  # half a picture, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(render, "histograms", full_disk)
    with pytest.raises(OSError):
        inspection.inspect_store(tiny_store, n=3, out=out)
    assert (out / "histograms.svg").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["histograms.svg", "lines.svg"]
