"""A physicist fills the job form, watches the progress bar reach 100 % and opens the output."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.jobs.conftest import hello  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_submit_from_the_form_follow_progress_and_open_the_output(
        live_server, user, password, hello, start_worker, page: Page):  # noqa: F811
    start_worker()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name="New job").click()
    page.get_by_role("link", name="Use “Hello, erumlab”").click()
    page.fill("#id_param_name", "Chien-Shiung")
    page.fill("#id_param_steps", "5")
    page.fill("#id_param_pause", "0.4")
    page.get_by_role("button", name="Submit job").click()

    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    progress = page.locator("#job-progress")
    # The bar moves without a reload (htmx polls the job's live fragment) ...
    expect(page.locator("#job-progress-text")).to_contain_text(re.compile(r"of \d+ cells"),
                                                               timeout=60_000)
    # ... and reaches 100 % when the job succeeds; the page then shows the outputs.
    expect(page.locator("#job-state")).to_have_text("Succeeded", timeout=90_000)
    expect(progress).to_have_attribute("value", "100")
    expect(page.locator("#job-log")).to_contain_text("Hello, Chien-Shiung!")
    expect(page.get_by_role("link", name="squares.csv")).to_be_visible()

    output = page.frame_locator("#job-output")
    expect(output.locator("body")).to_contain_text("step 5/5", timeout=30_000)
