"""The portal's side of a spawn: profiles, quotas, the server's token, and what the hub reports."""

from __future__ import annotations

import pytest
from django.urls import reverse

from erumlab.accounts.models import ApiToken, Collaboration, Membership
from erumlab.accounts.services import api_token_authenticate
from erumlab.sessions import services
from erumlab.sessions.models import Grant, Profile, Quota

pytestmark = pytest.mark.django_db


@pytest.fixture
def gpus(settings):
    settings.ERUMLAB_GPUS = "0,1"
    services._site_gpu_ids.cache_clear()
    yield ["0", "1"]
    services._site_gpu_ids.cache_clear()


@pytest.fixture
def hub(api_client, settings):
    settings.ERUMLAB_HUB_API_TOKEN = "hub-secret"
    api_client.credentials(HTTP_AUTHORIZATION="token hub-secret")
    return api_client


def authorize(hub, user, profile="", server=""):
    return hub.post(reverse("api:hub_authorize"),
                    {"user": user.username, "server": server, "profile": profile}, format="json")


def test_a_fresh_site_has_a_cpu_and_a_gpu_profile_and_shows_gpu_only_with_gpus(user, settings,
                                                                               gpus):
    assert [p.slug for p in Profile.objects.all()] == ["cpu", "gpu"]
    assert [p.slug for p in services.profiles_for(user)] == ["cpu", "gpu"]
    settings.ERUMLAB_GPUS = "none"
    assert [p.slug for p in services.profiles_for(user)] == ["cpu"]


def test_the_hub_gets_a_working_token_that_is_revoked_when_the_server_stops(hub, user, gpus):
    response = authorize(hub, user, "gpu")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["profile"] == {"slug": "gpu", "name": "1 GPU: 4 cores, 16 GB", "cpus": 4.0,
                               "memory_gb": 16.0, "gpus": 1, "gpu_share": 1}
    token = api_token_authenticate(secret=body["api_token"])
    assert token is not None and token.user == user  # scoped to the user
    assert hub.post(reverse("api:hub_started"), {"user": user.username, "server": "",
                                                 "gpus": ["1"]}, format="json").status_code == 204
    assert Grant.objects.get(ended_at__isnull=True).gpus == ["1"]

    assert hub.post(reverse("api:hub_ended"), {"user": user.username, "server": "",
                                               "reason": "stopped"},
                    format="json").status_code == 204
    assert api_token_authenticate(secret=body["api_token"]) is None
    assert Grant.objects.get().end_reason == "stopped"


def test_quotas_refuse_with_a_reason(hub, user, gpus):
    Quota.objects.create(user=user, max_servers=2, max_gpus=1)
    assert authorize(hub, user, "gpu").status_code == 200
    refused = authorize(hub, user, "gpu", server="second")
    assert refused.status_code == 403
    assert "your quota allows 1" in refused.json()["detail"]
    assert authorize(hub, user, "cpu", server="second").status_code == 200
    third = authorize(hub, user, "cpu", server="third")
    assert third.status_code == 403 and "allows 2 running server" in third.json()["detail"]
    assert Grant.objects.filter(ended_at__isnull=True).count() == 2


def test_a_collaboration_quota_applies_to_its_members(hub, user, gpus):
    team = Collaboration.objects.create(name="CMS ML", slug="cms-ml")
    Membership.objects.create(collaboration=team, user=user, role="member")
    Quota.objects.create(collaboration=team, max_servers=1, max_gpus=0)
    refused = authorize(hub, user, "gpu")
    assert refused.status_code == 403 and "quota allows 0" in refused.json()["detail"]


def test_a_restricted_profile_is_open_to_its_collaborations_only(hub, user, other_user):
    team = Collaboration.objects.create(name="IceCube", slug="icecube")
    Membership.objects.create(collaboration=team, user=user, role="member")
    big = Profile.objects.create(slug="big", name="Big: 32 cores", cpus=32, memory_gb=128)
    big.collaborations.add(team)
    assert authorize(hub, user, "big").status_code == 200
    refused = authorize(hub, other_user, "big")
    assert refused.status_code == 403 and "not open to you" in refused.json()["detail"]


