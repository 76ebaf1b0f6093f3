"""The HTML report of a seed-cpu-shaped run, opened from disk in headless Chromium (Debian's chromium, which `make test`
installs where it can, driven by Playwright, as `dlbench report --screenshot` drives it): no console message, no
network request, every plot drawn with a nonzero size, every case of the run in the tables, the overview grid on
the first screen (1280 × 800), hostile strings shown as text, and a screenshot written by `dlbench report
--screenshot`.

The run is synthetic (tests/synthetic.py: made-up figures, written through the Store as a real run is) so
that this test needs no framework and runs in seconds; the plan is the real seed-cpu suite's, for every backend.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

import synthetic
from dlbench.cli import main
from dlbench.core.cases import Case
from dlbench.report.screenshot import FLAGS, find_chromium, missing
from dlbench.suites import default_backends, plan_cases

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"the report's screenshot: {missing()}")

HOSTILE = "failed verification: <script>document.title='pwned'</script>"

# Runs in the page once loaded: the size of every plot and of the marks drawn in it, every cell that shows a
# case's figure, and what a reader would see.
LOOK = """() => JSON.stringify({
  plots: [...document.querySelectorAll('svg.plot')].map(svg => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('circle, rect, polygon, polyline, path')]
      .map(m => m.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0).length;
    return {width: box.width, height: box.height, marks: marks, empty: svg.textContent.includes('no figures')};
  }),
  cells: [...document.querySelectorAll('td[data-case]')].map(td => [td.dataset.case, td.textContent, td.title]),
  overview: [...document.querySelectorAll('#overview, table.ov, table.ov td, .ovlegend')].map(e => {
    const box = e.getBoundingClientRect();
    return {tag: e.tagName, right: box.right, bottom: box.bottom, text: e.textContent, title: e.title || '',
            mark: e.dataset.mark || '', rel: e.dataset.rel || ''};
  }),
  scripts: document.querySelectorAll('script').length,
  title: document.title,
  text: document.body.innerText,
})"""


def outcome(case: Case) -> dict[str, Any]:
    if case.backend == "jax" and case.precision == "fp16":
        return {"status": "error", "error": HOSTILE}
    if case.backend == "keras-torch" and case.workload == "vgg16" and case.size["batch"] == 8:
        return {"status": "oom", "error": "MemoryError: Unable to allocate 2.00 GiB"}
    if case.backend == "pytensor-jax":
        return {"status": "unsupported", "error": "jax is not installed: pip install 'dlbench[pytensor,jax]'"}
    return {}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.timeout(120)
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    suite, plan = plan_cases("seed-cpu", backends=default_backends())
    run = synthetic.make_run(tmp_path / "s.sqlite", plan, run_id="seed-cpu-synthetic", outcome=outcome,
                             settings={"note": suite.note})  # fmt: skip
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    assert main(["report", "--store", str(tmp_path / "s.sqlite"), "--out", str(html), "--screenshot", str(png)]) == 0

    from playwright.sync_api import sync_playwright

    console: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(FLAGS))
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(html.resolve().as_uri(), wait_until="load")
        seen = json.loads(page.evaluate(LOOK))
        browser.close()

    assert console == []  # no script runs (the page has none), nothing fails to load
    assert requests == [html.resolve().as_uri()]  # the page itself, nothing else

    plots = seen["plots"]
    assert len(plots) >= 4 + 4 + 2 + 2  # LSTM 1 seq × 2 batch × 2 modes; VGG 2 precisions × 2 modes; memory; first step
    for plot in plots:
        assert plot["width"] > 100 and plot["height"] > 100
        assert plot["marks"] > 2 or plot["empty"]

    cells = {key: (text, title) for key, text, title in seen["cells"]}
    assert set(cells) == {c.key for c in run.plan}  # every case of the run has its cell in the tables
    for result in run.results:
        text, title = cells[result.case.key]
        if result.status == "ok":
            assert re.fullmatch(r"[\d,.]+( ±\d+%)?( ~)?", text), text  # a figure, how far its processes disagree
        else:
            assert text.startswith({"oom": "out of memory", "error": "error", "unsupported": "unsupported"}[
                result.status]) and title, (text, title)  # fmt: skip

    # The overview: on the first screen (1280 × 800), every backend × column cell drawn, every unranked cell
    # saying what happened, with why as its tooltip (the hostile error as text).
    parts = seen["overview"]
    assert parts[0]["tag"] == "H2" and parts[-1]["tag"] == "P"  # its heading, then grid(s), then the legend
    assert all(p["right"] <= 1280 and p["bottom"] <= 800 for p in parts), [p for p in parts if p["bottom"] > 800]
    grid = [p for p in parts if p["tag"] == "TD"]
    backends = {c.backend for c in run.plan}
    columns = {(c.workload, c.mode, c.precision) for c in run.plan}
    assert len(grid) == len(backends) * len(columns)
    ranked = [p for p in grid if p["rel"]]
    assert ranked and all(0 < float(p["rel"]) <= 1 for p in ranked) and any(p["rel"] == "1.0000" for p in ranked)
    marks = {p["mark"]: p for p in grid if p["mark"]}
    assert marks["unverified"]["text"] == "unv" and HOSTILE in marks["unverified"]["title"]  # jax fp16
    assert marks["unsupported"]["text"] == "n/s" and "jax is not installed" in marks["unsupported"]["title"]

    assert seen["scripts"] == 0 and seen["title"] != "pwned"
    assert HOSTILE in seen["text"]  # the error shows, as text
    width, height = png_size(png)
    assert width == 1280 and height > 3000
