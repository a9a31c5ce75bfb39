"""The dashboard as a person sees it: a real headless Chromium (Debian's `chromium` package, which
scripts/test.sh installs where it can) driven by Playwright. A visit records what the page logged, what
it fetched, a screenshot, and every figure of its DOM (`data-metric` -> text)."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def chromium() -> str | None:
    return os.environ.get("ANVIL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="no chromium here: scripts/test.sh installs Debian's package where it can (root, apt)"
)


@dataclass
class Visit:
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, itself included
    figures: dict[str, str] = field(default_factory=dict)
    running: int = 0  # stages shown as RUNNING
    reloads: bool = False  # the page refreshes itself
    colours: int = 0  # distinct colours in the screenshot: a blank page has one


def visit(page: Path, screenshot: Path | None = None) -> Visit:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    seen = Visit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            tab.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: seen.errors.append(str(e)))
            tab.on("request", lambda r: seen.requests.append(r.url))
            tab.goto(page.resolve().as_uri(), wait_until="load")
            pairs = "els => els.map(e => [e.dataset.metric, e.textContent])"
            seen.figures = dict(tab.eval_on_selector_all("[data-metric]", pairs))
            seen.running = tab.locator(".badge.running").count()
            seen.reloads = tab.locator('meta[http-equiv="refresh"]').count() > 0
            png = tab.screenshot(full_page=True)
        finally:
            browser.close()
    if screenshot is not None:
        screenshot.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    seen.colours = len(image.getcolors(maxcolors=1 << 20) or [])
    return seen
