"""A person's view: headless Chromium logs in through the admin form and reads an analysed report.

Drives Debian's /usr/bin/chromium through Playwright (never a browser Playwright downloads;
scripts/ensure_chromium.sh, run by `make test`, installs the Debian package). A missing
browser fails this test with that instruction instead of skipping it, so that a machine
without one can never pass by testing less. The full-page screenshot is left in
var/screenshots/report.png for a person to look at, and the printed page (the print
stylesheet, A4) in var/screenshots/report.pdf.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission

from experiments.models import AnalysisResult
from tests.experiments.reports.helpers import analysed_ab
from tests.factories import UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery staple"
SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "report.png"
PRINTED = SCREENSHOT.with_suffix(".pdf")


@pytest.fixture
def no_task_queue(monkeypatch):
    """The live server's database commits for real, so on_commit would send the analysis to the broker;
    the test runs the analysis itself, and must leave no message behind for another test's worker."""
    monkeypatch.setattr("experiments.tasks.analyze_experiment.delay", lambda *args, **kwargs: None)


def test_a_viewer_logs_in_and_reads_the_decision_and_three_charts(live_server, no_task_queue):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does) to install "
                    "Debian's chromium package; this test never downloads a browser.")
    from playwright.sync_api import sync_playwright

    experiment = analysed_ab("promote")
    green = AnalysisResult.objects.get(experiment=experiment).document["comparisons"][0]
    # A viewer without staff status: reports have their own sign-in page, not the admin's.
    reader = UserFactory()
    reader.user_permissions.add(Permission.objects.get(content_type__app_label="experiments",
                                                       codename="view_experiment"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    report_path = f"/reports/{experiment.key}/"

    # Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls
    # while one runs (SynchronousOnlyOperation): every database read or write of this test
    # happens before the browser starts, so DJANGO_ALLOW_ASYNC_UNSAFE is not needed.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{live_server.url}{report_path}")
            assert page.url.startswith(f"{live_server.url}/accounts/login/"), page.url
            page.fill("#id_username", reader.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}{report_path}")

            sentence = page.locator("[data-testid=decision-sentence]").inner_text()
            chart_count = page.locator("figure.chart svg").count()
            heading = page.locator("h1").inner_text()
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            # What "Print / Save as PDF" gives: the print stylesheet, A4.
            page.emulate_media(media="print")
            nav_printed = page.locator("nav.site-nav").is_visible()
            page.pdf(path=str(PRINTED), format="A4", print_background=True)
        finally:
            browser.close()

    assert heading == experiment.name
    assert re.fullmatch(
        rf"The green variant raised checkout conversion by {green['effect'] * 100:.1f} points "
        rf"\(95% interval {green['ci_low'] * 100:.1f} to {green['ci_high'] * 100:.1f}\), p = \S+: promote green\.",
        sentence,
    ), sentence
    assert chart_count == 3
    assert SCREENSHOT.stat().st_size > 10_000
    assert not nav_printed, "the print stylesheet must hide the navigation"
    assert PRINTED.read_bytes().startswith(b"%PDF")
