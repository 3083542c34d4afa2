"""Open a report page in headless Chromium: for the browser tests and for screenshots.

Uses Debian's ``chromium`` and ``chromium-driver`` packages (no driver download, no network):
the page is opened from disk with a ``file://`` URL in a fresh, throwaway profile.

    python -m pilot.eval.leaderboards.browser RESULTS/report/report.json docs/leaderboard.png
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pilot.errors import UserError

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"


def missing_browser() -> str | None:
    """Why no browser can be started here, or None when one can."""
    gone = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if gone:
        return f"{' and '.join(gone)} not found ({INSTALL_HINT})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver that keeps the browser's console log, in a temporary
    profile removed afterwards (a shared profile would leak state between runs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    problem = missing_browser()
    if problem:
        raise UserError(f"cannot open a browser: {problem}")
    with tempfile.TemporaryDirectory(prefix="pilot-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def capture(driver: Any, png_path: Path, width: int = 1280, max_height: int = 8000) -> Path:
    """Save the whole page (not only the viewport) as a PNG, up to ``max_height`` pixels."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": min(int(height), max_height),
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(png_path)):
        raise RuntimeError(f"the browser did not write {png_path}")
    return png_path


def screenshot(html_path: Path, png_path: Path, width: int = 1280) -> Path:
    """A full-page screenshot of a report page, as a browser draws it."""
    with chromium(width=width) as driver:
        driver.get(Path(html_path).resolve().as_uri())
        return capture(driver, png_path, width=width)


def main(argv: list[str]) -> int:
    """Render a ``report.json`` to a page and screenshot it (for the README)."""
    from pilot.eval.leaderboards.report import load_model, write_report

    parser = argparse.ArgumentParser(prog="python -m pilot.eval.leaderboards.browser")
    parser.add_argument("model", type=Path, help="a report.json")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
        with tempfile.TemporaryDirectory() as tmp:
            page = write_report(model, Path(tmp))["report.html"]
            screenshot(page, args.png, width=args.width)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
