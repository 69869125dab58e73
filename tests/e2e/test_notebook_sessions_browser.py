"""A physicist starts a session from the portal's Notebooks page, watches the progress bar
fed by the hub's spawn events, and lands in JupyterLab by themselves: a CPU session on a
site without GPUs, and a GPU session on a site whose GPUs the administrator named."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from erumlab.sessions.hub import HubClient
from erumlab.testing.hub import run_in_kernel
from tests.sessions.test_hub_sessions import IN_THE_SERVER

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]


@pytest.mark.parametrize(("gpus", "profile"), [("none", "CPU: 2 cores, 4 GB"),
                                               ("3", "1 GPU: 4 cores, 16 GB")])
def test_start_a_session_with_a_progress_bar_and_land_in_jupyterlab(
        live_server, test_hub, settings, user, password, page: Page, gpus, profile):
    settings.ERUMLAB_GPUS = test_hub.env["ERUMLAB_GPUS"] = gpus
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
        # The GPU profile is offered exactly when the site has GPUs.
        expect(form.get_by_text("1 GPU: 4 cores, 16 GB")).to_have_count(0 if gpus == "none" else 1)
        form.get_by_label(profile).check()
        form.get_by_role("button", name="Start").click()

        # The hub's own progress events, on the portal's page.
        bar = page.locator("#spawn-progress")
        expect(bar).to_be_visible()
        assert int(bar.get_attribute("value")) > 0
        expect(page.locator("#spawn-message")).not_to_be_empty()
        if os.environ.get("ERUMLAB_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["ERUMLAB_SCREENSHOTS"],
                                              f"notebooks-starting-{gpus}.png"), full_page=True)

        # Once ready, the page takes the user into JupyterLab (single sign-on, no login).
        expect(page.locator(".jp-Launcher")).to_be_visible(timeout=120_000)
        assert page.url.startswith(f"{test_hub.url}/user/{user.username}/lab")
        assert HubClient.from_settings().server_status(user.username).running
        # In the user's kernel: exactly the allocated GPU, and a client that works as them.
        cell = run_in_kernel(f"{test_hub.url}/user/{user.username}/",
                             settings.ERUMLAB_HUB_API_TOKEN, IN_THE_SERVER)
        assert cell.error == ""
        assert cell.stdout.strip() == f"{user.username}|{'' if gpus == 'none' else gpus}"

        page.goto(f"{live_server.url}/notebooks/")
        expect(page.locator("#server-profile")).to_have_text(re.compile(re.escape(profile)))
        if os.environ.get("ERUMLAB_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["ERUMLAB_SCREENSHOTS"],
                                              f"notebooks-running-{gpus}.png"), full_page=True)
