"""The stroke store: round trip, validation and atomic writes."""

import pickle

import h5py
import numpy as np
import pytest

from hwkit import store as store_mod
from hwkit.errors import StoreError
from hwkit.store import Line, Store, write_store
from hwkit.strokes import offset_stats


def make_lines(n=6, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        k = int(rng.integers(3, 40))
        off = np.column_stack([rng.integers(-30, 30, size=(k, 2)), rng.random(k) < 0.1]).astype(np.float32)
        off[0, :2] = 0
        off[-1, 2] = 1
        lines.append(Line(off, f"line {i} é<&>", f"a01-000u-{i:02d}", i % 3))
    return lines


def write(path, lines, **kw):
    splits = {"train": range(0, len(lines) - 2), "valid": [len(lines) - 2], "test": [len(lines) - 1]}
    return write_store(path, lines, splits, [("x-01", "malformed xml")], source="demo", **kw)


def test_round_trip_line_by_line(tmp_path):
    lines = make_lines()
    path = write(tmp_path / "s.h5", lines, prepare_params={"max_jump": 600})
    store = Store(path)
    assert len(store) == len(lines)
    assert store.n_points == sum(len(line.offsets) for line in lines)
    for i, line in enumerate(lines):
        got = store.line(i)
        np.testing.assert_array_equal(got.offsets, line.offsets)
        assert (got.text, got.line_id, got.writer_id) == (line.text, line.line_id, line.writer_id)
    assert list(store.split("valid")) == [4]
    assert [line.line_id for line in store.iter_split("test")] == ["a01-000u-05"]
    assert store.skipped == [("x-01", "malformed xml")]
    assert store.prepare_params == {"max_jump": 600}
    assert store.source == "demo" and len(store.fingerprint) == 64
    assert store.alphabet.chars == "".join(sorted(set("".join(line.text for line in lines))))
    mean, std = offset_stats(line.offsets for line in lines[:4])
    np.testing.assert_allclose(store.mean, mean)
    np.testing.assert_allclose(store.std, std)
    assert store.index_of("a01-000u-02") == 2


def test_store_pickles_without_handle_and_reads_after(tmp_path):
    store = Store(write(tmp_path / "s.h5", make_lines()))
    expected = store.offsets(1)
    assert store._file is not None
    clone = pickle.loads(pickle.dumps(store))
    assert clone._file is None
    np.testing.assert_array_equal(clone.offsets(1), expected)
    np.testing.assert_array_equal(Store(store.path).load().offsets(1), expected)


def test_existing_store_is_not_replaced_without_force(tmp_path):
    path = write(tmp_path / "s.h5", make_lines(seed=1))
    with pytest.raises(StoreError, match="already exists"):
        write(path, make_lines(seed=2))
    write(path, make_lines(n=3, seed=2), force=True)
    assert len(Store(path)) == 3


def test_interrupted_write_leaves_old_store_and_no_temp(tmp_path, monkeypatch):
    path = write(tmp_path / "s.h5", make_lines(n=5))

    class Boom(Exception):
        pass

    def fail(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(store_mod.Alphabet, "from_texts", fail)
    with pytest.raises(Boom):
        write(path, make_lines(n=8), force=True)
    with pytest.raises(Boom):
        write(tmp_path / "new.h5", make_lines(n=8))
    assert len(Store(path)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_reader_rejects_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        Store(tmp_path / "absent.h5")
    path = write(tmp_path / "s.h5", make_lines())
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(StoreError, match="trunc.h5"):
        Store(truncated)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["points"] = np.zeros((3, 3))
    with pytest.raises(StoreError, match="not an hwkit stroke store"):
        Store(foreign)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(StoreError, match="notes.h5"):
        Store(text)


def test_reader_rejects_unknown_version_and_inconsistent_offsets(tmp_path):
    path = write(tmp_path / "s.h5", make_lines())
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(StoreError, match="version 99"):
        Store(path)
    path = write(tmp_path / "t.h5", make_lines())
    with h5py.File(path, "r+") as f:
        offsets = f["line_offsets"][()]
        offsets[2] = offsets[-1] + 5
        f["line_offsets"][...] = offsets
    with pytest.raises(StoreError, match="inconsistent.*line_offsets"):
        Store(path)


def test_flipped_bits_in_the_points_are_found_by_verify_and_refused_by_inspect_and_train(make_store, tmp_path):
    import h5py

    from hwkit.errors import StoreError
    from hwkit.inspection import inspect_store
    from hwkit.train import start

    path = make_store()
    Store(path).verify()  # a store as written passes
    with h5py.File(path, "r+") as f:
        f["points"][5, 0] += 1.0  # one reading changed
    with pytest.raises(StoreError, match="damaged"):
        Store(path).verify()
    with pytest.raises(StoreError, match="damaged"):
        inspect_store(path, out=tmp_path / "pics")
    with pytest.raises(StoreError, match="damaged"):
        start(path, "prediction", "tiny", run_dir=tmp_path / "run", max_steps=1)


@pytest.mark.parametrize("std", [[0.0, 1.0], [float("nan"), 1.0]])
def test_a_store_whose_statistics_cannot_normalise_is_refused(make_store, std):
    import h5py

    from hwkit.errors import StoreError

    path = make_store()
    with h5py.File(path, "r+") as f:
        f["stats"].attrs["std"] = np.array(std)
    with pytest.raises(StoreError, match="train statistics are not"):
        Store(path)


def test_written_in_small_blocks_the_store_is_the_same(tmp_path, monkeypatch):
    lines = make_lines(12, seed=4)
    whole = Store(write(tmp_path / "whole.h5", lines))
    monkeypatch.setattr(store_mod, "WRITE_BLOCK", 7)  # a block every line or two
    blocks = Store(write(tmp_path / "blocks.h5", lines))
    assert blocks.fingerprint == whole.fingerprint
    blocks.verify()
    for i in range(len(lines)):
        np.testing.assert_array_equal(blocks.offsets(i), whole.offsets(i))


def test_spooled_lines_write_the_same_store_and_the_spool_file_goes(tmp_path):
    lines = make_lines(9, seed=5)
    with store_mod.Spool(tmp_path / "spooled.h5") as spool:
        for line in lines:
            spool.add(line.offsets, line.text, line.line_id, line.writer_id)
        assert spool.path.is_file() and spool.path.name.startswith(".spooled.tmp-")
        spooled = Store(write(tmp_path / "spooled.h5", spool.lines))
    assert not spool.path.exists()
    assert spooled.fingerprint == Store(write(tmp_path / "plain.h5", lines)).fingerprint


def test_a_jump_kept_as_a_pen_up_move_does_not_set_the_scale(tmp_path):
    lines = make_lines(10, seed=6)
    calm = Store(write(tmp_path / "calm.h5", lines, stats_max_move=10_000.0))
    glitch = lines[0].offsets.copy()
    glitch[len(glitch) // 2, :2] = (50_000.0, -20_000.0)  # a lost reading, split off as a pen-up jump
    lines[0] = Line(glitch, lines[0].text, lines[0].line_id, lines[0].writer_id)
    robust = Store(write(tmp_path / "robust.h5", lines, stats_max_move=10_000.0))
    naive = Store(write(tmp_path / "naive.h5", lines))
    np.testing.assert_allclose(robust.std, calm.std, rtol=0.05)
    assert naive.std[0] > 20 * calm.std[0]
