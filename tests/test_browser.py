"""The leaderboard page in a real headless Chromium (the system's chromium + chromedriver, driven by Selenium):
it loads with no console errors and fetches nothing, sorting reorders rows, the filters hide rows, a failed cell
shows its reason, details open, and screenshots are saved.

Install the browser with `apt-get install -y chromium chromium-driver` (`.ci/run` does); nothing here downloads a
browser or a driver. `HARNESS_UPDATE_SCREENSHOT=1` also writes the demo board's screenshot to
docs/leaderboard.png (the README's picture).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import board_examples as ex
import pytest

from harness import cli
from harness.publish import page as board_page

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900"]


@pytest.fixture(scope="module")
def driver():
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not found: install the system packages (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")  # a fresh profile: no state from another run
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The example board's page as written (no bootstrap keys) and with the keys a bootstrap run adds."""
    out = tmp_path_factory.mktemp("pages")
    plain = ex.board(out / "plain")
    board_page.write_page(ex.with_bootstrap(plain), ex.records(), out / "bootstrap")
    return {"plain": out / "plain" / ex.SUITE / "index.html", "bootstrap": out / "bootstrap" / "index.html"}


def open_page(driver, path: Path):
    driver.get(path.resolve().as_uri())
    driver.get_log("browser")  # drop anything logged by an earlier page
    driver.refresh()
    return driver


def errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def order(driver):
    """The submissions of the visible rows, top to bottom."""
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-submission") for e in driver.find_elements(By.CSS_SELECTOR, "tbody.entry")
            if e.is_displayed()]


def header(driver, key):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'#board > thead th[data-key="{key}"]')


