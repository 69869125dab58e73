from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    # Hashing is deliberately slow; the suite hashes hundreds of passwords and client secrets.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def logged_in_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def session_profiles(db):
    """The CPU and GPU profiles a fresh site gets (tests with transaction=True flush them)."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("erumlab.sessions.migrations.0002_default_profiles")
    migration.create_defaults(apps, None)
    from erumlab.sessions.models import Profile

    return list(Profile.objects.all())


@pytest.fixture
def test_hub(live_server, settings, tmp_path):
    """A real JupyterHub (not yet started: enter ``.run()``) wired to the live portal,
    which it signs users in through and asks before every spawn."""
    from django.conf import settings as django_settings

    from erumlab.sessions import services
    from erumlab.testing.hub import TestHub

    hub = TestHub(tmp_path / "hub-run")
    settings.ERUMLAB_PORTAL_URL = live_server.url
    settings.ERUMLAB_PORTAL_INTERNAL_URL = live_server.url
    settings.ERUMLAB_HUB_URL = hub.url
    settings.ERUMLAB_HUB_API_URL = hub.internal_api_url
    settings.ERUMLAB_HUB_PROXY_URL = hub.url
    settings.OAUTH2_PROVIDER = {**django_settings.OAUTH2_PROVIDER,
                                "OIDC_ISS_ENDPOINT": live_server.url}
    services._site_gpu_ids.cache_clear()
    services.hub_client_ensure()
    yield hub
    services._site_gpu_ids.cache_clear()
    print(hub.log_tail())