def test_a_retried_spawn_replaces_the_old_grant_and_revokes_its_token(hub, user):
    first = authorize(hub, user).json()["api_token"]
    second = authorize(hub, user).json()["api_token"]
    assert api_token_authenticate(secret=first) is None
    assert api_token_authenticate(secret=second) is not None
    assert Grant.objects.filter(ended_at__isnull=True).count() == 1


def test_only_the_hub_may_ask(api_client, user, settings):
    settings.ERUMLAB_HUB_API_TOKEN = "hub-secret"
    for credentials in ({}, {"HTTP_AUTHORIZATION": "token wrong"},
                        {"HTTP_AUTHORIZATION": "Bearer hub-secret"}):
        api_client.credentials(**credentials)
        assert authorize(api_client, user).status_code in (401, 403)
    assert not ApiToken.objects.exists()


def test_bad_input_is_named(hub):
    response = hub.post(reverse("api:hub_authorize"), {"server": ""}, format="json")
    assert response.status_code == 400 and "user" in response.json()
    unknown = hub.post(reverse("api:hub_authorize"), {"user": "nobody"}, format="json")
    assert unknown.status_code == 403 and "nobody" in unknown.json()["detail"]


def test_the_hub_reads_the_profiles_a_user_may_start(hub, user, gpus):
    response = hub.get(reverse("api:hub_profiles", args=[user.username]))
    assert [p["slug"] for p in response.json()] == ["cpu", "gpu"]


def test_the_overview_shows_gpu_holders_and_the_line_to_staff_only(
        client, user, other_user, admin_user, hub, gpus, settings):
    from erumlab.testing.processes import free_port

    settings.ERUMLAB_HUB_API_URL = f"http://127.0.0.1:{free_port()}/hub/api"
    authorize(hub, user, "gpu")
    services.session_started(username=user.username, server="", gpus=["1"])
    client.force_login(user)
    assert client.get(reverse("sessions:overview")).status_code == 302  # to the admin login
    client.force_login(admin_user)
    page = client.get(reverse("sessions:overview")).content.decode()
    assert "<code>0</code>: <span class=\"muted\">free</span>" in page
    assert f"<code>1</code>: {user.username} (1 GPU: 4 cores, 16 GB)" in page
    assert 'id="waiting"' not in page
    services.session_wait(user=other_user, profile_slug="gpu")
    page = client.get(reverse("sessions:overview")).content.decode()
    assert f"<li>{other_user.username} (1 GPU: 4 cores, 16 GB), since" in page


def test_the_gpu_line_is_first_come_first_served_and_only_for_gpu_profiles(user, other_user,
                                                                           gpus):
    with pytest.raises(services.SessionRefused, match="needs no GPU"):
        services.session_wait(user=user, profile_slug="cpu")
    first = services.session_wait(user=user, profile_slug="gpu")
    second = services.session_wait(user=other_user, profile_slug="gpu")
    assert (services.waiting_position(first), services.waiting_position(second)) == (1, 2)
    # Asking again keeps one's place.
    again = services.session_wait(user=user, profile_slug="gpu")
    assert again.pk == first.pk and services.waiting_position(again) == 1
    assert services.session_leave_line(user=user)
    assert not services.session_leave_line(user=user)
    second.refresh_from_db()
    assert services.waiting_position(second) == 1


def test_the_line_is_not_for_those_over_quota(user, gpus):
    Quota.objects.create(user=user, max_servers=1, max_gpus=0)
    with pytest.raises(services.SessionRefused, match="your quota allows 0"):
        services.session_wait(user=user, profile_slug="gpu")


def test_an_administrator_stop_without_a_user_is_refused_by_name(client, admin_user):
    client.force_login(admin_user)
    page = client.post(reverse("sessions:stop_any"), {"user": " "}, follow=True)
    assert "Name the user whose server to stop." in page.content.decode()
