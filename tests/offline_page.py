"""Headless Debian chromium for the offline pages (the simulation report, the plan report): where it is, how it
starts, and a page that records JS errors and refuses every request that would leave the file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian chromium (or SUANWANG_CHROMIUM); a clear failure where it is missing."""
    path = os.environ.get("SUANWANG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "chromium not found: run `make browser` (Debian chromium + fonts-noto-cjk) or set SUANWANG_CHROMIUM"
        )
    return path


def open_offline(browser, path: Path, ready_js: str):
    """(page, JS errors, remote URLs refused) for `path`, once `ready_js` is true in the page."""
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def guard(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.goto(path.as_uri())
    page.wait_for_function(ready_js, timeout=15_000)
    return page, errors, remote
