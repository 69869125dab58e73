"""The Notebooks page reports what the hub says, and says so plainly when the hub is down."""

from __future__ import annotations

import pytest
from django.urls import reverse

from erumlab.sessions.hub import HubClient, HubUnavailable
from erumlab.testing.processes import free_port

pytestmark = pytest.mark.django_db


def test_an_unreachable_hub_is_reported_not_hidden(logged_in_client, settings):
    settings.ERUMLAB_HUB_API_URL = f"http://127.0.0.1:{free_port()}/hub/api"
    response = logged_in_client.get(reverse("sessions:notebooks"))
    assert response.status_code == 200
    assert b"JupyterHub is not reachable" in response.content


def test_the_hub_client_raises_a_named_error_when_the_hub_is_down():
    client = HubClient(api_url=f"http://127.0.0.1:{free_port()}/hub/api", token="t", timeout=1)
    with pytest.raises(HubUnavailable, match="not reachable"):
        client.server_status("anyone")


def test_the_dashboard_links_open_notebook_to_the_hub(logged_in_client, settings):
    settings.ERUMLAB_HUB_URL = "http://hub.example.org"
    response = logged_in_client.get(reverse("core:dashboard"))
    assert b'href="http://hub.example.org/hub/spawn"' in response.content
