"""The page in a real browser: a `vidsearch serve` process over a real archive, driven by Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# the page seeks the player to the hit and pauses it there: what is left is the float arithmetic of hit time minus
# clip start, far below a frame (40 ms at 25 fps), so a player one frame off fails
SEEK_TOLERANCE_S = 1e-3

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(ingested, options, tmp_path_factory):
    """`vidsearch serve` on a free port over the session's archive, until the module's tests are done."""
    archive, _, _ = ingested
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        sys.executable, "-m", "vidsearch", "--index", str(archive.folder), "--clip-model", options["clip_model"],
        "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"],
        "--device", "cpu", "serve", "--port", str(port),
    ]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vidsearch serve did not start:\n{log.read_text()}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def keep_screenshot(page, folder: Path, name: str) -> Path:
    """Saved under the test's folder and, where VIDSEARCH_ARTIFACTS names a folder, copied there."""
    path = folder / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    if os.environ.get("VIDSEARCH_ARTIFACTS"):
        target = Path(os.environ["VIDSEARCH_ARTIFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        print(f"screenshot: {shutil.copy(path, target / name)}")
    return path


def search(page, query: str, kind: str, video: str) -> None:
    """Type a query with its filters and wait until every thumbnail of the results has loaded."""
    page.select_option("#kind", kind)
    page.fill("#video-filter", video)
    page.fill("#q", query)
    page.press("#q", "Enter")  # the page empties the grid as it asks
    page.wait_for_function(
        "query => document.querySelector('#status').textContent.includes(query)", arg=query, timeout=60_000
    )
    page.wait_for_function(
        "() => { const images = [...document.querySelectorAll('.card img')];"
        " return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0); }",
        timeout=60_000,
    )


def first_hit_t(server: str, query: str, kind: str, video: str) -> float:
    """The first hit's time as the JSON API gives it for the search the page made: what the player must show."""
    asked = urllib.parse.urlencode({"q": query, "kind": kind, "video": video, "k": 1})
    with urllib.request.urlopen(f"{server}api/search?{asked}", timeout=120) as response:
        return json.loads(response.read())["hits"][0]["t"]


def open_first(page) -> dict:
    """Click the first result; the player's video's start, and where the video stands."""
    page.click(".card")
    page.wait_for_function(
        "() => { const v = document.querySelector('#video');"
        " return v.readyState >= 2 && v.dataset.start !== undefined && !v.seeking && v.currentTime > 0; }",
        timeout=60_000,
    )
    return page.evaluate(
        "() => { const v = document.querySelector('#video');"
        " return {current: v.currentTime, start: Number(v.dataset.start),"
        " error: v.error && v.error.message}; }"
    )


def test_search_click_and_play_at_the_hit(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(server)

            # an MP4 the browser plays as it is, seeked to the person's moment with the box over it
            search(page, "a person at a round table", "person", "one-by-one")
            keep_screenshot(page, tmp_path, "results.png")
            player = open_first(page)
            assert player["error"] is None
            assert player["start"] == 0.0
            hit_t = first_hit_t(server, "a person at a round table", "person", "one-by-one")
            assert abs(player["current"] - hit_t) < SEEK_TOLERANCE_S
            page.wait_for_selector("#box", state="visible")
            page.click("#export")
            page.wait_for_selector("#export-result a", timeout=60_000)  # the clip's download link
            keep_screenshot(page, tmp_path, "player.png")

            # Theora: a transcoded clip, whose time plus its start is the hit's time
            page.keyboard.press("Escape")
            search(page, "a band playing", "frame", ".ogv")
            player = open_first(page)
            assert player["error"] is None
            hit_t = first_hit_t(server, "a band playing", "frame", ".ogv")
            # a transcoded clip starts PLAYER_PAD_S (10 s) before the hit, or at 0
            assert player["start"] > 0 or hit_t < 10
            assert abs(player["current"] + player["start"] - hit_t) < SEEK_TOLERANCE_S
            keep_screenshot(page, tmp_path, "player-transcoded.png")
        finally:
            browser.close()


def cards(page) -> list[str]:
    """Each result card's text, in order."""
    return page.eval_on_selector_all(".card", "cards => cards.map(card => card.innerText)")


def test_a_camera_filtered_search_is_kept_in_the_address_and_opens_again(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(server)
            page.fill("#camera-filter", "unit")  # the session archive's cameras: its folders scenes/ and unit/
            search(page, "a band playing", "frame", "")
            shown = cards(page)
            walls = page.eval_on_selector_all(".card .wall", "walls => walls.map(wall => wall.textContent)")
            asked = urllib.parse.urlencode({"q": "a band playing", "kind": "frame", "camera": "unit", "k": 1000})
            with urllib.request.urlopen(f"{server}api/search?{asked}", timeout=120) as response:
                answer = json.loads(response.read())["hits"]
            assert answer and {hit["camera"] for hit in answer} == {"unit"}
            assert shown and all(wall.startswith("unit") for wall in walls)
            address = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
            assert address["q"] == ["a band playing"] and address["camera"] == ["unit"]

            again = browser.new_page(viewport={"width": 1400, "height": 860})
            again.goto(page.url)  # a bookmark: the page runs the search it names
            again.wait_for_function(
                "() => { const images = [...document.querySelectorAll('.card img')];"
                " return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0); }",
                timeout=60_000,
            )
            assert cards(again) == shown
            assert again.input_value("#camera-filter") == "unit"
        finally:
            browser.close()
