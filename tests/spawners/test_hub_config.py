"""The hub's declarative configuration and the spawners it names (entry points)."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from traitlets.config import Config

CONFIG = Path(__file__).resolve().parents[2] / "spawners" / "jupyterhub_config.py"
BASE_ENV = {
    "ERUMLAB_PORTAL_URL": "https://portal.example.org",
    "ERUMLAB_PORTAL_INTERNAL_URL": "http://web:8000",
    "ERUMLAB_HUB_URL": "https://hub.example.org",
    "ERUMLAB_HUB_CLIENT_SECRET": "client-secret",
    "ERUMLAB_HUB_API_TOKEN": "service-token",
}


def load(monkeypatch, tmp_path, **env) -> Config:
    for name in [n for n in os.environ
                 if n.startswith(("ERUMLAB_HUB", "ERUMLAB_PORTAL", "ERUMLAB_GPUS"))]:
        monkeypatch.delenv(name)
    for name, value in {**BASE_ENV, "ERUMLAB_HUB_DATA_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    config = Config()
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), {"get_config": lambda: config})  # noqa: S102
    return config


def test_users_sign_in_through_the_portal(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path)
    oauth = c.GenericOAuthenticator
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert oauth.authorize_url == "https://portal.example.org/o/authorize/"  # the browser's
    assert oauth.token_url == "http://web:8000/o/token/"  # server to server
    assert oauth.oauth_callback_url == "https://hub.example.org/hub/oauth_callback"
    assert oauth.username_claim == "preferred_username"
    assert oauth.manage_groups and oauth.auth_state_groups_key == "oauth_user.groups"
    assert oauth.admin_groups == {"erumlab-admins"}
    assert c.JupyterHub.services[0] == {"name": "erumlab-portal", "api_token": "service-token"}


def test_spawners_ask_the_portal_and_share_one_gpu_allocation_file(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path, ERUMLAB_GPUS="0,1")
    for name in ("ErumlabLocalSpawner", "ErumlabDockerSpawner"):
        assert c[name].portal_api_url == "http://web:8000/api/v1"
        assert c[name].portal_token == "service-token"
        assert c[name].gpu_devices == "0,1"
        assert c[name].gpu_state_file == str(tmp_path / "gpu-allocations.sqlite")


def test_the_idle_culler_runs_as_a_service_with_the_configured_timeout(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path, ERUMLAB_HUB_CULL_IDLE_SECONDS="600",
             ERUMLAB_HUB_CULL_EVERY_SECONDS="60")
    [culler] = [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    assert culler["command"][1:] == ["-m", "jupyterhub_idle_culler", "--timeout=600",
                                     "--cull-every=60"]
    [role] = [r for r in c.JupyterHub.load_roles if r["name"] == "idle-culler"]
    assert "delete:servers" in role["scopes"]
    off = load(monkeypatch, tmp_path, ERUMLAB_HUB_CULL_IDLE_SECONDS="0")
    assert [s["name"] for s in off.JupyterHub.services] == ["erumlab-portal"]


def test_allowed_groups_restrict_the_hub_when_given(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path, ERUMLAB_HUB_ALLOWED_GROUPS="cms-ml, auger")
    assert c.GenericOAuthenticator.allowed_groups == {"cms-ml", "auger", "erumlab-admins"}
    assert "allow_all" not in c.GenericOAuthenticator


def test_a_missing_secret_is_named(monkeypatch, tmp_path):
    from erumlab_spawners.settings import HubConfigError

    with pytest.raises(HubConfigError, match="ERUMLAB_HUB_CLIENT_SECRET"):
        load(monkeypatch, tmp_path, ERUMLAB_HUB_CLIENT_SECRET="")


@pytest.mark.parametrize(("spawner", "name"), [("local", "erumlab-local"),
                                                ("docker", "erumlab-docker")])
def test_each_spawner_is_an_installed_entry_point(monkeypatch, tmp_path, spawner, name):
    c = load(monkeypatch, tmp_path, ERUMLAB_HUB_SPAWNER=spawner)
    assert c.JupyterHub.spawner_class == name
    (point,) = [p for p in entry_points(group="jupyterhub.spawners") if p.name == name]
    assert point.load().__name__.startswith("Erumlab")


def test_an_unknown_spawner_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="ERUMLAB_HUB_SPAWNER"):
        load(monkeypatch, tmp_path, ERUMLAB_HUB_SPAWNER="slurm")


def test_user_servers_get_allow_root_exactly_when_the_hub_runs_as_root():
    from erumlab_spawners.local import ErumlabLocalSpawner

    spawner = ErumlabLocalSpawner()
    assert spawner.allow_root is (os.geteuid() == 0)
    spawner.allow_root = True
    assert "--allow-root" in spawner.get_args()
    spawner.allow_root = False
    assert "--allow-root" not in spawner.get_args()
