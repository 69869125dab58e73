"""REST API foundation: authentication, schema, docs, and the first endpoints."""

from __future__ import annotations

import pytest

from erumlab.accounts import services
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_anonymous_requests_are_refused(api_client):
    assert api_client.get("/api/v1/me/").status_code == 401


def test_session_authentication_works_for_the_browser(client, user):
    client.force_login(user)
    assert client.get("/api/v1/me/").json()["username"] == user.username


def test_me_can_be_updated_but_not_the_username(api_client, user):
    api_client.force_authenticate(user)
    response = api_client.patch("/api/v1/me/", {"affiliation": "RWTH", "username": "x"},
                                format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.affiliation == "RWTH"
    assert user.username != "x"


def test_tokens_are_created_listed_and_revoked_through_the_api(api_client, user):
    api_client.force_authenticate(user)
    created = api_client.post("/api/v1/tokens/", {"name": "job runner", "expires_in_days": 7},
                              format="json")
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("erl_")
    listed = api_client.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["job runner"]
    assert "token" not in listed[0]
    assert api_client.delete(f"/api/v1/tokens/{created.json()['id']}/").status_code == 204
    assert services.api_token_authenticate(secret=secret) is None


def test_a_token_without_a_name_is_refused_naming_the_field(api_client, user):
    api_client.force_authenticate(user)
    response = api_client.post("/api/v1/tokens/", {"name": "  "}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_collaborations_are_scoped_to_members(api_client, user, other_user):
    collaboration = MembershipFactory(user=user).collaboration
    api_client.force_authenticate(other_user)
    assert api_client.get("/api/v1/collaborations/").json()["results"] == []
    assert api_client.get(f"/api/v1/collaborations/{collaboration.slug}/").status_code == 404
    api_client.force_authenticate(user)
    assert api_client.get(f"/api/v1/collaborations/{collaboration.slug}/").status_code == 200


def test_creating_a_collaboration_makes_the_caller_maintainer(api_client, user):
    api_client.force_authenticate(user)
    response = api_client.post("/api/v1/collaborations/", {"name": "Pierre Auger"},
                               format="json")
    assert response.status_code == 201
    assert response.json()["members"] == [
        {"username": user.username, "role": "maintainer", "joined_at": response.json()[
            "members"][0]["joined_at"]}
    ]


def test_the_openapi_schema_describes_the_token_scheme(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    assert "/api/v1/me/" in schema["paths"]


def test_the_api_docs_are_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn." not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/" in html


def test_worker_ping_is_for_administrators_only(api_client, user):
    api_client.force_authenticate(user)
    assert api_client.post("/api/v1/worker-ping/").status_code == 403
