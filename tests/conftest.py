from __future__ import annotations

import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from erumlab.cli import worker_argv
from erumlab.testing.processes import database_url, running
from tests.factories import PASSWORD, UserFactory

# Job settings shared by the test process and the workers it starts: short
# heartbeats so lost workers are noticed in seconds, not minutes.
FAST_JOBS = {
    "ERUMLAB_JOB_HEARTBEAT_SECONDS": "1",
    "ERUMLAB_JOB_STALE_AFTER": "3",
    "ERUMLAB_JOB_WAIT_COUNTDOWN": "1",
}


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


@pytest.fixture
def fast_jobs(settings):
    for name, value in FAST_JOBS.items():
        setattr(settings, name, int(value))
    return settings


@pytest.fixture
def start_worker(tmp_path, fast_jobs):
    """Start real Celery workers against the test database; stopped after the test."""
    stack = []

    def start(*, queues: str = "default,gpu", concurrency: str = "1",
              **env_overrides: str):
        env = {**os.environ, **FAST_JOBS,
               "DATABASE_URL": database_url(connection.settings_dict), **env_overrides}
        log = tmp_path / f"worker-{len(stack)}.log"
        context = running(worker_argv(queues=queues, concurrency=concurrency), env=env, log=log)
        process = context.__enter__()
        stack.append((context, process, log))
        return process

    yield start
    for context, _, log in reversed(stack):
        context.__exit__(None, None, None)
        if os.environ.get("ERUMLAB_SHOW_WORKER_LOGS"):
            print(log.read_text()[-5000:])
