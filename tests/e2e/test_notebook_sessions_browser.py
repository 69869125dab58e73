"""A physicist starts a CPU session from the portal's Notebooks page, watches the progress
bar fed by the hub's spawn events, and lands in JupyterLab by themselves."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from erumlab.sessions.hub import HubClient

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]


def test_start_a_cpu_session_with_a_progress_bar_and_land_in_jupyterlab(
        live_server, test_hub, user, password, page: Page, tmp_path):
    page.set_default_timeout(30_000)
    with test_hub.run():
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/dashboard/$"))

        page.goto(f"{live_server.url}/notebooks/")
        form = page.locator("#start-form")
        expect(form.get_by_text("CPU: 2 cores, 4 GB")).to_be_visible()
        # No GPUs on this site: the GPU profile is not offered.
        expect(form.get_by_text("GPU:")).to_have_count(0)
        form.get_by_label(re.compile("CPU: 2 cores")).check()
        form.get_by_role("button", name="Start").click()

        # The hub's own progress events, on the portal's page.
        bar = page.locator("#spawn-progress")
        expect(bar).to_be_visible()
        assert int(bar.get_attribute("value")) > 0
        expect(page.locator("#spawn-message")).not_to_be_empty()
        if os.environ.get("ERUMLAB_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["ERUMLAB_SCREENSHOTS"],
                                              "notebooks-starting.png"), full_page=True)

        # Once ready, the page takes the user into JupyterLab (single sign-on, no login).
        expect(page.locator(".jp-Launcher")).to_be_visible(timeout=120_000)
        assert page.url.startswith(f"{test_hub.url}/user/{user.username}/lab")
        assert HubClient.from_settings().server_status(user.username).running

        page.goto(f"{live_server.url}/notebooks/")
        expect(page.locator("#server-profile")).to_have_text(re.compile("CPU: 2 cores, 4 GB"))
        if os.environ.get("ERUMLAB_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["ERUMLAB_SCREENSHOTS"],
                                              "notebooks-running.png"), full_page=True)
