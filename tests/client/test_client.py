"""erumlab.client against a live portal."""

from __future__ import annotations

import pytest

from erumlab.accounts import services
from erumlab.client import ApiError, Client, ClientConfigError

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_client_reads_its_configuration_from_the_environment(live_server, user, monkeypatch):
    issued = services.api_token_issue(user=user, name="notebook")
    monkeypatch.setenv("ERUMLAB_URL", live_server.url)
    monkeypatch.setenv("ERUMLAB_API_TOKEN", issued.secret)
    assert Client().me()["username"] == user.username


def test_a_refused_request_carries_the_portals_reason(live_server):
    client = Client(live_server.url, "erl_revoked-or-wrong")
    with pytest.raises(ApiError, match="401") as error:
        client.me()
    assert "Invalid, expired or revoked" in str(error.value.detail)


def test_missing_configuration_is_named(monkeypatch):
    monkeypatch.delenv("ERUMLAB_URL", raising=False)
    with pytest.raises(ClientConfigError, match="ERUMLAB_URL"):
        Client(token="erl_x")
