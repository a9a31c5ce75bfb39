"""The README's picture: a dashboard page as headless Chromium draws it, the top of it, as a small PNG.

    python scripts/screenshot.py .anvil/state/anvil.toml/report.html docs/dashboard.png [--height 1800]

Needs Playwright (the test extras) and a Chromium (Debian's `chromium`, or ANVIL_CHROMIUM)."""

from __future__ import annotations

import argparse
import io
import os
import shutil
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=1800, help="pixels from the top of the page")
    args = ap.parse_args()
    browser_path = os.environ.get("ANVIL_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": args.width, "height": args.height})
        tab.goto(args.page.resolve().as_uri(), wait_until="load")
        png = tab.screenshot(full_page=False)
        browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
