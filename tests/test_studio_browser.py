"""The studio in a real browser: headless Chromium (Debian's, never a downloaded one) driven by Playwright.

Set HWKIT_SCREENSHOTS=DIR to keep the pages' screenshots (the README's comes from here).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)", allow_module_level=True)

import uvicorn  # noqa: E402

from hwkit.studio.app import create_app  # noqa: E402
from hwkit.studio.service import Studio  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    studio = Studio(root)
    config = uvicorn.Config(create_app(studio), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", root
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context.new_page()
    context.close()


def shot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HWKIT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"studio-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def write_and_wait(page, text: str) -> list[dict]:
    page.fill("#text", text)
    page.fill("#seed", "1")
    page.click("#write")
    page.wait_for_function("window.studioLog.some(e => e.event === 'done' || e.event === 'error')", timeout=60_000)
    return page.evaluate("window.studioLog")


def test_write_streams_strokes_into_the_page(server, page, tmp_path):
    url, _ = server
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#hand').options.length > 0")
    page.check("#show-attention")
    log = write_and_wait(page, "hello from the browser\nand a second line")
    kinds = [e["event"] for e in log]
    assert kinds[-1] == "done", log[-3:]
    first_points = next(e["t"] for e in log if e["event"] == "points" and e["line"] == 0)
    line_done = next(e["t"] for e in log if e["event"] == "line" and e["line"] == 0)
    assert first_points < line_done  # the pen's points showed before the line was finished
    assert sum(1 for e in log if e["event"] == "points" and e["line"] == 0) > 3
    assert page.locator("#output .hwline").count() == 2
    assert page.locator("#output .hwline").first.locator("path").count() > 3  # strokes, not one blob
    assert page.locator("#downloads a").count() == 5
    assert "the best of 4 draws of each line" in page.inner_text("#status")  # tries "auto": the model's default
    attention = page.locator("#output .hwline img.attention")
    assert attention.count() == 2  # one under each line
    page.wait_for_function("[...document.querySelectorAll('img.attention')].every(i => i.complete && i.naturalHeight > 0)")
    svg = page.request.get(url + page.locator("#downloads a").first.get_attribute("href"))
    assert svg.ok and svg.body().startswith(b"<svg")
    shot(page, "write", tmp_path)


def test_unwritable_characters_are_reported_in_the_page(server, page):
    url, _ = server
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#hand').options.length > 0")
    page.fill("#text", "price: 5 €")
    page.click("#write")
    page.wait_for_function("document.querySelector('#status').className === 'error'")
    assert "'€'" in page.inner_text("#status") and "replace characters the model lacks" in page.inner_text("#status")


def test_a_page_is_laid_out_on_paper_with_its_downloads(server, page, tmp_path):
    url, _ = server
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#hand').options.length > 0")
    assert page.locator("#margin").is_hidden()  # page settings show only for a page
    page.select_option("#layout", "a6")
    assert page.locator("#margin").is_visible() and page.get_attribute("#text", "maxlength") == "4000"
    assert page.locator("#width").is_hidden() and page.locator("#show-attention").is_hidden()  # lines only
    page.fill("#margin", "10")
    page.fill("#size", "3")
    page.select_option("#tries", "1")
    log = write_and_wait(page, "Dear Jo,\n\nthe weather has been kind all week.\n\nLove, Sam")
    kinds = [e["event"] for e in log]
    assert kinds[-1] == "done" and "progress" in kinds, log[-3:]
    sheets = page.locator("#output figure.sheet img")
    assert sheets.count() == 1
    page.wait_for_function("[...document.querySelectorAll('.sheet img')].every(i => i.complete && i.naturalWidth > 0)")
    ratio = page.evaluate("document.querySelector('.sheet img').naturalHeight / document.querySelector('.sheet img').naturalWidth")
    assert abs(ratio - 148 / 105) < 0.01  # an A6 sheet, not a strip of lines
    assert "1 page(s)" in page.inner_text("#status") and page.get_attribute("#status", "class") != "error"
    assert "page 1 of 1" in page.inner_text("figure.sheet figcaption")
    links = page.locator("#output a[download]")
    assert links.count() == 1 + 5  # the PDF, and each page's SVG, PNG, plotter SVG, G-code and HPGL
    pdf = page.request.get(url + page.locator(".all-pages a").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    gcode = page.request.get(url + page.locator("figcaption a", has_text="G-code").get_attribute("href"))
    assert gcode.ok and gcode.body().startswith(b"G21")
    progress = [e for e in log if e["event"] == "progress"]
    assert len(progress) >= 2  # each round says it starts, not only when it is done
    shot(page, "page", tmp_path)
    page.fill("#colour", "reddish")  # refused before any writing, shown as an error
    page.click("#write")
    page.wait_for_function("document.querySelector('#status').className === 'error'")
    assert "not a colour" in page.inner_text("#status")
    assert page.evaluate("getComputedStyle(document.querySelector('#status')).color") == "rgb(163, 32, 32)"


def draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def test_record_two_strokes_prepare_them_and_write_in_that_hand(server, page, tmp_path):
    from hwkit.prepare import prepare
    from hwkit.store import Store

    url, root = server
    page.goto(url + "/record")
    page.wait_for_function("document.querySelector('#prompt').value.length > 0")
    page.fill("#corpus", "browser")
    page.fill("#prompt", "lo")
    draw(page, [[(60 + 4 * i, 160 - 40 * ((i % 10) / 10)) for i in range(30)],  # a zigzag "l"-ish stroke
                [(200 + 20 * __import__("math").cos(k / 5), 150 + 20 * __import__("math").sin(k / 5))
                 for k in range(32)]])  # an "o"  # fmt: skip
    shot(page, "record", tmp_path)
    page.click("#save")
    page.wait_for_selector("#saved li")
    assert "r00-000u-01: lo" in page.inner_text("#saved")
    stroke_file = root / "data" / "browser" / "lineStrokes" / "r00" / "r00-000" / "r00-000u-01.xml"
    assert stroke_file.is_file()
    prepare(root / "data" / "browser", tmp_path / "browser.h5")
    store = Store(tmp_path / "browser.h5")
    assert store.texts == ["lo"]
    strokes = store.line(0).offsets[:, 2].sum()
    assert strokes == 2  # two pen lifts: the two strokes drawn

    page.click("#saved li button")  # "Write in this hand": a style file, then the Write page with the line chosen
    page.wait_for_url("**/?hand=rec*")
    page.wait_for_function("document.querySelector('#hand').value === 'rec:browser/r00-000u-01'")
    assert (root / "styles" / "browser-r00-000u-01.json").is_file()
    log = write_and_wait(page, "lo and behold")
    assert log[-1]["event"] == "done"
    assert page.locator("#output .hwline path").count() > 0
    shot(page, "write-in-my-hand", tmp_path)
