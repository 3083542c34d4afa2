"""The report page in a real headless Chromium: it loads cleanly, draws every plot, sorts,
shows provenance, and can be screenshotted.

Needs Debian's ``chromium`` and ``chromium-driver``; CI installs them (``.ci/run``), so there
a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os

import pytest
from test_leaderboard_report import sample_model

from pilot.eval.leaderboards.browser import capture, chromium, missing_browser
from pilot.eval.leaderboards.report import write_report

MISSING = missing_browser()
if MISSING:
    reason = f"no headless browser: {MISSING}; .ci/run must install chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return sample_model()


@pytest.fixture(scope="module")
def page(tmp_path_factory, model):
    """One browser for the module (start-up is most of the cost), on the sample page."""
    out = tmp_path_factory.mktemp("report")
    html_path = write_report(model, out)["report.html"]
    with chromium() as driver:
        driver.get(html_path.resolve().as_uri())
        yield driver


def _column(driver, table_id: str, col: int) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, f'[data-table-id="{table_id}"] tr.main')
    return [r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-v") for r in rows]


def _header(driver, table_id: str, col: int):
    return driver.find_elements(By.CSS_SELECTOR, f'[data-table-id="{table_id}"] thead th')[col]


def test_page_loads_without_console_errors(page, model):
    assert page.title == model["title"]
    assert page.find_element(By.TAG_NAME, "h1").text == model["title"]
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_every_plot_is_drawn(page, model):
    plots = [p for s in model["sections"] for p in s["plots"]]
    containers = page.find_elements(By.CSS_SELECTOR, "[data-plot-id]")
    assert [c.get_attribute("data-plot-id") for c in containers] == [p["id"] for p in plots]
    for plot, container in zip(plots, containers, strict=True):
        page.execute_script("arguments[0].scrollIntoView()", container)
        drawn = page.execute_script(
            """
            const svg = arguments[0].querySelector("svg");
            if (!svg) return null;
            const box = svg.getBoundingClientRect();
            const shapes = Array.from(svg.querySelectorAll("path, rect, use"));
            const visible = shapes.filter(el => {
              const b = el.getBBox(); return b.width > 0 || b.height > 0;
            });
            return {w: box.width, h: box.height, shapes: visible.length,
                    text: svg.textContent};
            """,
            container,
        )
        assert drawn is not None, plot["id"]
        assert drawn["w"] > 200 and drawn["h"] > 100, (plot["id"], drawn)
        bars = sum(len(s["y"]) for s in plot["series"]) if "bars" in plot["kind"] else 0
        assert drawn["shapes"] >= max(10, bars), (plot["id"], drawn["shapes"])
        for s in plot["series"]:  # the legend names every series
            assert s["name"] in drawn["text"], (plot["id"], s["name"])


@pytest.mark.parametrize(
    "col, kind", [(3, "ci"), (1, "text"), (2, "int"), (4, "number")], ids=lambda v: str(v)
)
def test_clicking_a_header_sorts(page, col, kind):
    def key(v):
        return v if kind == "text" else float(v)

    before = _column(page, "atari-games", col)
    present = [v for v in before if v != ""]
    header = _header(page, "atari-games", col)
    header.find_element(By.TAG_NAME, "button").click()
    ascending = _column(page, "atari-games", col)
    assert ascending == sorted(present, key=key) + [""] * (len(before) - len(present))
    assert header.get_attribute("aria-sort") == "ascending"
    assert header.find_element(By.CLASS_NAME, "arrow").text == "▲"
    header.find_element(By.TAG_NAME, "button").click()
    descending = _column(page, "atari-games", col)
    assert descending == sorted(present, key=key, reverse=True) + [""] * (
        len(before) - len(present)
    )
    assert header.find_element(By.CLASS_NAME, "arrow").text == "▼"
    others = [_header(page, "atari-games", c) for c in range(5) if c != col]
    assert all(h.get_attribute("aria-sort") is None for h in others)
    assert all(h.find_element(By.CLASS_NAME, "arrow").text == "" for h in others)


def test_sorting_keeps_provenance_with_its_row(page):
    table = '[data-table-id="driving-entries"]'
    _header(page, "driving-entries", 2).find_element(By.TAG_NAME, "button").click()
    assert _column(page, "driving-entries", 0) == ["ppo-camera", "modular-stack"]
    for body in page.find_elements(By.CSS_SELECTOR, f"{table} tbody"):
        main, prov = body.find_elements(By.TAG_NAME, "tr")
        entry = main.find_element(By.TAG_NAME, "td").get_attribute("data-v")
        algo = "stack" if entry == "modular-stack" else "ppo"
        assert f"algorithm: {algo}" in main.get_attribute("title")
        assert "prov" in prov.get_attribute("class")


def test_clicking_a_row_shows_its_provenance(page):
    rows = page.find_elements(By.CSS_SELECTOR, '[data-table-id="driving-entries"] tr.main')
    row = next(r for r in rows if r.text.startswith("modular-stack"))
    details = row.find_element(By.XPATH, "following-sibling::tr[1]")
    assert not details.is_displayed()
    assert "checkpoint SHA-256: a3f1c2d4e5b6" in row.get_attribute("title")
    row.click()
    assert details.is_displayed()
    text = details.text
    for expected in ("a3f1c2d4e5b6", "0, 1, 2", "89da7120f0", "carla-2.0", "torch 2.13.0"):
        assert expected in text
    assert "7.2 min" in text
    assert row.get_attribute("aria-expanded") == "true"
    row.click()
    assert not details.is_displayed()


def test_screenshot(page, tmp_path):
    png = capture(page, tmp_path / "leaderboard.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280 and height > 1500  # the whole page, not only the first screen
    assert [e for e in page.get_log("browser") if e["level"] == "SEVERE"] == []
