"""A physicist signs up, logs in, clicks "Open notebook" and runs a cell in JupyterLab,
with no second login: the hub signs them in through the portal (OpenID Connect)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from playwright.sync_api import Page, expect

from erumlab.accounts.models import User
from erumlab.cli import hub_argv, hub_environment
from erumlab.jobs.services import template_import_from_server
from erumlab.sessions.hub import HubClient
from erumlab.sessions.services import hub_client_ensure
from erumlab.testing.processes import free_port, running, wait_for_http
from tests.jobs.conftest import notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hub(live_server, settings, tmp_path):
    """A real JupyterHub signing users in through the live portal."""
    hub_url = f"http://127.0.0.1:{free_port()}"
    settings.ERUMLAB_PORTAL_URL = live_server.url
    settings.ERUMLAB_HUB_URL = hub_url
    settings.ERUMLAB_HUB_API_URL = f"{hub_url}/hub/api"
    settings.ERUMLAB_HUB_PROXY_URL = hub_url
    settings.OAUTH2_PROVIDER = {**django_settings.OAUTH2_PROVIDER,
                                "OIDC_ISS_ENDPOINT": live_server.url}
    hub_client_ensure()
    env = hub_environment()
    env.update(
        ERUMLAB_HUB_DATA_DIR=str(tmp_path / "hub"),
        ERUMLAB_HUB_HOMES=str(tmp_path / "homes"),
        ERUMLAB_HUB_INTERNAL_PORT=str(free_port()),
        ERUMLAB_HUB_PROXY_API_PORT=str(free_port()),
    )
    log = tmp_path / "hub.log"
    with running(hub_argv(), env=env, log=log) as process:
        wait_for_http(f"{hub_url}/hub/api/", timeout=60, process=process, log=log)
        yield hub_url, tmp_path / "homes"
    print(log.read_text()[-5000:])


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
