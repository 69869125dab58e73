"""Notebook servers started from the portal on a real JupyterHub with the local spawner:
profiles, GPUs allocated from administrator-configured device ids (no GPU needed),
the server's own erumlab.client configuration, quotas, progress and stopping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.urls import reverse

from erumlab.accounts.services import api_token_authenticate
from erumlab.client import Client
from erumlab.sessions.hub import HubClient
from erumlab.sessions.models import Grant

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]


@pytest.fixture
def hub(test_hub, settings):
    """A real JupyterHub with two configured GPUs, asking the live portal before spawns."""
    settings.ERUMLAB_GPUS = test_hub.env["ERUMLAB_GPUS"] = "0,1"
    with test_hub.run():
        yield HubClient.from_settings()


def wait(predicate, *, timeout: float = 90, what: str = ""):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def server_env(hub: HubClient, name: str) -> dict[str, str]:
    """The environment of the user's server process (the local spawner keeps its pid)."""
    pid = hub.user(name)["servers"][""]["state"]["pid"]
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def start(client, user, profile: str):  # noqa: ANN001, ANN201
    client.force_login(user)
    return client.post(reverse("sessions:start"), {"profile": profile}, follow=True)


def test_gpu_sessions_get_their_own_devices_a_working_client_and_release_on_stop(
        hub, client, live_server, django_user_model):
    users = [django_user_model.objects.create_user(username=name, email=f"{name}@example.org")
             for name in ("ada", "bea", "cy")]
    for user in users[:2]:
        page = start(client, user, "gpu")
        assert b"Starting your server" in page.content, page.content[-2000:]
    for user in users[:2]:
        wait(lambda u=user: hub.server_status(u.username).running, what=f"{user}'s server")

    envs = [server_env(hub, user.username) for user in users[:2]]
    assert sorted(env["CUDA_VISIBLE_DEVICES"] for env in envs) == ["0", "1"]
    for user, env in zip(users[:2], envs, strict=True):
        assert env["ERUMLAB_URL"] == live_server.url
        # The server's client works as its user with no copy-pasting.
        me = Client(env["ERUMLAB_URL"], env["ERUMLAB_API_TOKEN"]).me()
        assert me["username"] == user.username
        grant = Grant.objects.get(user=user, ended_at__isnull=True)
        assert grant.gpus == [env["CUDA_VISIBLE_DEVICES"]]

    # Both GPUs are held: the third user's start fails at once, and the page says why.
    page = start(client, users[2], "gpu").content.decode()
    assert "All 2 GPUs are busy" in page and "start a CPU session" in page
    assert not Grant.objects.filter(user=users[2], ended_at__isnull=True).exists()

    # Stopping gives the GPU back and revokes the server's token.
    token = envs[0]["ERUMLAB_API_TOKEN"]
    client.force_login(users[0])
    client.post(reverse("sessions:stop"))
    wait(lambda: hub.server_status("ada").state in ("stopped", "absent"), what="ada's stop")
    wait(lambda: not Grant.objects.filter(user=users[0], ended_at__isnull=True).exists(),
         what="the grant to end")
    assert api_token_authenticate(secret=token) is None

    start(client, users[2], "gpu")
    wait(lambda: hub.server_status("cy").running, what="cy's server")
    assert server_env(hub, "cy")["CUDA_VISIBLE_DEVICES"] == envs[0]["CUDA_VISIBLE_DEVICES"]


def test_a_cpu_session_sees_no_gpu_and_the_page_reports_progress(hub, client, user):
    page = start(client, user, "cpu").content.decode()
    assert "Starting your server" in page, page[page.find("<main"):][:1500]
    seen = set()

    def running() -> bool:
        page = client.get(reverse("sessions:status")).content.decode()
        if 'id="spawn-progress"' in page:
            seen.add("progress")
        return hub.server_status(user.username).running

    wait(running, what="the CPU server")
    assert seen == {"progress"}  # the hub's spawn events reached the page while it started
    env = server_env(hub, user.username)
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert Grant.objects.get(user=user, ended_at__isnull=True).profile.slug == "cpu"
    page = client.get(reverse("sessions:notebooks")).content.decode()
    assert "CPU: 2 cores, 4 GB" in page and "/lab" in page


def test_another_user_cannot_stop_your_server(hub, client, user, other_user):
    start(client, user, "cpu")
    wait(lambda: hub.server_status(user.username).running, what="the server")
    client.force_login(other_user)
    client.post(reverse("sessions:stop"))  # stops only other_user's (absent) server
    assert client.post(reverse("sessions:stop_any"), {"user": user.username}).status_code == 302
    time.sleep(1)
    assert hub.server_status(user.username).running
