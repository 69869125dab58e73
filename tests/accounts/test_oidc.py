"""The portal as OpenID Connect provider: the authorization-code flow the hub runs."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from jwcrypto import jwk, jwt

from erumlab.sessions.services import hub_client_ensure
from tests.factories import MembershipFactory

REDIRECT = "http://127.0.0.1:8001/hub/oauth_callback"


@pytest.fixture
def hub_app(db, settings):
    settings.ERUMLAB_HUB_URL = "http://127.0.0.1:8001"
    return hub_client_ensure()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _authorize(client, **extra):
    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": "jupyterhub",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "s-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return client.get("/o/authorize/", params), verifier


def _code_flow(client, settings):
    response, verifier = _authorize(client)
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": "jupyterhub",
            "client_secret": settings.ERUMLAB_HUB_CLIENT_SECRET,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.content
    return token.json()


def test_a_logged_in_user_is_sent_back_to_the_hub_without_a_consent_screen(client, user, hub_app):
    client.force_login(user)
    response, _ = _authorize(client)
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT + "?")


def test_an_anonymous_visitor_is_asked_to_log_in_first(client, hub_app):
    response, _ = _authorize(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_userinfo_carries_username_email_and_collaborations(client, user, hub_app, settings):
    membership = MembershipFactory(user=user)
    client.force_login(user)
    tokens = _code_flow(client, settings)
    info = client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert info.status_code == 200
    claims = info.json()
    assert claims["preferred_username"] == user.username
    assert claims["email"] == user.email
    assert claims["groups"] == [membership.collaboration.slug]


def test_administrators_carry_the_hub_admin_group(client, admin_user, hub_app, settings):
    client.force_login(admin_user)
    tokens = _code_flow(client, settings)
    claims = client.get(
        "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"
    ).json()
    assert "erumlab-admins" in claims["groups"]


def test_the_id_token_is_rs256_signed_with_the_published_key(client, user, hub_app, settings):
    client.force_login(user)
    tokens = _code_flow(client, settings)
    keys = jwk.JWKSet.from_json(client.get("/o/.well-known/jwks.json").content)
    header = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    verified = jwt.JWT(jwt=tokens["id_token"], key=keys, algs=["RS256"])
    claims = json.loads(verified.claims)
    assert claims["aud"] == "jupyterhub"
    assert claims["iss"] == settings.ERUMLAB_PORTAL_URL


def test_discovery_document_names_the_endpoints(client, db):
    document = client.get("/o/.well-known/openid-configuration").json()
    assert document["userinfo_endpoint"].endswith("/o/userinfo/")
    assert "RS256" in document["id_token_signing_alg_values_supported"]


def test_a_wrong_client_secret_gets_no_token(client, user, hub_app):
    client.force_login(user)
    response, verifier = _authorize(client)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    token = client.post(
        "/o/token/",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
         "client_id": "jupyterhub", "client_secret": "wrong", "code_verifier": verifier},
    )
    assert token.status_code == 401


def test_a_foreign_redirect_uri_is_refused_not_followed(client, user, hub_app):
    client.force_login(user)
    response, _ = _authorize(client, redirect_uri="https://evil.example.com/cb")
    assert response.status_code == 400
    assert "evil.example.com" not in response.get("Location", "")


def test_the_hub_client_follows_a_changed_secret(hub_app, settings):
    settings.ERUMLAB_HUB_CLIENT_SECRET = "a-new-secret-value"
    app = hub_client_ensure()
    from django.contrib.auth.hashers import check_password

    assert check_password("a-new-secret-value", app.client_secret)
