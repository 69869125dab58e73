"""Personal API tokens: issued once, stored hashed, revocable, expiring."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from erumlab.accounts import services
from erumlab.accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_the_secret_is_not_stored(user):
    issued = services.api_token_issue(user=user, name="laptop")
    assert issued.secret.startswith("erl_")
    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.secret not in (stored.digest, stored.prefix)
    assert services.api_token_authenticate(secret=issued.secret).user == user


def test_the_api_accepts_a_bearer_token(api_client, user):
    issued = services.api_token_issue(user=user, name="laptop")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == user.username


@pytest.mark.parametrize("header", ["Bearer erl_not-a-real-token", "Bearer", "Token a b"])
def test_bad_tokens_are_refused_with_a_reason(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_revoked_token_stops_working(api_client, user):
    issued = services.api_token_issue(user=user, name="ci")
    services.api_token_revoke(user=user, token_id=issued.token.pk)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_an_expired_token_stops_working(api_client, user):
    issued = services.api_token_issue(user=user, name="short", lifetime=timedelta(days=1))
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_a_deactivated_users_token_stops_working(api_client, user):
    issued = services.api_token_issue(user=user, name="old")
    user.is_active = False
    user.save()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_nobody_revokes_someone_elses_token(client, user, other_user):
    issued = services.api_token_issue(user=user, name="mine")
    client.force_login(other_user)
    response = client.post(reverse("accounts:api_token_revoke", args=[issued.token.pk]))
    assert response.status_code == 404
    assert ApiToken.objects.active().filter(pk=issued.token.pk).exists()


def test_the_tokens_page_shows_a_new_secret_once(client, user):
    client.force_login(user)
    response = client.post(reverse("accounts:api_tokens"), {"name": "notebook"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    page = response.content.decode()
    secret = page.split("erl_", 1)[1].split("<", 1)[0]
    assert services.api_token_authenticate(secret="erl_" + secret).pk == token.pk
    again = client.get(reverse("accounts:api_tokens")).content.decode()
    assert secret not in again
