"""JupyterHub for erumlab: users sign in through the portal (OpenID Connect).

Declarative: every value comes from the environment, which `erumlab hub` fills
in from the portal's settings on a single machine, and docker-compose.yml in
production. Secrets may be given as NAME_FILE.
"""

import os
import sys
from pathlib import Path

from erumlab_spawners.settings import env_bool, env_int, env_list, env_url, env_value

c = get_config()  # noqa: F821 (provided by JupyterHub)

portal_url = env_url("ERUMLAB_PORTAL_URL")  # as the browser sees it
portal_internal = env_url("ERUMLAB_PORTAL_INTERNAL_URL", portal_url)  # as the hub reaches it
hub_url = env_url("ERUMLAB_HUB_URL", "http://127.0.0.1:8001")
data_dir = Path(env_value("ERUMLAB_HUB_DATA_DIR"))
data_dir.mkdir(parents=True, exist_ok=True)

# Network: the proxy serves the public URL; hub API and proxy API stay internal.
c.JupyterHub.bind_url = env_value("ERUMLAB_HUB_BIND_URL", hub_url)
c.JupyterHub.hub_ip = env_value("ERUMLAB_HUB_HUB_IP", "127.0.0.1")
c.JupyterHub.hub_port = env_int("ERUMLAB_HUB_INTERNAL_PORT", 8081)
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{env_int('ERUMLAB_HUB_PROXY_API_PORT', 8002)}"
)
c.ConfigurableHTTPProxy.pid_file = str(data_dir / "proxy.pid")

# State in the hub's own folder.
c.JupyterHub.db_url = env_value("ERUMLAB_HUB_DB_URL", f"sqlite:///{data_dir / 'jupyterhub.sqlite'}")
c.JupyterHub.cookie_secret_file = str(data_dir / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True

# Single sign-on: the portal is the OpenID Connect provider.
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.login_service = "erumlab"
c.GenericOAuthenticator.client_id = env_value("ERUMLAB_HUB_CLIENT_ID", "jupyterhub")
c.GenericOAuthenticator.client_secret = env_value("ERUMLAB_HUB_CLIENT_SECRET")
c.GenericOAuthenticator.oauth_callback_url = f"{hub_url}/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = f"{portal_url}/o/authorize/"
c.GenericOAuthenticator.token_url = f"{portal_internal}/o/token/"
c.GenericOAuthenticator.userdata_url = f"{portal_internal}/o/userinfo/"
c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.auto_login = True
# The portal's collaborations become hub groups; portal administrators are hub admins.
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
c.GenericOAuthenticator.admin_groups = {"erumlab-admins"}
allowed_groups = env_list("ERUMLAB_HUB_ALLOWED_GROUPS")
if allowed_groups:
    c.GenericOAuthenticator.allowed_groups = allowed_groups | {"erumlab-admins"}
else:
    c.GenericOAuthenticator.allow_all = True

# The portal drives servers through the REST API with its service token.
c.JupyterHub.services = [
    {"name": "erumlab-portal", "api_token": env_value("ERUMLAB_HUB_API_TOKEN")},
]
c.JupyterHub.load_roles = [
    {
        "name": "erumlab-portal",
        "services": ["erumlab-portal"],
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users",
                   "list:users"],
    }
]

# The idle culler stops servers nobody used for a while. A kernel busy with work
# counts as use: the erumlab.serverext extension in each server records it, and
# servers report their activity to the hub every ERUMLAB_HUB_ACTIVITY_SECONDS.
activity_seconds = env_int("ERUMLAB_HUB_ACTIVITY_SECONDS", 300)
c.JupyterHub.last_activity_interval = activity_seconds
c.Spawner.environment = {
    "JUPYTERHUB_ACTIVITY_INTERVAL": str(activity_seconds),
    "ERUMLAB_BUSY_CHECK_SECONDS": str(max(1, min(30, activity_seconds // 2))),
}
cull_timeout = env_int("ERUMLAB_HUB_CULL_IDLE_SECONDS", 3600)
if cull_timeout > 0:
    c.JupyterHub.services.append({
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={cull_timeout}",
                    f"--cull-every={env_int('ERUMLAB_HUB_CULL_EVERY_SECONDS', 300)}"],
    })
    c.JupyterHub.load_roles.append({
        "name": "idle-culler", "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    })

# Spawner: local processes on one machine, Docker containers in production.
spawner = env_value("ERUMLAB_HUB_SPAWNER", "local")
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = env_int("ERUMLAB_HUB_HTTP_TIMEOUT", 60)
c.Spawner.start_timeout = env_int("ERUMLAB_HUB_START_TIMEOUT", 120)
# A start answers the portal after this many seconds at the latest and goes on
# in the background (the portal then follows its progress events); refusals and
# "all GPUs busy" come back sooner, with their reason.
c.JupyterHub.slow_spawn_timeout = env_int("ERUMLAB_HUB_SLOW_SPAWN_TIMEOUT", 3)
# Both spawners ask the portal before a start (profiles, quotas, the server's
# API token) and allocate GPUs from one allocator kept in the hub's folder.
for spawner_class in ("ErumlabLocalSpawner", "ErumlabDockerSpawner"):
    c[spawner_class].portal_api_url = f"{portal_internal}/api/v1"
    c[spawner_class].portal_token = env_value("ERUMLAB_HUB_API_TOKEN")
    c[spawner_class].gpu_devices = env_value("ERUMLAB_GPUS", "")
    c[spawner_class].gpu_state_file = str(data_dir / "gpu-allocations.sqlite")
if spawner == "local":
    c.JupyterHub.spawner_class = "erumlab-local"
    homes = env_value("ERUMLAB_HUB_HOMES", str(data_dir / "homes"))
    c.ErumlabLocalSpawner.home_dir_template = os.path.join(homes, "{username}")
    # Off: servers share the hub's account (a workstation or a trusted group).
    # On (hub as root): each user's server runs as their own system account.
    c.ErumlabLocalSpawner.system_users = env_bool("ERUMLAB_HUB_SYSTEM_USERS", False)
    c.ErumlabLocalSpawner.system_user_template = env_value("ERUMLAB_HUB_SYSTEM_USER_TEMPLATE",
                                                           "{username}")
    c.ErumlabLocalSpawner.create_system_users = env_bool("ERUMLAB_HUB_CREATE_SYSTEM_USERS",
                                                         False)
elif spawner == "docker":
    c.JupyterHub.spawner_class = "erumlab-docker"
    c.DockerSpawner.image = env_value("ERUMLAB_HUB_SINGLEUSER_IMAGE", "erumlab/singleuser:latest")
    c.DockerSpawner.network_name = env_value("ERUMLAB_HUB_DOCKER_NETWORK", "erumlab")
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True
    c.DockerSpawner.notebook_dir = "/home/jovyan"
    c.JupyterHub.hub_connect_ip = env_value("ERUMLAB_HUB_CONNECT_IP", "hub")
else:
    raise ValueError(f"ERUMLAB_HUB_SPAWNER: expected 'local' or 'docker', got {spawner!r}")
