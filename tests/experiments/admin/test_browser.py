"""A person in a real browser: log in, define an A/B test, watch its sample size appear, start it.

Drives Debian's /usr/bin/chromium through Playwright (never a browser Playwright downloads;
scripts/ensure_chromium.sh installs the Debian package). A missing browser fails the test
with that instruction rather than skipping it. Full-page screenshots are left in
var/screenshots/admin-*.png for a person to look at.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission

from experiments.models import AuditEvent, Experiment
from tests.experiments.admin.pages import promotable
from tests.factories import UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def staff_experimenter():
    # The live server needs a transactional database, which an earlier transactional test may
    # have flushed of the groups that a data migration created: make sure this one exists.
    group, _ = Group.objects.get_or_create(name="experimenter")
    group.permissions.add(*Permission.objects.filter(
        content_type__app_label="experiments",
        codename__in=["add_experiment", "change_experiment", "view_experiment", "run_experiment"]))
    user = UserFactory(is_staff=True)
    user.groups.add(group)
    return user


@pytest.fixture
def no_task_queue(monkeypatch):
    """The live server's database commits for real, so on_commit would send the analysis to the broker;
    the test runs the analysis itself, and must leave no message behind for another test's worker."""
    monkeypatch.setattr("experiments.tasks.analyze_experiment.delay", lambda *args, **kwargs: None)


@pytest.mark.django_db(transaction=True)
def test_an_experimenter_defines_and_starts_an_experiment_in_a_real_browser(live_server, no_task_queue):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh to install Debian's chromium "
                    "package; this test never downloads a browser.")
    from playwright.sync_api import sync_playwright

    user = staff_experimenter()
    analysed = promotable()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin_url = f"{live_server.url}/admin/experiments/experiment/"
    seen = {}

    # Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls
    # while one runs (SynchronousOnlyOperation): every database read and write of this test
    # happens before the browser starts or after it closes, so DJANGO_ALLOW_ASYNC_UNSAFE is not needed.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{admin_url}add/")
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{admin_url}add/")

            page.fill("#id_key", "checkout-button")
            page.fill("#id_name", "Checkout button colour")
            page.fill("#id_hypothesis", "A green button makes more people finish checkout.")
            page.select_option("#id_design", "ab")
            page.fill("#id_metric_name", "checkout_conversion")
            page.select_option("#id_metric_type", "binary")
            page.fill("#id_baseline_mean", "0.1")
            page.fill("#id_mde", "0.01")
            page.fill("#id_duration", "P14D")
            page.fill("#id_expected_daily_units", "20000")
            page.fill("#id_variants-0-key", "control")
            page.check("#id_variants-0-is_control")
            page.fill("#id_variants-0-payload", '{"color": "blue"}')
            page.fill("#id_variants-1-key", "green")
            page.fill("#id_variants-1-payload", '{"color": "green"}')
            # The preview is redrawn from the preview endpoint as the form is edited.
            page.wait_for_selector("#preview-sizes .preview-size")
            page.wait_for_function("document.querySelector('#preview-days').innerText.includes('1.5')")
            seen["live preview"] = page.locator("#power-preview").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-add.png"), full_page=True)

            page.click("input[name=_continue]")
            page.wait_for_url(re.compile(r".*/change/\?expected_daily_units=20000$"))
            seen["draft preview"] = page.locator("#power-preview").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-draft.png"), full_page=True)

            page.click("a.lifecycle-start")
            page.wait_for_url(re.compile(r".*/start/$"))
            page.screenshot(path=str(SCREENSHOTS / "admin-start-confirm.png"), full_page=True)
            page.click("input[type=submit][value='Yes, start it']")
            page.wait_for_url(re.compile(r".*/change/$"))
            seen["message"] = page.locator("ul.messagelist").inner_text()
            seen["running buttons"] = page.locator("ul.object-tools").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-running.png"), full_page=True)

            page.goto(admin_url)
            seen["changelist"] = page.locator("#result_list").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-changelist.png"), full_page=True)

            page.goto(f"{admin_url}{analysed.pk}/change/")
            seen["result"] = page.locator("#result-summary").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-result.png"), full_page=True)
        finally:
            browser.close()

    for preview in (seen["live preview"], seen["draft preview"]):
        assert "29490" in preview and preview.count("14745") == 2, preview
        assert "about 1.5 days" in preview, preview
    assert "Started checkout-button: the protocol is frozen" in seen["message"]
    assert "stop" in seen["running buttons"].lower() and "start" not in seen["running buttons"].lower()
    assert "checkout-button" in seen["changelist"] and "Running" in seen["changelist"]
    experiment = Experiment.objects.get(key="checkout-button")
    assert experiment.status == "running"
    assert experiment.protocol["sample_size_per_variant"] == {"control": 14745, "green": 14745}
    assert [v.payload for v in experiment.variants.all()] == [{"color": "blue"}, {"color": "green"}]
    assert list(AuditEvent.objects.filter(experiment=experiment).values_list("action", "actor")) == [
        ("created", user.pk), ("started", user.pk)]
    assert "Decision: promote (green)" in seen["result"] and "Open the full report" in seen["result"]
    for name in ("add", "draft", "start-confirm", "running", "changelist", "result"):
        assert (SCREENSHOTS / f"admin-{name}.png").stat().st_size > 10_000
