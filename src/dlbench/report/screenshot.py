"""`dlbench report --screenshot`: the HTML report as headless Chromium renders it, full page, through Playwright
driving the system's Chromium (no browser download: `executable_path`). Playwright is an optional dependency
(`pip install 'dlbench[screenshot]'`), imported only here and only when a screenshot is asked for.

The flags keep Chromium off the network (the report needs none: it is one self-contained file) and fit a container:
no sandbox (root), no GPU, no /dev/shm.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--mute-audio")  # fmt: skip
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium (Debian: apt-get install chromium)"
PLAYWRIGHT_HINT = "pip install 'dlbench[screenshot]'"


class ScreenshotError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """$DLBENCH_CHROMIUM, else the first Chromium on the PATH."""
    env = os.environ.get("DLBENCH_CHROMIUM")
    for name in ((env,) if env else CANDIDATES):
        path = shutil.which(name)
        if path:
            return path
    return None


def missing() -> str | None:
    """Why a screenshot cannot be taken here (what to install), or None."""
    if importlib.util.find_spec("playwright") is None:
        return f"it needs Playwright, which is not installed: {PLAYWRIGHT_HINT}"
    if find_chromium() is None:
        return f"it needs Chromium, and none was found: {INSTALL_HINT}"
    return None


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 900, timeout_s: float = 60.0) -> Path:
    """Load `html` (a file) in headless Chromium and save a full-page PNG of it to `out`."""
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(FLAGS),
                                                 timeout=timeout_s * 1000)  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(html.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
                page.screenshot(path=str(out), full_page=True, timeout=timeout_s * 1000)
            finally:
                browser.close()
    except Error as exc:
        raise ScreenshotError(str(exc).splitlines()[0]) from exc
    return out


__all__ = ["FLAGS", "ScreenshotError", "find_chromium", "missing", "screenshot"]
