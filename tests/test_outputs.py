"""Output files: page files numbered per page, and those an earlier run left."""

from pathlib import Path

from hwkit.outputs import stale_pages


def test_numbered_pages_of_an_earlier_longer_run_are_found(tmp_path):
    for k in (1, 2, 3):
        (tmp_path / f"note-{k}.png").write_bytes(b"x")
        (tmp_path / f"note-{k}.plotter.svg").write_bytes(b"x")
    targets = {"png": tmp_path / "note.png", "plotter": tmp_path / "note.plotter.svg", "pdf": tmp_path / "note.pdf"}
    assert stale_pages(targets, 2) == [tmp_path / "note-3.png", tmp_path / "note-3.plotter.svg"]
    assert stale_pages({"png": tmp_path / "note.png"}, 1) == [tmp_path / f"note-{k}.png" for k in (1, 2, 3)]
    assert stale_pages({"png": tmp_path / "note.png"}, 3) == []


def test_an_output_folder_gets_dated_names_inside_it(tmp_path):
    import re

    from hwkit.outputs import plan

    existing = tmp_path / "existing"
    existing.mkdir()
    for output in (str(existing), f"{tmp_path / 'new'}/"):
        targets = plan(["png", "npz"], output)
        folder = Path(output.rstrip("/"))
        assert [p.parent for p in targets.values()] == [folder, folder]
        assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?\.png", targets["png"].name)
        assert targets["npz"].name == targets["png"].name.replace(".png", ".npz")
    assert plan(["png"], str(tmp_path / "plain"))["png"] == tmp_path / "plain.png"  # no slash, no folder: a stem
