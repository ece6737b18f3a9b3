"""The studio's HTTP API through Starlette's test client: writing streams, limits, ids, recordings, styles."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("httpx2")
from starlette.testclient import TestClient  # noqa: E402

from hwkit.studio import service  # noqa: E402
from hwkit.studio.app import MAX_BODY, create_app  # noqa: E402
from hwkit.studio.service import Studio  # noqa: E402


@pytest.fixture
def studio(tmp_path: Path):
    made = Studio(tmp_path)
    yield made
    made.close()


@pytest.fixture
def client(studio):
    with TestClient(create_app(studio), base_url="http://127.0.0.1:8000") as c:
        yield c


def events(response) -> list[dict]:
    out = []
    for block in response.text.split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            out.append(json.loads(data[0]))
    return out


def strokes(n: int = 40, x0: float = 20.0) -> list:
    t = np.arange(n) * 8.0
    first = [[x0 + 2 * i, 100 + 12 * np.sin(i / 4), t[i]] for i in range(n)]
    second = [[x0 + 30, 80 + 3 * i, t[-1] + 100 + 8 * i] for i in range(10)]
    return [first, second]


def test_write_streams_points_before_the_line_and_matches_it(client):
    response = client.post("/api/write", json={"text": "hello world\nsecond line", "seed": 3, "bias": 1, "tries": 1})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    kinds = [e["event"] for e in got]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert got[0]["lines"] == ["hello world", "second line"]
    for line in (0, 1):
        points = [e for e in got if e["event"] == "points" and e["line"] == line]
        final = next(e for e in got if e["event"] == "line" and e["line"] == line)
        assert len(points) > 1 and kinds.index("points") < got.index(final)  # points came first, in parts
        streamed = np.concatenate([e["offsets"] for e in points])
        drawn = np.array(final["offsets"])
        assert len(streamed) == len(drawn)  # and not a point past its stop, though the other line went on
        np.testing.assert_allclose(streamed[:-1, :2], drawn[:-1, :2], atol=0.011)  # the same pen path
    assert got[-1]["stops"] == {"rule": 2}


def test_downloads_come_from_the_same_writers_as_hwkit_sample(client):
    done = events(client.post("/api/write", json={"text": "abc", "seed": 1}))[-1]
    for fmt, start in (("svg", b"<svg"), ("png", b"\x89PNG"), ("animate", b"<svg"), ("npz", b"PK"),
                       ("json", b"{"), ("attention", b"\x89PNG")):  # fmt: skip
        response = client.get(f"/api/result/{done['result']}/{fmt}?colour=%23336699&width=2")
        assert response.status_code == 200 and response.content.startswith(start), fmt
    assert "#336699" in client.get(f"/api/result/{done['result']}/svg?colour=%23336699").text
    assert client.get("/api/result/nope/svg").status_code == 404
    assert client.get(f"/api/result/{done['result']}/exe").status_code == 404
    assert client.get(f"/api/result/{done['result']}/svg?colour=notacolour").status_code == 400


def test_each_lines_attention_window_on_its_own(client):
    from PIL import Image

    done = events(client.post("/api/write", json={"text": "abc\ndef", "seed": 1}))[-1]
    whole = Image.open(__import__("io").BytesIO(client.get(f"/api/result/{done['result']}/attention").content))
    one = client.get(f"/api/result/{done['result']}/attention?line=1")
    assert one.status_code == 200
    single = Image.open(__import__("io").BytesIO(one.content))
    assert single.height < whole.height  # one line's ink and heatmap, not both lines'
    assert client.get(f"/api/result/{done['result']}/attention?line=2").status_code == 404
    assert client.get(f"/api/result/{done['result']}/attention?line=-1").status_code == 400
    assert client.get(f"/api/result/{done['result']}/attention?line=\u00b2").status_code == 400


@pytest.mark.parametrize(
    ("request_body", "status", "fragment"),
    [
        ({"text": ""}, 400, "write some text"),
        ({"text": "x" * 601}, 400, "at most 600"),
        ({"text": "\n".join(["word"] * 9)}, 400, "at most 8"),
        ({"text": "hi", "bias": "high"}, 400, "bias"),
        ({"text": "hi", "seed": -1}, 400, "seed"),
        ({"text": "hi", "tries": 0}, 400, "tries is a whole number from 1 to 8"),
        ({"text": "hi", "tries": 9}, 400, "tries is a whole number from 1 to 8"),
        ({"text": "hi", "tries": 2.5}, 400, "tries is a whole number"),
        ({"text": "hi", "tries": True}, 400, "tries is a whole number"),
        ({"text": "hi", "tries": "4"}, 400, "tries is a whole number"),
        ({"text": "hi €"}, 400, "tick 'replace characters the model lacks'"),
        ({"text": "hi", "colour": "reddish"}, 400, "'reddish' is not a colour"),
        ({"text": "hi", "colour": 3}, 400, "colour is a colour name"),
        ({"text": "hi", "model": "../../etc"}, 404, "no model"),
        ({"text": "hi", "model": "bundled", "hand": "style:../../x"}, 404, "no hand"),
        ({"text": "hi", "hand": "rec:../x/r00-000u-01"}, 404, "corpus name"),
        ({"text": "hi", "hand": "line:no-such-line"}, 404, "no-such-line"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_write_requests_are_refused_with_a_reason(client, request_body, status, fragment):
    response = client.post("/api/write", json=request_body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_the_auto_hand_is_a_house_hand_chosen_by_the_seed(client, studio):
    from hwkit.checkpoint import BUNDLED, Checkpoint

    hands = Checkpoint.load(BUNDLED).hands
    assert hands  # the bundled model carries the hands it writes most legibly
    listed = client.get("/api/hands?model=bundled").json()
    assert listed[0]["id"] == "auto" and "house hands" in listed[0]["label"]
    got = events(client.post("/api/write", json={"text": "hello", "hand": "auto", "seed": 3}))
    assert got[-1]["event"] == "done"
    chosen = studio.prime("bundled", "auto", 3)
    assert chosen.text == studio.prime("bundled", "auto", 3).text
    assert chosen.text in {h["text"] for h in hands}


def test_unknown_characters_can_be_replaced(client):
    got = events(client.post("/api/write", json={"text": "hi €", "replace_unknown": True, "seed": 1}))
    assert got[0]["lines"][0].startswith("hi ") and got[-1]["event"] == "done"
    assert any("'€'" in note for note in got[0]["notes"])  # the page says what it replaced
    assert events(client.post("/api/write", json={"text": "hi", "seed": 1, "tries": 1}))[0]["notes"] == []


def test_a_store_of_unknown_writers_offers_each_of_its_lines_as_a_hand(client, studio, tmp_path, monkeypatch):
    from hwkit.checkpoint import BUNDLED, Checkpoint
    from hwkit.inkml import write_inkml
    from hwkit.prepare import prepare
    from hwkit.store import Store

    from helpers import synthetic_lines

    lines = synthetic_lines(4, seed=3, min_points=30)
    (tmp_path / "ink").mkdir()
    (tmp_path / "ink" / "page.inkml").write_text(write_inkml([(x.offsets, x.text) for x in lines]))
    prepare(tmp_path / "ink", tmp_path / "ink.h5")
    ckpt = Checkpoint.load(BUNDLED)
    ckpt.store = {"path": str(tmp_path / "ink.h5")}
    ckpt.save(tmp_path / "models" / "mine" / "best.pt")
    hands = [h for h in client.get("/api/hands?model=mine").json() if h["kind"] == "store"]
    store = Store(tmp_path / "ink.h5")
    assert len(store) >= 3 and set(store.writer_ids) == {-1}
    assert [h["id"] for h in hands] == [f"line:{i}" for i in store.line_ids]  # each line, not one for writer -1
    assert hands[0]["label"] == f"{store.line_ids[0]}: {store.texts[0]}"


def test_oversize_and_non_json_bodies(client):
    big = client.post("/api/record", content=b"{" + b" " * (MAX_BODY + 10) + b"}",
                      headers={"content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    bad = client.post("/api/write", content=b"not json", headers={"content-type": "application/json"})
    assert bad.json()["error"] == "the request is not JSON"


def test_other_web_sites_cannot_write_through_the_browser(client, tmp_path):
    """A page elsewhere can make the browser POST (text/plain needs no preflight) or rebind its DNS name."""
    body = json.dumps({"corpus": "evil", "text": "x", "strokes": strokes()})
    plain = client.post("/api/record", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    foreign = client.post("/api/record", content=body, headers={"content-type": "application/json",
                                                                "origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    rebound = client.post("/api/record", content=body, headers={"content-type": "application/json",
                                                                "host": "evil.example:8000"})  # fmt: skip
    assert rebound.status_code == 400
    assert not (tmp_path / "data" / "evil").exists()
    own = client.post("/api/record", content=body, headers={"content-type": "application/json",
                                                            "origin": "http://127.0.0.1:8000"})  # fmt: skip
    assert own.status_code == 200


def test_a_busy_studio_says_so_instead_of_hanging(studio, client, monkeypatch):
    release = threading.Event()
    original = studio.run

    def slow(job, emit):
        release.wait(10)
        original(job, emit)

    monkeypatch.setattr(studio, "run", slow)
    studio.max_jobs = 1
    job = studio.make_job({"text": "one", "seed": 1})  # takes the only slot
    response = client.post("/api/write", json={"text": "two"})
    assert response.status_code == 503 and "busy" in response.json()["error"]
    release.set()
    studio.run(job, lambda event: None)  # frees the slot
    assert events(client.post("/api/write", json={"text": "three", "seed": 1}))[-1]["event"] == "done"


def test_record_list_prepare_and_write_in_the_recorded_hand(client, studio, tmp_path):
    from hwkit.prepare import prepare
    from hwkit.store import Store

    ids = [client.post("/api/record", json={"corpus": "me", "text": t, "strokes": strokes()}).json()["line_id"]
           for t in ("first line", "second line")]  # fmt: skip
    assert ids == ["r00-000u-01", "r00-001u-01"]  # never the same number twice
    assert [r["text"] for r in client.get("/api/recordings?corpus=me").json()] == ["first line", "second line"]
    prepare(tmp_path / "data" / "me", tmp_path / "me.h5")
    store = Store(tmp_path / "me.h5")
    assert sorted(store.texts) == ["first line", "second line"]
    hands = [h["id"] for h in client.get("/api/hands?model=bundled").json()]
    assert "rec:me/r00-000u-01" in hands
    got = events(client.post("/api/write", json={"text": "in my hand", "hand": "rec:me/r00-000u-01", "seed": 2}))
    assert got[-1]["event"] == "done"
    made = client.post("/api/style", json={"hand": "rec:me/r00-001u-01"}).json()  # for the bundled model
    assert made["hand"] == "style:me-r00-001u-01" and (tmp_path / "styles" / "me-r00-001u-01.json").is_file()
    listed = [h["id"] for h in client.get("/api/hands").json()]
    assert made["hand"] not in listed and "rec:me/r00-001u-01" in listed  # one hand, listed once: as recorded
    got = events(client.post("/api/write", json={"text": "styled", "hand": made["hand"], "seed": 2}))
    assert got[-1]["event"] == "done"  # the file still primes (hwkit sample --style uses it)
    (tmp_path / "styles" / "mine.json").write_bytes((tmp_path / "styles" / "me-r00-001u-01.json").read_bytes())
    assert "style:mine" in [h["id"] for h in client.get("/api/hands").json()]  # a style file of its own


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"corpus": "../evil", "text": "x", "strokes": [[[0, 0, 0], [1, 1, 1]]]}, "corpus name"),
        ({"corpus": "me", "text": "", "strokes": [[[0, 0, 0], [1, 1, 1]]]}, "needs its text"),
        ({"corpus": "me", "text": "x", "strokes": []}, "no strokes"),
        ({"corpus": "me", "text": "x", "strokes": [[[0, 0]]]}, "[x, y, t]"),
        ({"corpus": "me", "text": "x", "strokes": [[[0, 0, 0]] * 4001]}, "at most 4,000"),
        ({"corpus": "me", "text": "x", "strokes": [[[1e9, 0, 0], [0, 0, 1]]]}, "off any page"),
        ({"corpus": "me", "text": "\u4e2d", "strokes": [[[0, 0, 0], [1, 1, 1]]]}, "Latin-1"),
    ],
)
def test_bad_recordings_are_refused_and_nothing_is_written(client, tmp_path, body, fragment):
    response = client.post("/api/record", json=body)
    assert response.status_code == 400 and fragment in response.json()["error"]
    assert not list((tmp_path / "data").rglob("*.xml")) if (tmp_path / "data").exists() else True


def test_pages_and_lists(client):
    assert "hwkit studio" in client.get("/").text and 'data-page="write"' in client.get("/").text
    assert 'data-page="record"' in client.get("/record").text
    assert client.get("/static/studio.js").status_code == 200
    assert client.get("/static/../service.py").status_code == 404
    assert [m["id"] for m in client.get("/api/models").json()] == ["bundled"]
    assert len(client.get("/api/prompt").json()["text"]) > 10


def test_a_cancelled_job_stops_and_frees_its_slot(studio):
    job = studio.make_job({"text": "a line that would take a while to write", "seed": 1})
    job.cancel.set()
    seen = []
    studio.run(job, seen.append)
    assert seen[-1] == {"event": "error", "message": "cancelled"}
    assert studio._jobs == 0


def test_limits_are_those_documented():
    assert service.MAX_TEXT == 600 and service.MAX_LINES == 8 and service.MAX_PAGE_TEXT == 4000


def test_a_page_streams_progress_and_each_page_downloads_in_every_format(client):
    text = "one two three four five six seven eight nine ten"
    got = events(client.post("/api/page", json={"text": text, "paper": "a6", "margin": 25, "size": 8, "seed": 2,
                                                "tries": 1}))  # fmt: skip
    kinds = [e["event"] for e in got]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds, kinds
    assert got[0]["paper"] == [105.0, 148.0]
    progress = [e for e in got if e["event"] == "progress"]
    assert all(e["done"] <= e["total"] for e in progress) and progress[-1]["done"] == got[-1]["written"]
    done = got[-1]
    assert done["pages"] >= 2 and done["lines"] >= 4  # 8 mm writing on 55 mm lines: a few words a line
    result = done["result"]
    for k in range(2):
        for fmt, start in (("svg", b"<svg"), ("png", b"\x89PNG"), ("plotter", b"<svg"), ("gcode", b"G21"),
                           ("hpgl", b"IN;")):  # fmt: skip
            response = client.get(f"/api/result/{result}/{fmt}?page={k}&colour=%23336699")
            assert response.status_code == 200 and response.content.startswith(start), (fmt, k)
            assert f"page-{k + 1}." in response.headers["content-disposition"]
    assert client.get(f"/api/result/{result}/svg?page=0").content != client.get(f"/api/result/{result}/svg?page=1").content
    pdf = client.get(f"/api/result/{result}/pdf")
    assert pdf.content.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf.content)) == done["pages"]
    assert "#336699" in client.get(f"/api/result/{result}/svg?colour=%23336699").text
    assert client.get(f"/api/result/{result}/svg?page={done['pages']}").status_code == 404
    assert client.get(f"/api/result/{result}/npz").status_code == 404  # a line format
    lines = events(client.post("/api/write", json={"text": "abc", "seed": 1, "tries": 1}))[-1]["result"]
    assert client.get(f"/api/result/{lines}/svg?page=0").status_code == 400


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [
        ({"text": "hi"}, "paper is one of a6, a5, a4, letter"),
        ({"text": "hi", "paper": "a7"}, "paper is one of"),
        ({"text": "hi", "paper": "a6", "margin": -1}, "margin"),
        ({"text": "hi", "paper": "a6", "margin": "10mm"}, "margin"),
        ({"text": "hi", "paper": "a6", "size": True}, "size"),
        ({"text": "hi", "paper": "a6", "size": 0.5}, "size is an x-height from 1.5 to 10 mm"),
        ({"text": "hi", "paper": "a6", "size": 9, "margin": 40}, "make the size at most 8.3 mm or smaller margins"),
        ({"text": "x" * 4001, "paper": "a4"}, "at most 4,000"),
        ({"text": "hi €", "paper": "a4"}, "'€'"),
        ({"text": "hi", "paper": "a4", "colour": "stroke"}, "colours lines, not pages"),
    ],
)
def test_bad_page_requests_are_refused_with_a_reason(client, request_body, fragment):
    response = client.post("/api/page", json=request_body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_a_page_takes_more_text_than_lines_do(studio):
    text = "\n".join(f"line {k} of a letter" for k in range(20))
    job = studio.make_job({"text": text, "paper": "a5", "margin": 15, "size": 3.5}, pages=True)
    assert job.texts == [text] and job.setting.paper == (148.0, 210.0) and job.setting.margins == (15.0,) * 4
    with pytest.raises(service.RequestError, match="at most 8"):
        studio.make_job({"text": text})


@pytest.mark.parametrize(
    ("strokes_given", "fragment"),
    [
        ([[[0, 100, 0], [5000, 100, 10]]], "too flat"),  # one straight dash: no letters, no size
        ([[[0, 100 + 0.1 * (k % 2), 10 * k], [10_000, 100 + 0.1 * (k % 2), 10 * k + 5]] for k in range(200)],
         "too flat"),  # two rows 0.1 px apart: an x-height of nothing, a scale factor of millions
        ([[[x, 100 + 12 * np.sin(x / 3), x] for x in range(0, 20_000, 5)]], "more than 4,000 points"),
    ],
)
def test_a_recording_that_would_explode_when_scaled_is_refused(client, strokes_given, fragment):
    saved = client.post("/api/record", json={"corpus": "me", "text": "x", "strokes": strokes_given})
    assert saved.status_code == 200
    hand = saved.json()["hand"]
    response = client.post("/api/write", json={"text": "hi", "hand": hand})
    assert response.status_code == 404 and fragment in response.json()["error"]


def test_tries_keep_the_draw_hwkit_sample_keeps_after_streaming_the_first(client, studio):
    from hwkit.checkpoint import BUNDLED, Checkpoint
    from hwkit.generate import generate
    from hwkit.legibility import DEFAULT_TRIES
    from hwkit.sample import sample_text

    assert events(client.post("/api/write", json={"text": "ab", "seed": 2}))[0]["tries"] == DEFAULT_TRIES
    got = events(client.post("/api/write", json={"text": "the Quick fox", "hand": "auto", "seed": 5, "tries": 3}))
    assert got[0]["tries"] == 3
    final = np.array(next(e for e in got if e["event"] == "line")["offsets"])
    kept = generate(BUNDLED, ["the Quick fox"], seed=5, bias=1.0, tries=3, device="cpu").result.lines[0].offsets
    np.testing.assert_allclose(final, kept, atol=0.011)  # the same draw `hwkit sample --tries 3` keeps
    streamed = np.concatenate([e["offsets"] for e in got if e["event"] == "points"])
    ckpt = Checkpoint.load(BUNDLED)
    prime = studio.prime("bundled", "auto", 5)
    draws = sample_text(ckpt.build_model(), ckpt.alphabet, ["the Quick fox"] * 3, primes=[prime] * 3, seed=5,
                        bias=1.0, stats=ckpt.stats).lines  # what best_of draws before it chooses
    first = draws[0].offsets
    assert len(streamed) == len(first)  # no further than draw 1's stop, though the batch ran on for the others
    np.testing.assert_allclose(streamed, first, atol=0.011)  # the page watched draw 1, as it was kept


def test_tries_need_a_recognizer_for_the_models_store(client, tmp_path, make_store):
    from hwkit.train import start

    # not a demo store (a demo store's models are chosen for by the bundled reader)
    store = make_store("mine", texts=["the fox"] * 24, source="iamondb")
    start(store, "synthesis", "tiny", run_dir=tmp_path / "models" / "mine", max_steps=1)
    assert events(client.post("/api/write", json={"text": "fox", "model": "mine", "seed": 1}))[0]["tries"] == 1
    refused = client.post("/api/write", json={"text": "fox", "model": "mine", "tries": 2})
    assert refused.status_code == 400 and "this model has no recognizer" in refused.json()["error"]
