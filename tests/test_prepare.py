"""The prepare pipeline: every good line kept exactly, every bad input left out with its reason,
archives read like folders, splits as documented, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import CorpusError, StoreError
from hwkit import iam
from hwkit.config import PrepareParams
from hwkit.prepare import CHUNK_FILES, clean_lines, prepare_corpus, split_lines
from hwkit.store import Store
from hwkit.strokes import drop_repeats, points_to_offsets, split_jumps, strokes_to_points
from iamtree import BROKEN, write_tree

PARAMS = PrepareParams(min_points=30, max_jump=300.0)


def expected_offsets(points: np.ndarray, max_jump: float) -> np.ndarray:
    return points_to_offsets(split_jumps(drop_repeats(points), max_jump)).astype(np.float32)


def assert_store_matches(store: Store, tree, params: PrepareParams = PARAMS, subset: bool = False) -> None:
    if subset:
        assert set(store.line_ids) <= set(tree.lines)
    else:
        assert store.line_ids == sorted(tree.lines)
    for i, line_id in enumerate(store.line_ids):
        want = tree.lines[line_id]
        assert store.texts[i] == want.text
        assert store.writer_ids[i] == want.writer
        np.testing.assert_array_equal(store.offsets(i), expected_offsets(want.points, params.max_jump))


def test_keeps_every_good_line_and_skips_every_bad_one(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=6, broken=BROKEN)
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    store = Store(report.output)
    assert_store_matches(store, tree)
    assert dict(store.skipped) == tree.skipped and len(store.skipped) == len(tree.skipped)
    assert report.skipped == sorted(tree.skipped.items())
    assert sum(report.lines.values()) == len(tree.lines) and report.points == store.n_points
    assert report.files == len(tree.lines) + len(tree.skipped)
    assert store.source == "iam-ondb" and len(store.attrs["source_fingerprint"]) == 64
    # the cleaning really happened: the fixture wrote repeats and glitches
    raw = sum(len(e.points) for e in tree.lines.values())
    assert store.n_points < raw
    assert sum(store.offsets(i)[:, 2].sum() for i in range(len(store))) > sum(
        e.points[:, 2].sum() for e in tree.lines.values()
    )


def test_a_second_file_with_a_seen_line_id_is_left_out_by_path(tmp_path):
    tree = write_tree(tmp_path / "iam")
    first = sorted((tree.root / "lineStrokes").rglob("*.xml"))[0]
    copy = tree.root / "lineStrokes" / "zz" / first.name
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    assert store.skipped == [(f"lineStrokes/zz/{first.name}", "duplicate line id")]
    assert_store_matches(store, tree)


def test_latin1_text_arrives_as_utf8(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=6, seed=3)
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    accented = [t for t in store.texts if set(t) & set("éïüÆø")]
    assert accented and set(accented) <= {e.text for e in tree.lines.values()}
    with h5py.File(store.path) as f:
        raw = f["text"][()]
    assert any("café".encode() in t or "Zürich".encode() in t for t in raw)


def test_params_and_rules_are_recorded(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=8, writers=8)  # writers small enough to be dealt out whole
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    recorded = store.prepare_params
    assert PrepareParams.from_dict({k: recorded[k] for k in PrepareParams().to_dict()}) == PARAMS  # beside the decisions
    assert recorded["text_encoding"] == "iso-8859-1"
    assert any("split_jumps" in step and "every reading kept" in step for step in recorded["cleaning"])
    assert recorded["split"]["rule"] == "writer hash"


def test_archives_read_like_folders(tmp_path):
    folders = write_tree(tmp_path / "dirs", forms=6, broken=BROKEN, seed=5)
    archives = write_tree(tmp_path / "tars", forms=6, broken=BROKEN, seed=5, archives=True)
    assert not (archives.root / "lineStrokes").exists() and (archives.root / "lineStrokes-all.tar.gz").is_file()
    a = Store(prepare_corpus(folders.root, tmp_path / "a.h5", jobs=1, params=PARAMS).output)
    b = Store(prepare_corpus(archives.root, tmp_path / "b.h5", jobs=1, params=PARAMS).output)
    assert a.line_ids == b.line_ids and a.texts == b.texts and a.skipped == b.skipped
    assert np.array_equal(a.writer_ids, b.writer_ids) and a.attrs["content_sha256"] == b.attrs["content_sha256"]
    assert_store_matches(b, archives)


def test_truncated_archive_keeps_the_lines_before_the_cut(tmp_path):
    tree = write_tree(tmp_path / "tars", forms=12, archives=True, truncate=True)
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    assert 0 < len(store) < len(tree.lines)
    assert_store_matches(store, tree, subset=True)
    assert ("lineStrokes-all.tar.gz", "truncated archive") in store.skipped


def test_truncated_archive_is_a_warning_that_counts_the_loss(tmp_path):
    tree = write_tree(tmp_path / "tars", forms=12, archives=True, truncate=True)
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    lost = len(tree.lines) - sum(report.lines.values())
    assert lost > 0
    assert report.warnings == [f"lineStrokes-all.tar.gz is truncated: {lost} files could not be read"]
    assert report.to_json()["warnings"] == report.warnings


def test_junk_archives_are_unreadable_not_truncated(tmp_path):
    tree = write_tree(tmp_path / "tars", forms=6, archives=True)
    (tree.root / "original-xml-all.tar.gz").write_bytes(b"not a gzip file at all" * 50)
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    store = Store(report.output)
    assert ("original-xml-all.tar.gz", "unreadable archive") in store.skipped
    assert not any(reason == "truncated archive" for _, reason in store.skipped)
    assert report.warnings == [f"original-xml-all.tar.gz is unreadable: {len(store)} lines have no writer id"]
    assert report.split_rule == "form hash"  # no writer is known any more
    for part in ("lineStrokes", "ascii"):
        tree = write_tree(tmp_path / part, forms=6, archives=True)
        (tree.root / f"{part}-all.tar.gz").write_bytes(b"junk" * 100)
        with pytest.raises(CorpusError, match=f"{part}-all.tar.gz: unreadable archive"):
            prepare_corpus(tree.root, tmp_path / f"{part}.h5", jobs=1, params=PARAMS)
        assert not (tmp_path / f"{part}.h5").exists()


def test_empty_train_or_valid_split_is_a_warning(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=1)  # one writer: everything lands in train
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    assert report.lines["valid"] == 0 and report.lines["train"] > 0
    assert report.warnings == ["split 'valid' is empty; hwkit train needs train and valid lines"]
    tree = write_tree(tmp_path / "iam2", forms=6)
    assert prepare_corpus(tree.root, tmp_path / "out2.h5", jobs=1, params=PARAMS).warnings == []


def test_without_writer_ids_the_split_is_by_form_hash(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=12, originals=False)
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    assert report.split_rule == "form hash" and report.writers == 0
    assert Store(report.output).prepare_params["split"]["rule"] == "form hash"


def test_parallel_parse_equals_serial(tmp_path):
    forms = CHUNK_FILES + 2  # four chunks: two go to the worker, the rest are parsed here while it is busy
    tree = write_tree(tmp_path / "iam", forms=forms, lines_per_form=3, broken=["malformed xml", "bad coordinates"])
    calls = []
    serial = prepare_corpus(tree.root, tmp_path / "serial.h5", jobs=1, params=PARAMS)
    parallel = prepare_corpus(tree.root, tmp_path / "parallel.h5", jobs=2, params=PARAMS, progress=calls.append)
    a, b = Store(serial.output), Store(parallel.output)
    assert a.attrs["content_sha256"] == b.attrs["content_sha256"] and a.skipped == b.skipped
    assert_store_matches(b, tree)
    assert len(calls) == 4
    assert {c["event"] for c in calls} == {"files"}
    assert [c["done"] for c in calls] == sorted(c["done"] for c in calls)
    assert calls[-1]["done"] == calls[-1]["total"] == 3 * forms
    assert calls[-1]["lines"] == len(b) and calls[-1]["points"] == b.n_points


def test_official_task_lists(tmp_path):
    lists = {
        "trainset": ["a01-000u", "a02-037x-01"],  # a form, and a single line of another form
        "testset_t": ["a03-074w"],
        "testset_f": ["a05-148"],
        "testset_v": ["a02-037x", "a04-111z-02"],  # a form whose line 1 is listed for training too
    }
    tree = write_tree(tmp_path / "iam", forms=6, task_lists=lists)
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    by_split = {name: {store.line_ids[i] for i in store.splits[name]} for name in ("train", "valid", "test")}
    forms = {name: {i.rsplit("-", 1)[0] for i in ids} for name, ids in by_split.items()}
    assert forms["train"] == {"a01-000u", "a03-074w", "a05-148"}
    assert by_split["valid"] == {i for i in store.line_ids if i.startswith("a02-037x")} | {"a04-111z-02"}
    unlisted = {i for i in store.line_ids if i.startswith(("a04-111z", "a06-185x"))} - {"a04-111z-02"}
    assert by_split["test"] == unlisted
    rule = store.prepare_params["split"]
    assert rule["rule"] == "task lists" and rule["test"] == "lines in no list"


def test_task_lists_that_match_nothing_fall_back_to_hashing(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=8, writers=8, task_lists={"trainset": ["zz99-999"]})
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    assert store.prepare_params["split"]["rule"] == "writer hash"
    assert store.prepare_params["split"]["task_lists_found"] == ["trainset"]


def writers_and_forms(n_writers: int, forms_per_writer: int, lines_per_form: int, known: bool):
    line_ids, writers = [], []
    for w in range(n_writers):
        for f in range(forms_per_writer):
            for n in range(1, lines_per_form + 1):
                line_ids.append(f"w{w:03d}-{f:03d}u-{n:02d}")
                writers.append(10000 + w if known else -1)
    return line_ids, writers


@pytest.mark.parametrize("known", [True, False])
def test_hash_split_keeps_groups_together(known):
    line_ids, writers = writers_and_forms(60, 3, 5, known)
    splits, rule = split_lines(line_ids, writers, {})
    key = writers if known else [i.rsplit("-", 1)[0] for i in line_ids]
    owners = {}
    for name, idx in splits.items():
        for i in idx:
            assert owners.setdefault(key[i], name) == name, "a group was split"
    assert sorted(i for idx in splits.values() for i in idx) == list(range(len(line_ids)))
    n = len(line_ids)
    for name in ("valid", "test"):
        assert 0.05 * n <= len(splits[name]) <= 0.05 * n + (15 if known else 5)
    assert splits == split_lines(line_ids, writers, {})[0]  # deterministic, no seed
    assert rule["rule"] == ("writer hash" if known else "form hash") and rule["valid_fraction"] == 0.05


def test_hash_split_with_few_groups_keeps_training_data():
    assert split_lines(["a-01", "a-02"], [7, 7], {})[0] == {"train": [0, 1], "valid": [], "test": []}
    splits = split_lines(["a-01", "b-01"], [1, 2], {})[0]
    assert len(splits["train"]) == 1 and len(splits["valid"]) == 1 and splits["test"] == []


def test_hash_split_is_stable_under_input_order():
    line_ids, writers = writers_and_forms(30, 2, 3, True)
    splits = split_lines(line_ids, writers, {})[0]
    order = np.random.default_rng(0).permutation(len(line_ids))
    shuffled = split_lines([line_ids[i] for i in order], [writers[i] for i in order], {})[0]
    for name in splits:
        assert {line_ids[i] for i in splits[name]} == {line_ids[order[i]] for i in shuffled[name]}


def test_writer_disjoint_split_end_to_end(tmp_path):
    tree = write_tree(tmp_path / "iam", forms=12, writers=6)
    store = Store(prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).output)
    writers = {name: set(store.writer_ids[store.splits[name]].tolist()) for name in ("train", "valid", "test")}
    assert writers["train"] and writers["valid"] and writers["test"]
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not writers[a] & writers[b]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(
            st.lists(st.tuples(st.integers(-5, 5), st.integers(-5, 5)), min_size=1, max_size=8), min_size=1, max_size=4
        ),
        max_size=5,
    ),
    st.sampled_from([1.0, 3.0, 100.0]),
)
def test_clean_lines_equals_cleaning_each_line(lines, max_jump):
    """Cleaning a whole chunk at once is exactly per-line cleaning (repeats are likely here)."""
    points = [strokes_to_points([np.array(s, dtype=float) for s in strokes]) for strokes in lines]
    batched = clean_lines(points, max_jump)
    assert len(batched) == len(points)
    for got, p in zip(batched, points):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected_offsets(p, max_jump))


def test_demo_marker_sets_the_source(tmp_path):
    tree = write_tree(tmp_path / "demo", demo=True)
    assert prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS).source == "demo"
    assert Store(tmp_path / "out.h5").source == "demo"


def test_refuses_to_replace_without_force(tmp_path, monkeypatch):
    tree = write_tree(tmp_path / "iam")
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    monkeypatch.setattr("hwkit.iam.find_corpus", lambda *_: pytest.fail("parsed before refusing"))
    with pytest.raises(StoreError, match="already exists .*--force"):
        prepare_corpus(tree.root, out, jobs=1)
    assert out.read_bytes() == b"old"


def test_interrupted_write_leaves_no_file_and_keeps_the_old_store(tmp_path, monkeypatch):
    tree = write_tree(tmp_path / "iam", forms=6)
    out = tmp_path / "cache" / "iam.h5"
    original = h5py.Group.create_dataset

    def failing(self, name, *args, **kwargs):
        if name == "writer_id":
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half way through the write
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(tree.root, out, jobs=1, params=PARAMS)
    assert not out.exists() and list(out.parent.iterdir()) == []

    monkeypatch.setattr(h5py.Group, "create_dataset", original)
    old = Store(prepare_corpus(tree.root, out, jobs=1, params=PARAMS).output)
    digest = old.attrs["content_sha256"]
    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(tree.root, out, jobs=1, force=True, params=PrepareParams(max_jump=50.0))
    assert Store(out).attrs["content_sha256"] == digest
    assert [p.name for p in out.parent.iterdir()] == ["iam.h5"]


def test_layout_and_empty_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="not an IAM-OnDB root"):
        prepare_corpus(tmp_path, tmp_path / "out.h5")
    tree = write_tree(tmp_path / "iam", forms=1, broken=["malformed xml"])
    with pytest.raises(CorpusError, match="no usable lines .*too few points"):
        prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PrepareParams(min_points=10_000))
    assert not (tmp_path / "out.h5").exists()


def test_one_writers_lines_are_split_by_line_when_writers_cannot_be():
    ids = [f"a01-000u-{i:02d}" for i in range(1, 41)]
    splits, rule = split_lines(ids, [3] * 40, {})
    assert rule["rule"] == "line hash" and (len(splits["valid"]), len(splits["test"]), len(splits["train"])) == (2, 2, 36)
    assert sorted(splits["train"] + splits["valid"] + splits["test"]) == list(range(40))
    few, rule = split_lines(ids[:4], [3] * 4, {})
    assert rule["rule"] == "writer hash" and few["valid"] == [] and len(few["train"]) == 4  # too few to hold any out
    # task lists that put the one writer in training (a demo corpus of one writer) hold lines out the same way
    listed, rule = split_lines(ids, [3] * 40, {"trainset": {"a01-000u"}})
    assert rule["rule"] == "line hash" and listed == splits


def test_a_demo_corpus_of_one_writer_has_valid_and_test_lines(tmp_path, monkeypatch):
    from hwkit.config import DemoParams
    from hwkit.prepare import prepare

    monkeypatch.chdir(tmp_path)  # the demo corpus is written under data/demo
    prepare(None, tmp_path / "me.h5", demo=DemoParams(lines=30, writers=1), jobs=1)
    store = Store(tmp_path / "me.h5")
    assert store.split("valid").size and store.split("test").size and store.split("train").size


def test_links_and_special_files_are_recorded_never_opened(tmp_path):
    import os

    tree = write_tree(tmp_path / "iam", forms=2)
    strokes = tmp_path / "iam" / "lineStrokes"
    folder = next(p for p in strokes.rglob("*") if p.is_dir() and any(p.glob("*.xml")))
    outside = tmp_path / "outside.xml"
    outside.write_bytes(next(folder.glob("*.xml")).read_bytes())
    (folder / "zz-link-01.xml").symlink_to(outside)  # a link out of the tree
    (folder / "zz-dangling-01.xml").symlink_to(tmp_path / "gone.xml")
    os.mkfifo(folder / "zz-pipe-01.xml")  # opening it would block forever
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    left = {name.rsplit("/", 1)[-1] for name in report.skipped_by_reason()[iam.NOT_REGULAR]}
    assert left == {"zz-link-01.xml", "zz-dangling-01.xml", "zz-pipe-01.xml"}
    assert_store_matches(Store(report.output), tree)


def test_a_folder_that_cannot_be_listed_is_recorded_not_lost_silently(tmp_path, monkeypatch):
    """As a user without read permission on a sub-folder sees it (tests run as root, whom mode 000
    does not stop, so the listing error is made by hand)."""
    import os

    tree = write_tree(tmp_path / "iam", forms=3)
    strokes = tmp_path / "iam" / "lineStrokes"
    blocked = sorted(p for p in strokes.rglob("*") if p.is_dir() and any(p.glob("*.xml")))[0]
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(blocked):
            raise PermissionError(13, "Permission denied", str(blocked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    lost = report.skipped_by_reason()[iam.UNREADABLE_FOLDER]
    assert lost == ["lineStrokes/" + blocked.relative_to(strokes).as_posix()]
    kept = set(Store(report.output).line_ids)
    assert kept and not any(line_id.startswith(blocked.name) for line_id in kept)


@pytest.mark.parametrize("archives", [False, True], ids=["folders", "archives"])
def test_a_file_too_large_to_be_a_stroke_file_is_skipped_unread(tmp_path, monkeypatch, archives):
    monkeypatch.setattr(iam, "MAX_FILE_BYTES", 100_000)
    tree = write_tree(tmp_path / "iam", forms=2, archives=archives, seed=2)
    if archives:
        import io
        import tarfile

        with tarfile.open(tree.root / "lineStrokes-all.tar.gz", "r:gz") as tar:
            members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
        victim = next(m.name for m, data in members if m.isfile())
        with tarfile.open(tree.root / "lineStrokes-all.tar.gz", "w:gz") as tar:
            for member, data in members:
                if member.name == victim:
                    data += b" " * 200_000
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data) if data is not None else None)
    else:
        victim_path = next((tree.root / "lineStrokes").rglob("*.xml"))
        victim_path.write_bytes(victim_path.read_bytes() + b" " * 200_000)
        victim = victim_path.relative_to(tree.root).as_posix()
    report = prepare_corpus(tree.root, tmp_path / "out.h5", jobs=1, params=PARAMS)
    too_large = report.skipped_by_reason()[iam.TOO_LARGE]
    assert [name.rsplit("/", 1)[-1].removesuffix(".xml") for name in too_large] == [victim.rsplit("/", 1)[-1].removesuffix(".xml")]


def test_a_big_group_never_lands_in_valid_and_a_redeal_loses_no_line():
    ids = [f"a-{i:02d}" for i in range(95)] + [f"b-{i:02d}" for i in range(5)]  # two files, writers unknown
    splits, rule = split_lines(ids, [-1] * 100, {})
    assert len(splits["train"]) >= 90 and len(splits["valid"]) <= 10, {k: len(v) for k, v in splits.items()}
    params = PrepareParams(valid_fraction=0.0, test_fraction=0.2)  # test takes groups, valid none: a redeal
    splits, rule = split_lines([f"w{w}-{i}" for w in range(4) for i in range(10)], [w for w in range(4) for _ in range(10)], {}, params)
    assert sorted(i for idx in splits.values() for i in idx) == list(range(40))  # every line somewhere, once
