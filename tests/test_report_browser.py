"""The HTML report in a real browser (headless Chromium through Selenium): at 1024 px nothing overflows
sideways, every image loads, the summary is there. Skips, saying why, when no browser is installed
(``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``)."""

import io
import json
import shutil

import pytest
from conftest import golden_run_dir

from bench.reporting.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def _browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    if not CHROMIUM or not DRIVER:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (.ci/run does)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # headless, as root in a sandboxed machine, with no network: nothing may reach out
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1024,900",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1024, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    return driver


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = golden_run_dir(tmp_path_factory.mktemp("browser"))
    # two adversarial grids as the attack stage writes them (they go into a collapsed section)
    from matplotlib.figure import Figure

    (d / "figures").mkdir()
    for name in ("adv_mlp_seed0.png", "adv_dropout_seed0.png"):
        buf = io.BytesIO()
        Figure(figsize=(14, 4)).savefig(buf, format="png")
        (d / "figures" / name).write_bytes(buf.getvalue())
    path = write_report(d)
    driver = _browser()
    try:
        driver.get(path.resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def test_no_horizontal_overflow_at_1024px(page):
    width, scroll, view = page.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width == 1024
    assert scroll <= view, f"the page is {scroll - view} px wider than the window"
    # the wide leaderboard scrolls inside its own box instead
    inner, outer = page.execute_script(
        "const b = document.querySelector('#leaderboard .scroll'); return [b.scrollWidth, b.clientWidth]"
    )
    assert inner > outer


def test_every_image_loads(page):
    images = page.execute_script("return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    assert len(images) >= 4  # robust accuracy, beta sweep, two adversarial grids
    assert [alt for alt, complete, width in images if not (complete and width > 0)] == []


def test_summary_is_on_the_page(page):
    text = page.execute_script("return document.querySelector('#summary').innerText")
    assert "95% CI" in text and "masking? check could not fire" in text
    # the summary sits above the fold, right after the contents
    top = page.execute_script("return document.querySelector('#summary').getBoundingClientRect().top")
    assert top < 900
    toc = page.execute_script("return Array.from(document.querySelectorAll('nav.toc a')).map(a => a.innerText)")
    assert toc[:2] == ["Summary", "Leaderboard"] and "Adversarial examples" in toc
    assert json.loads(page.execute_script("return JSON.stringify(document.title)")) == "vib-bench report: run"
