"""The demo in a real browser: Debian's chromium driven by playwright (``executable_path``, no browser download).

The app is launched the way ``diffthinker demo`` launches it (``serve``: same arguments, same ``launch`` call) on a
free port with a tiny random maze pipeline, a tiny random MLLM policy and a broken checkpoint; the page then generates
a maze, solves it with N=4 and must show four verified candidates, a verdict and the MLLM's answer; uploading a non-image must show the error message, and
uploading an official test image with its metadata file must load that puzzle. A screenshot is saved
(``$DIFFTHINKER_SCREENSHOT_DIR`` or the test's tmp folder).

Without chromium or playwright the test is skipped, unless ``DIFFTHINKER_REQUIRE_BROWSER=1`` (``make test`` sets
it, after installing both), where it fails instead: CI must not pass by skipping.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from .conftest import FIXTURES

CHROMIUM = Path(os.environ.get("DIFFTHINKER_CHROMIUM", "/usr/bin/chromium"))
# The closed network otherwise fills the log with refused update / sync / QUIC connections.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000  # generous: the page loads in a few seconds, but CI machines can be busy

# gradio's queue statistics use pandas options that pandas 3 deprecates: not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


def _sync_playwright():
    problems = []
    if not CHROMIUM.is_file():
        problems.append(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problems.append("the playwright package is not installed (pip install -e '.[dev]')")
        sync_playwright = None
    if problems:
        message = "browser test needs " + " and ".join(problems)
        if os.environ.get("DIFFTHINKER_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def demo_url(tiny_pipeline, tiny_mllm, broken_checkpoint, tmp_path):
    from diffthinker.demo import parse_args, serve

    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    args = parse_args(["--port", str(_free_port()), "--checkpoints-dir", str(empty), "--checkpoint",
                       str(tiny_pipeline), "--checkpoint", str(tiny_mllm), "--checkpoint", str(broken_checkpoint)])
    app = serve(args, block=False)
    try:
        assert app.local_url.startswith("http://127.0.0.1:"), app.local_url  # bound to this machine only
        yield app.local_url
    finally:
        app.close()


def test_generate_solve_and_upload_in_the_browser(demo_url, tmp_path):
    sync_playwright = _sync_playwright()
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # its own default (5 s) is too short on a busy 2-core machine

    shots = Path(os.environ.get("DIFFTHINKER_SCREENSHOT_DIR") or tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an image")
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1100})
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(demo_url)
            expect(page.locator("#puzzle-image img")).to_be_visible()
            expect(page.locator("#models")).to_contain_text("Diffusion model: tiny-maze")
            expect(page.locator("#models")).to_contain_text("could not load")  # the broken checkpoint, no crash

            # a fresh maze of seed 5
            page.locator("#seed input").fill("5")
            page.locator("#generate").click()
            expect(page.locator("#puzzle-info")).to_contain_text("generated: maze-v1, level 8, seed 5")

            # solve it with N = 4 samples of 2 Euler steps
            for slider, value in (("#samples", "4"), ("#steps", "2")):
                box = page.locator(f"{slider} input[type=number]")
                box.fill(value)
                box.press("Enter")
            page.locator("#solve").click()
            expect(page.locator("#candidates .thumbnail-item")).to_have_count(4)
            captions = page.locator("#candidates .caption-label")
            expect(captions).to_have_count(4)
            for k in range(4):
                expect(captions.nth(k)).to_have_text(re.compile(rf"^#{k} [✓≈✗] (correct|valid|invalid)"))
            expect(page.locator("#verdict")).to_contain_text(re.compile(r"(correct|invalid) · candidate #\d of 4"))
            expect(page.locator("#verdict")).to_contain_text(re.compile(r"\d/4 valid"))
            expect(page.locator("#frame-image img")).to_be_visible()
            # the scrubber: back to the first denoising step shows that step's estimates
            last_frame = page.locator("#frame-image img").get_attribute("src")
            box = page.locator("#frame-slider input[type=number]")
            expect(box).to_have_value("1")
            box.fill("0")
            box.press("Enter")
            expect(page.locator("#frame-image img")).not_to_have_attribute("src", last_frame)
            expect(page.locator("#status")).to_contain_text("solved with N=4, 2 steps")
            # the MLLM baseline on the same puzzle, side by side: its text, drawn answer (or why none) and verdict
            expect(page.locator("#mllm-verdict")).to_contain_text(re.compile(r"(correct|invalid) · mllm:tiny-mllm"))
            expect(page.locator("#mllm-image img")).to_be_visible()
            page.screenshot(path=str(shots / "demo-browser-solve.png"), full_page=True)

            # uploads: a non-image is refused with a readable message; an official item with its .txt loads
            page.get_by_role("tab", name="Upload").click()
            page.locator("#upload-image input[type=file]").set_input_files(str(notes))
            expect(page.locator("#status")).to_contain_text("notes.txt is not a readable image")
            expect(page.locator("#status")).not_to_contain_text("Traceback")
            page.locator("#upload-image button[aria-label=Clear]").click()
            page.locator("#upload-image input[type=file]").set_input_files(str(FIXTURES / "Maze/8_test/8_1_001.png"))
            expect(page.locator("#status")).to_contain_text("now add its metadata file")
            page.locator("#upload-metadata input[type=file]").set_input_files(
                str(FIXTURES / "Maze/8_test/8_1_001.txt"))
            expect(page.locator("#puzzle-info")).to_contain_text("uploaded: 8_1_001.png + 8_1_001.txt")
            page.screenshot(path=str(shots / "demo-browser-upload.png"), full_page=True)
        finally:
            browser.close()
