"""A physicist signs up, logs in, clicks "Open notebook" and runs a cell in JupyterLab,
with no second login: the hub signs them in through the portal (OpenID Connect)."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from playwright.sync_api import Page, expect

from erumlab.accounts.models import User
from erumlab.jobs.services import template_import_from_server
from erumlab.sessions.hub import HubClient
from tests.jobs.conftest import notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]


@pytest.fixture
def hub(test_hub):
    """A real JupyterHub signing users in through the live portal."""
    with test_hub.run():
        yield test_hub.url, test_hub.folder / "homes"


def test_sign_up_log_in_and_open_jupyterlab_without_a_second_login(live_server, hub, page: Page):
    hub, homes = hub
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "emmy")
    page.fill("#id_email", "emmy@example.org")
    page.fill("#id_first_name", "Emmy")
    page.fill("#id_last_name", "Noether")
    page.fill("#id_password1", "symmetries-and-conservation")
    page.fill("#id_password2", "symmetries-and-conservation")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "emmy")
    page.fill("#id_password", "symmetries-and-conservation")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    page.locator("#open-notebook").first.click()
    # Hub -> portal authorize (already logged in, no consent) -> hub -> spawn -> JupyterLab.
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=120_000)
    assert page.url.startswith(f"{hub}/user/emmy/lab")

    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    # Code sent before the kernel is connected is dropped: wait for it to be idle.
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle").first).to_be_visible(
        timeout=60_000)
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click()
    page.keyboard.type("print(6 * 7)")
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-OutputArea-output").first).to_have_text("42", timeout=60_000)

    # The portal sees the running server through the hub's REST API ...
    assert HubClient.from_settings().server_status("emmy").running

    # ... and can take a notebook from it as a job template.
    (homes / "emmy" / "analysis.ipynb").write_text(
        notebook("print(threshold)", parameters="threshold: float = 0.5  # cut value"))
    emmy = User.objects.get(username="emmy")
    template = template_import_from_server(owner=emmy, path="analysis.ipynb")
    assert template.source == "server"
    assert template.parameters[0]["name"] == "threshold"
    with pytest.raises(ValidationError, match="No notebook"):
        template_import_from_server(owner=emmy, path="missing.ipynb")
