"""The report in a real browser: headless Chromium opens report/index.html from disk, every image
decodes (naturalWidth > 0) and the page makes no request other than file: and data: URLs.

Needs the ``chromium`` and ``chromedriver`` binaries (Debian: ``apt-get install chromium
chromium-driver``; .ci/run installs them when it can) and selenium (dev extra); skipped otherwise.
Requests are read from Chromium's DevTools network log (``Network.requestWillBeSent``), and every
host name resolves to nothing, so even a regression cannot reach the network from this test.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from equity_pipeline.report import render_report
from tests.report.test_report_disparities import sample_completeness, sample_disparities
from tests.report.test_report_html import MANIFEST, MEASURES, _parsed, sample_rates

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium chromium-driver)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="no chromedriver on PATH (apt-get install chromium-driver)"),
]


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) drives Chromium")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import polars as pl

    from equity_pipeline.report.trends import trend_rates

    out = tmp_path_factory.mktemp("run") / "report"
    earlier = sample_rates().with_columns(period=pl.lit("2023"))  # an earlier run's public rates: trend charts
    return render_report(sample_rates(), MANIFEST, out, measures=MEASURES, disparities=sample_disparities(),
                         completeness=sample_completeness(), trends=trend_rates(sample_rates(), [earlier]))


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_report_loads_offline_with_every_image(browser, page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    expected_images = len(_parsed(html).imgs)
    assert expected_images >= 12  # rate charts plus forest plots
    assert html.count('class="trend"') >= 1 and "Trend chart of" in html  # and trend charts

    browser.get_log("performance")  # drop anything logged before this page
    browser.get(page.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title.startswith("Health equity report")

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)]);")
    assert len(images) == expected_images
    for complete, width, height, scheme in images:
        assert complete and width > 0 and height > 0, (complete, width, height)
        assert scheme == "data:image/png;base64,"

    urls = _requested_urls(browser)
    assert page.as_uri() in urls  # the log works: the page itself was requested
    outside = [u for u in urls if not u.startswith(("file:", "data:"))]
    assert outside == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert [u for u in resources if not u.startswith(("file:", "data:"))] == []


def test_audit_index_loads_offline(browser, tmp_path: Path) -> None:
    from equity_pipeline.report.audit import write_audit_pack

    out = tmp_path / "audit"
    write_audit_pack(out, manifest=MANIFEST, manifest_path=None, validation_dir=tmp_path / "validation",
                     tables={"rates": sample_rates()}, measure_inputs={}, input_tables=[])
    browser.get_log("performance")
    browser.get((out / "index.html").as_uri())
    assert browser.title.startswith("Audit pack")
    urls = _requested_urls(browser)
    assert [u for u in urls if not u.startswith(("file:", "data:"))] == []


def test_state_plan_loads_offline_with_its_charts(browser, tmp_path: Path) -> None:
    from equity_pipeline.report.state_plan import render_state_plan
    from tests.report.test_state_plan import hospital_table, state_table

    page = render_state_plan(state_table(), hospital_table(), {"run_id": "r1"}, tmp_path / "report")
    browser.get_log("performance")
    browser.get(page.as_uri())
    assert browser.title.startswith("Health equity plan")
    images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)]);")
    assert len(images) == 2
    for complete, width, scheme in images:
        assert complete and width > 0 and scheme == "data:image/png;base64,"
    urls = _requested_urls(browser)
    assert page.as_uri() in urls
    assert [u for u in urls if not u.startswith(("file:", "data:"))] == []
