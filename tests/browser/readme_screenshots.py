"""The README's demo screenshots, taken from the real app in the real browser (not a test; run by hand).

    python tests/browser/readme_screenshots.py --checkpoint runs/bench/maze8/pipeline --out docs/img

Serves the demo on a free port with the given checkpoint(s), generates the maze of ``--seed``, solves it with
``--samples`` candidates and ``--steps`` Euler steps, and saves ``demo.png`` (the page) and ``demo-thinking.png``
(the diffusion panel with the scrubber at ``--thinking-step``) into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", required=True, help="checkpoint folder (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--task", default="maze-v1")
    p.add_argument("--level", default="8")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--thinking-step", type=int, default=2, help="scrubber position of demo-thinking.png")
    args = p.parse_args(argv)

    from playwright.sync_api import expect, sync_playwright

    from diffthinker.demo import parse_args, serve

    expect.set_options(timeout=120_000)
    from tests.browser.test_demo_browser import CHROMIUM, CHROMIUM_ARGS, _free_port

    demo_argv = ["--port", str(_free_port()), "--no-checkpoints-dir"]
    for c in args.checkpoint:
        demo_argv += ["--checkpoint", c]
    app = serve(parse_args(demo_argv), block=False)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            browser = pw.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                            args=CHROMIUM_ARGS,
                                                            viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(app.local_url)
            expect(page.locator("#puzzle-image img")).to_be_visible()
            if args.task != "maze-v1":
                page.locator("#task input").fill(args.task)
                page.keyboard.press("Enter")
            page.locator("#seed input").fill(str(args.seed))
            page.locator("#generate").click()
            expect(page.locator("#puzzle-info")).to_contain_text(f"seed {args.seed}")
            for slider, value in (("#samples", args.samples), ("#steps", args.steps)):
                box = page.locator(f"{slider} input[type=number]")
                box.fill(str(value))
                box.press("Enter")
            page.locator("#sample-seed input").fill(str(args.sample_seed))
            page.locator("#solve").click()
            expect(page.locator("#candidates .thumbnail-item")).to_have_count(args.samples)
            expect(page.locator("#frame-image img")).to_be_visible()
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out / "demo.png"), full_page=True)
            box = page.locator("#frame-slider input[type=number]")
            box.fill(str(args.thinking_step))
            box.press("Enter")
            page.wait_for_timeout(1500)
            panel = page.locator("#frame-image").locator("xpath=ancestor::div[contains(@class,'row')][1]")
            panel.screenshot(path=str(args.out / "demo-thinking.png"))
            browser.close()
    finally:
        app.close()
    print(f"wrote {args.out / 'demo.png'} and {args.out / 'demo-thinking.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