def save_full_page(driver, path: Path, width: int = 1280) -> Path:
    """A screenshot of the whole page: the viewport is grown to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


@pytest.mark.parametrize("which", ["plain", "bootstrap"])
def test_page_loads_without_console_errors_or_fetches(driver, pages, which):
    open_page(driver, pages[which])
    assert driver.title == f"Leaderboard: {ex.SUITE}"
    assert order(driver) == ["alpha", "gamma", "beta", "baseline-copy"]
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in fetched if not name.startswith("data:")] == []
    images = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
    assert images and all(images), "a plot did not decode"
    assert len(images) == (2 if which == "bootstrap" else 1)
    assert errors(driver) == []


def test_sorting_by_a_column_reorders_rows(driver, pages):
    open_page(driver, pages["bootstrap"])
    header(driver, "qa").click()  # higher is better: best first, n/a last
    assert order(driver) == ["gamma", "alpha", "beta", "baseline-copy"]
    assert header(driver, "qa").get_attribute("aria-sort") == "descending"
    header(driver, "qa").click()
    assert order(driver) == ["beta", "alpha", "gamma", "baseline-copy"]
    header(driver, "lm").click()  # lower is better: ascending first; failed, not submitted and n/a stay last
    assert order(driver)[0] == "alpha" and header(driver, "lm").get_attribute("aria-sort") == "ascending"
    header(driver, "submission").click()
    assert order(driver) == ["alpha", "baseline-copy", "beta", "gamma"]
    assert header(driver, "qa").get_attribute("aria-sort") is None
    header(driver, "rank").click()
    assert order(driver) == ["alpha", "gamma", "beta", "baseline-copy"]
    header(driver, "rank").click()  # a second click reverses
    assert order(driver) == ["baseline-copy", "beta", "gamma", "alpha"]
    assert errors(driver) == []


def test_filter_hides_rows(driver, pages):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(driver, pages["bootstrap"])
    box = driver.find_element(By.ID, "filter")
    box.send_keys("team-a")
    assert order(driver) == ["alpha", "gamma"]
    assert driver.find_element(By.ID, "shown").text == "2 of 4 entries"
    box.clear()
    box.send_keys("BETA")  # case does not matter
    assert order(driver) == ["beta"]
    box.clear()
    box.send_keys(" ")  # clear() fires no input event; a keystroke does
    assert len(order(driver)) == 4
    Select(driver.find_element(By.ID, "team-filter")).select_by_value("organizers")
    assert order(driver) == ["baseline-copy"]
    driver.find_element(By.ID, "show-baselines").click()
    assert order(driver) == [] and driver.find_element(By.ID, "shown").text == "0 of 4 entries"
    Select(driver.find_element(By.ID, "team-filter")).select_by_value("")
    assert order(driver) == ["alpha", "gamma", "beta"]
    assert errors(driver) == []


def test_failed_cell_shows_its_reason(driver, pages):
    from selenium.webdriver.common.by import By

    open_page(driver, pages["plain"])
    cell = driver.find_element(By.CSS_SELECTOR, 'tbody[data-submission="beta"] td[data-key="lm"]')
    reason = cell.find_element(By.CSS_SELECTOR, ".reason")
    assert cell.is_displayed() and reason.is_displayed() and reason.size["height"] > 0
    assert "failed: timeout" in cell.text and ex.FAILED_REASON in reason.text
    assert cell.get_attribute("title") == ex.FAILED_REASON


def test_details_open_with_metrics_signatures_and_provenance(driver, pages):
    from selenium.webdriver.common.by import By

    open_page(driver, pages["bootstrap"])
    entry = driver.find_element(By.CSS_SELECTOR, 'tbody[data-submission="alpha"]')
    details = entry.find_element(By.CSS_SELECTOR, "tr.details")
    assert not details.is_displayed()
    entry.find_element(By.CSS_SELECTOR, "button.toggle").click()
    assert details.is_displayed()
    for text in ("f1 71.50 ↑", "f1: f1|sig:1", "submission sha256", "sacrebleu 2.6.0", "qa.jsonl"):
        assert text in details.text
    header(driver, "qa").click()  # the open details travel with their row
    assert entry.find_element(By.CSS_SELECTOR, "tr.details").is_displayed()


def test_screenshot_is_saved(driver, pages, tmp_path):
    open_page(driver, pages["bootstrap"])
    path = save_full_page(driver, tmp_path / "leaderboard.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_demo_page_in_the_browser(driver, tmp_path):
    """The shipped demo board, built end to end into tmp_path, opened and photographed. With
    HARNESS_UPDATE_SCREENSHOT=1 the photo also replaces docs/leaderboard.png (the README's picture)."""
    boards = tmp_path / "boards"
    code = cli.main(["run", "suite=demo", f"paths.submissions={REPO / 'submissions'}",
                     f"paths.results={tmp_path / 'store'}", f"paths.leaderboards={boards}", "progress=false"])
    assert code == 0
    open_page(driver, boards / "demo" / "index.html")
    assert errors(driver) == [] and len(order(driver)) >= 2
    shot = save_full_page(driver, tmp_path / "demo.png")
    if os.environ.get("HARNESS_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "leaderboard.png")


@pytest.mark.parametrize("which", ["demo", "plain", "bootstrap"])
def test_the_page_never_scrolls_sideways_at_1400_px(driver, pages, which):
    """The shipped demo board and the example boards (failed cells with long reasons) fit a 1400 x 900 window."""
    driver.set_window_size(1400, 900)
    try:
        open_page(driver, REPO / "leaderboards" / "demo" / "index.html" if which == "demo" else pages[which])
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        assert driver.execute_script("return document.scrollingElement.scrollWidth") <= 1400
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(1280, 900)


def test_a_chinese_board_shows_its_chinese_text(driver, tmp_path):
    """The issue's new-user setup (a Chinese suite on hydra.searchpath, a predictions entry of a Chinese team):
    the page carries the Chinese team name and the character-level signatures, and filtering by it works."""
    from selenium.webdriver.common.by import By
    from test_languages import chinese_suite, run_suite

    folder = chinese_suite(tmp_path / "suite", "language: zh", team="北京大学队")
    assert run_suite(folder) == 0
    page = folder / "boards" / "zh_suite" / "index.html"
    open_page(driver, page)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "北京大学队" in body
    assert "tok:char" in driver.page_source and "cmrc2018" in driver.page_source
    box = driver.find_element(By.ID, "filter")
    box.send_keys("北京")
    assert order(driver) == ["zh-entry"]
    assert errors(driver) == []

