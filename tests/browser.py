"""Open report pages in headless Chromium: console messages, drawn charts and a screenshot.

One :class:`Browser` (a context manager) can load several pages; :func:`inspect_page` opens one
browser for one page. Everything runs offline: the driver is Debian's chromedriver (so selenium
never looks for one on the network) and Chromium starts with its background networking off.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Self

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
PAGE_LOAD_SECONDS = 30
CHARTS_SECONDS = 15

# Every plotly container, whether plotly.js drew it, and how many of its trace shapes have a
# real outline: a chart whose traces all have empty paths drew axes but no data.
_CHARTS_SCRIPT = """
return Array.from(document.querySelectorAll('.plotly-graph-div')).map(function (div) {
  var drawn = Array.from(div.querySelectorAll('g.trace path')).filter(function (path) {
    var outline = path.getAttribute('d') || '';
    return outline.length > 4 && outline !== 'M0,0Z';
  }).length;
  return {id: div.id, plotted: div.classList.contains('js-plotly-plot'),
          svg: div.querySelector('svg.main-svg') !== null, drawn_paths: drawn};
});
"""


@dataclass
class PageReport:
    """What a page did in the browser."""

    url: str
    console: list[dict[str, Any]]  # SEVERE and WARNING messages, as chromedriver reports them
    charts: list[dict[str, Any]]  # one per plotly container: id, plotted, svg, drawn_paths
    screenshot: Path | None

    @property
    def chart_count(self) -> int:
        return len(self.charts)

    @property
    def drawn_chart_count(self) -> int:
        """Charts plotly.js drew with an SVG and at least one trace shape."""
        return sum(1 for chart in self.charts if chart["plotted"] and chart["svg"] and chart["drawn_paths"] > 0)


class Browser:
    """Headless Chromium through selenium; always quits its driver on exit."""

    def __init__(self) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in CHROMIUM_ARGUMENTS:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.timeouts = {"pageLoad": PAGE_LOAD_SECONDS * 1000, "script": CHARTS_SECONDS * 1000}
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.quit()

    def quit(self) -> None:
        self.driver.quit()

    def inspect(self, path: Path, screenshot: Path | None = None) -> PageReport:
        """Load a local file, wait (bounded) for its charts, and report what it did."""
        url = path.resolve().as_uri()
        self.driver.get_log("browser")  # drop what earlier pages logged
        self.driver.get(url)
        self._wait_for_charts()
        charts = self.driver.execute_script(_CHARTS_SCRIPT)
        console = [entry for entry in self.driver.get_log("browser") if entry.get("level") in ("SEVERE", "WARNING")]
        if screenshot is not None:
            self._save_full_page(screenshot)
        return PageReport(url=url, console=console, charts=charts, screenshot=screenshot)

    def _wait_for_charts(self) -> None:
        """Until every plotly container holds an SVG, or the time is up (the report then says which did not)."""
        try:
            WebDriverWait(self.driver, CHARTS_SECONDS).until(
                lambda driver: driver.execute_script(
                    "return document.readyState === 'complete' && Array.from("
                    "document.querySelectorAll('.plotly-graph-div')).every("
                    "function (div) { return div.querySelector('svg.main-svg') !== null; });"
                )
            )
        except TimeoutException:
            pass

    def _save_full_page(self, screenshot: Path) -> None:
        """The whole page, not just the window: Chromium's DevTools capture beyond the viewport."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        image = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: parallel test workers may save the same page at once.
        partial = screenshot.with_name(f".{screenshot.name}.{os.getpid()}")
        partial.write_bytes(base64.b64decode(image["data"]))
        os.replace(partial, screenshot)


def inspect_page(path: Path, screenshot: Path | None = None) -> PageReport:
    """Open one page in a fresh headless Chromium and report what it did."""
    with Browser() as browser:
        return browser.inspect(path, screenshot)
