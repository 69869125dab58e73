"""Notebook servers started from the portal on a real JupyterHub with the local spawner:
profiles, GPUs allocated from administrator-configured device ids (no GPU needed),
the server's own erumlab.client configuration, quotas, progress and stopping."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from erumlab.accounts.models import ApiToken
from erumlab.accounts.services import api_token_authenticate, api_token_issue
from erumlab.sessions import services
from erumlab.sessions.hub import HubClient, SpawnFailed
from erumlab.sessions.models import Grant, Quota, WaitingStart
from erumlab.testing.hub import run_in_kernel

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


IN_THE_SERVER = """
import os
import erumlab.science
from erumlab.client import Client
me = Client().me()["username"]  # no URL, no token given: the server's environment has both
print(me, os.environ["CUDA_VISIBLE_DEVICES"], sep="|")
"""


def test_gpu_sessions_get_their_own_devices_a_working_client_and_release_on_stop(
        hub, client, live_server, django_user_model, tmp_path):
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
        # A cell in the user's own kernel calls the portal as that user, with no copy-pasting.
        cell = run_in_kernel(f"{django_settings.ERUMLAB_HUB_PROXY_URL}/user/{user.username}/",
                             django_settings.ERUMLAB_HUB_API_TOKEN, IN_THE_SERVER)
        assert cell.error == ""
        assert cell.stdout.strip() == f"{user.username}|{env['CUDA_VISIBLE_DEVICES']}"
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


def test_the_hub_itself_refuses_a_start_over_quota(hub, user):
    # Straight to the hub, past the portal's own form: the hub asks the portal anyway.
    Quota.objects.create(user=user, max_servers=1, max_gpus=0)
    with pytest.raises(SpawnFailed, match="your quota allows 0"):
        # Waits for the hub's answer however long the portal takes (its first request
        # imports every view): this is about who refuses, not how fast.
        hub.start_server(user.username, profile="gpu", answer_within=60)
    assert not Grant.objects.filter(user=user).exists()
    assert hub.server_status(user.username).state in ("stopped", "absent")


def test_a_cpu_session_sees_no_gpu_and_the_page_reports_progress(hub, client, user):
    page = start(client, user, "cpu").content.decode()
    assert "Starting your server" in page, page[page.find("<main"):][:1500]
    seen = {"progress"} if 'id="spawn-progress"' in page else set()

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


def test_allocations_survive_a_hub_crash_and_restart(test_hub, settings, client,
                                                     django_user_model):
    settings.ERUMLAB_GPUS = test_hub.env["ERUMLAB_GPUS"] = "0,1"
    ada, bea, cy = (django_user_model.objects.create_user(username=name,
                                                          email=f"{name}@example.org")
                    for name in ("ada", "bea", "cy"))
    hub = HubClient.from_settings()
    with test_hub.run() as process:
        start(client, ada, "gpu")
        wait(lambda: hub.server_status("ada").running, what="ada's server")
        ada_env, ada_pid = server_env(hub, "ada"), hub.user("ada")["servers"][""]["state"]["pid"]
        # A crash: no stop runs, and ada's server lives on in its own session.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    os.kill(ada_pid, 0)  # still alive

    with test_hub.run():
        assert hub.server_status("ada").running  # the restarted hub found it
        start(client, bea, "gpu")
        wait(lambda: hub.server_status("bea").running, what="bea's server")
        # bea gets the other device, never ada's.
        assert {ada_env["CUDA_VISIBLE_DEVICES"], server_env(hub, "bea")["CUDA_VISIBLE_DEVICES"]} \
            == {"0", "1"}
        page = start(client, cy, "gpu").content.decode()
        assert "All 2 GPUs are busy" in page


def test_the_culler_stops_an_idle_server_but_not_one_whose_kernel_is_working(
        test_hub, client, django_user_model):
    test_hub.env.update(ERUMLAB_HUB_CULL_IDLE_SECONDS="10", ERUMLAB_HUB_CULL_EVERY_SECONDS="2",
                        ERUMLAB_HUB_ACTIVITY_SECONDS="2")
    idle, busy = (django_user_model.objects.create_user(username=name,
                                                        email=f"{name}@example.org")
                  for name in ("idle", "busy"))
    hub = HubClient.from_settings()
    with test_hub.run():
        for user in (idle, busy):
            start(client, user, "cpu")
        for user in (idle, busy):
            wait(lambda u=user: hub.server_status(u.username).running, what=f"{user}'s server")
        # A silent computation: no output, so only the busy state shows it is working.
        run_in_kernel(f"{test_hub.url}/user/busy/", django_settings.ERUMLAB_HUB_API_TOKEN,
                      "import time\ntime.sleep(120)",
                      wait=False)
        started = time.monotonic()
        wait(lambda: hub.server_status("idle").state in ("stopped", "absent"), timeout=60,
             what="the idle server to be culled")
        # Culled servers end their grant like any other stop.
        wait(lambda: not Grant.objects.filter(user=idle, ended_at__isnull=True).exists(),
             what="the idle server's grant to end")
        # Give the culler as long again as the idle server needed, and three more rounds.
        time.sleep(time.monotonic() - started + 6)
        assert hub.server_status("busy").running


def test_a_user_waits_in_line_for_the_gpu_and_starts_when_it_frees(
        test_hub, settings, client, django_user_model, start_worker):
    settings.ERUMLAB_GPUS = test_hub.env["ERUMLAB_GPUS"] = "0"
    ada, bea = (django_user_model.objects.create_user(username=name, email=f"{name}@example.org")
                for name in ("ada", "bea"))
    hub = HubClient.from_settings()
    # The worker moves the line when the hub reports a stop: it must reach the same hub.
    start_worker(ERUMLAB_HUB_API_URL=settings.ERUMLAB_HUB_API_URL,
                 ERUMLAB_HUB_API_TOKEN=settings.ERUMLAB_HUB_API_TOKEN, ERUMLAB_GPUS="0")
    with test_hub.run():
        start(client, ada, "gpu")
        wait(lambda: hub.server_status("ada").running, what="ada's server")

        page = start(client, bea, "gpu").content.decode()
        assert "The only GPU is busy" in page and 'id="gpus-busy"' in page
        assert "Start CPU: 2 cores, 4 GB instead" in page
        page = client.post(reverse("sessions:wait"), {"profile": "gpu"}, follow=True)
        assert "number 1</strong> in line" in page.content.decode()
        # The line tried at once, found the GPU still held, and bea keeps her place.
        entry = wait(lambda: WaitingStart.objects.filter(user=bea, attempts__gte=1).first(),
                     what="a first attempt for bea")
        wait(lambda: hub.server_status("bea").state in ("stopped", "absent"),
             what="the hub to clear bea's refused start")

        client.force_login(ada)
        client.post(reverse("sessions:stop"))
        wait(lambda: hub.server_status("bea").running, what="bea's server, started by the line")
        assert not WaitingStart.objects.filter(pk=entry.pk).exists()
        assert server_env(hub, "bea")["CUDA_VISIBLE_DEVICES"] == "0"


def test_the_reconciler_refreshes_live_tokens_and_ends_grants_of_vanished_servers(
        hub, client, user, other_user, session_profiles):
    start(client, user, "cpu")
    wait(lambda: hub.server_status(user.username).running, what="the server")
    live = Grant.objects.get(user=user, ended_at__isnull=True)
    assert live.api_token.expires_at is not None  # it lapses unless refreshed
    ApiToken.objects.filter(pk=live.api_token_id).update(
        expires_at=timezone.now() + timedelta(minutes=1))
    # A grant the hub knows nothing of: a start that crashed along with the old hub.
    lost_token = api_token_issue(user=other_user, name="notebook server default")
    lost = Grant.objects.create(user=other_user, profile=session_profiles[0],
                                api_token=lost_token.token,
                                created_at=timezone.now() - timedelta(minutes=10))

    result = services.sessions_reconcile()

    assert result.ended == [f"{other_user.username}/"] and result.refreshed == 1
    live.api_token.refresh_from_db()
    assert live.api_token.expires_at > timezone.now() + timedelta(hours=23)
    lost.refresh_from_db()
    assert lost.ended_at is not None and "no longer runs" in lost.end_reason
    assert api_token_authenticate(secret=lost_token.secret) is None
    assert Grant.objects.get(pk=live.pk).ended_at is None
