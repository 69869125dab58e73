"""The scale-out examples, loaded into the software they configure, without a cluster.

deploy/kubernetes/z2jh-values.yaml (Zero to JupyterHub chart 4.x): the chart's
hub configuration is re-enacted here for the keys the file sets (``chart_config``
below, after the chart's files/hub/jupyterhub_config.py), with the Kubernetes
Secret "erumlab-hub" played by environment variables. KubeSpawner then loads
each profile and builds the pod it would create, with the Kubernetes client
left unconfigured: nothing talks to a cluster. The chart's own schema and
templates are not checked here (no Helm).

deploy/slurm/jupyterhub_config_slurm.py: loaded by JupyterHub's config loader;
its spawner starts a server with the portal and the Slurm commands (sbatch,
squeue, scancel) played by fakes, so the job script is the one batchspawner
would submit.

Both are compared with the hub's own configuration (spawners/jupyterhub_config.py)
and the portal's default profiles, so that the three stay in step.
"""

from __future__ import annotations

import ast
import copy
import os
import pwd
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from batchspawner import SlurmSpawner
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Hub, Server
from kubespawner import KubeSpawner
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from erumlab.testing.aio import run_coroutine
from erumlab_spawners.portal import PortalSessionMixin
from erumlab_spawners.settings import HubConfigError

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "kubernetes" / "z2jh-values.yaml"
SLURM_CONFIG = ROOT / "deploy" / "slurm" / "jupyterhub_config_slurm.py"
HUB_CONFIG = ROOT / "spawners" / "jupyterhub_config.py"
DEFAULT_PROFILES = (ROOT / "platform" / "erumlab" / "sessions" / "migrations"
                    / "0002_default_profiles.py")

PORTAL = "https://erumlab.example.org"
HUB = "https://hub.erumlab.example.org"
# The Kubernetes Secret the values file reads (docs/scale-out.md says how to create it).
K8S_SECRET = {"name": "erumlab-hub",
              "data": {"client-secret": "k8s-client-secret", "api-token": "k8s-service-token"}}
# What the chart generates for a hub.services entry without a token.
CHART_GENERATED_TOKEN = "chart-generated-token"

HUB_ENV = {
    "ERUMLAB_PORTAL_URL": PORTAL,
    "ERUMLAB_HUB_URL": HUB,
    "ERUMLAB_HUB_CLIENT_SECRET": "client-secret",
    "ERUMLAB_HUB_API_TOKEN": "service-token",
}


def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    for name in [n for n in os.environ
                 if n.startswith(("ERUMLAB_", "OAUTH_", "KUBERNETES_SERVICE"))]:
        monkeypatch.delenv(name)
    for name, value in {**HUB_ENV, "ERUMLAB_HUB_DATA_DIR": str(tmp_path / "hub"),
                        **env}.items():
        monkeypatch.setenv(name, value)


def hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:
    """spawners/jupyterhub_config.py, as the hub loads it on one machine."""
    clean_env(monkeypatch, tmp_path)
    config = Config()
    exec(compile(HUB_CONFIG.read_text(), str(HUB_CONFIG), "exec"),  # noqa: S102
         {"get_config": lambda: config})
    return config


def portal_default_profiles() -> dict[str, dict[str, Any]]:
    """The profiles a fresh portal has, read from the migration that creates them."""
    profiles = {}
    for node in ast.walk(ast.parse(DEFAULT_PROFILES.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "create":
            fields = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            profiles[fields["slug"]] = {"gpus": 0, "gpu_share": 1, **fields}
    assert set(profiles) >= {"cpu", "gpu"}, profiles
    return profiles


def spec(profile: dict[str, Any]) -> dict[str, Any]:
    """What the portal grants the hub for a profile (Profile.as_spec)."""
    return {key: profile[key] for key in ("slug", "name", "cpus", "memory_gb", "gpus",
                                          "gpu_share")}


def make_user(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, id=1, url=f"/user/{name}/", escaped_name=name,
                           server=Server(base_url=f"/user/{name}/"), settings={},
                           spawners={}, orm_user=None)


class FakePortal:
    """The portal's hub API (/api/v1/hub/...) as PortalSessionMixin calls it."""

    def __init__(self, granted: dict[str, Any] | None, status: int = 200) -> None:
        self.granted, self.status, self.calls = granted, status, []

    def __call__(self, method: str, path: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append((method, path, kwargs.get("json")))
        if path == "hub/sessions/authorize/":
            body = ({"profile": self.granted, "api_token": "erl_server_token",
                     "portal_url": PORTAL} if self.status == 200
                    else {"detail": "Your quota allows 1 running server(s)."})
            return SimpleNamespace(status_code=self.status, text=str(body), json=lambda: body)
        return SimpleNamespace(status_code=200, text="{}", json=dict)

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _ in self.calls]


# --- Kubernetes: the Zero to JupyterHub values --------------------------------------


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """hub.extraEnv as Kubernetes fills it in from the Secret."""
    for name, value in values()["hub"]["extraEnv"].items():
        if isinstance(value, dict):
            ref = value["valueFrom"]["secretKeyRef"]
            assert ref["name"] == K8S_SECRET["name"], name
            value = K8S_SECRET["data"][ref["key"]]
        monkeypatch.setenv(name, value)


def chart_config(monkeypatch: pytest.MonkeyPatch) -> Config:
    """The traitlets config the chart's hub builds from the values (z2jh 4.x,
    files/hub/jupyterhub_config.py), for the keys the values file sets."""
    secret_env(monkeypatch)
    v = copy.deepcopy(values())
    hub, single = v["hub"], v["singleuser"]
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    for trait, key in (("uid", "uid"), ("fs_gid", "fsGid"), ("environment", "extraEnv"),
                       ("profile_list", "profileList")):
        if key in single:
            c.KubeSpawner[trait] = single[key]
    c.Spawner.default_url = single["defaultUrl"]
    storage = single["storage"]
    if storage["type"] == "dynamic":  # the chart's default name templates
        c.KubeSpawner.pvc_name_template = "claim-{username}{servername}"
        c.KubeSpawner.storage_pvc_ensure = True
        c.KubeSpawner.storage_capacity = storage["capacity"]
        c.KubeSpawner.volumes = [{"name": "volume-{username}{servername}",
                                  "persistentVolumeClaim": {
                                      "claimName": "claim-{username}{servername}"}}]
        c.KubeSpawner.volume_mounts = [{"mountPath": storage["homeMountPath"],
                                        "name": "volume-{username}{servername}"}]
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    cull = v.get("cull", {})
    if cull.get("enabled"):
        c.JupyterHub.services.append({"name": "jupyterhub-idle-culler", "command": [
            "python3", "-m", "jupyterhub_idle_culler", "--url=http://localhost:8081/hub/api",
            f"--timeout={cull['timeout']}", f"--cull-every={cull['every']}",
            "--cull-admin-users=false"]})
        c.JupyterHub.load_roles.append({
            "name": "jupyterhub-idle-culler", "services": ["jupyterhub-idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    for key, service in hub.get("services", {}).items():
        service.setdefault("name", key)
        service.pop("apiToken", None)
        service["api_token"] = CHART_GENERATED_TOKEN
        c.JupyterHub.services.append(service)
    for key, role in hub.get("loadRoles", {}).items():
        role.setdefault("name", key)
        c.JupyterHub.load_roles.append(role)
    for app, section in hub.get("config", {}).items():
        if app == "JupyterHub":
            for secret in ("proxy_auth_token", "cookie_secret", "services"):
                section.pop(secret, None)
        c[app].update(section)
    for _, code in sorted(hub.get("extraConfig", {}).items()):
        exec(compile(code, str(VALUES), "exec"), {"c": c, "__name__": "z2jh_extra_config"})  # noqa: S102
    return c


@pytest.fixture
def k8s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.delenv("ERUMLAB_HUB_API_TOKEN")
    # Building a pod needs no cluster; starting the spawner would look for one.
    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **kwargs: None)
    return chart_config(monkeypatch)


def kube_spawner(config: Config, **traits: Any) -> KubeSpawner:
    """The hub's spawner for user "ada" (call inside a running event loop)."""
    return config.JupyterHub.spawner_class(
        config=config, user=make_user("ada"), hub=Hub(), _mock=True,
        api_token="hub-token", oauth_client_id="jupyterhub-user-ada", **traits)


def profile_by_slug() -> dict[str, dict[str, Any]]:
    return {p["slug"]: p for p in values()["singleuser"]["profileList"]}


# Settings that hold secrets: client_secret, apiToken, secretToken, cookieSecret, password...
SECRETISH = re.compile(r"(secret|token|password)$", re.IGNORECASE)


def test_the_values_hold_no_secrets():
    def leaves(node: Any, path: tuple = ()):  # noqa: ANN202
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, (*path, str(key)))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from leaves(item, (*path, str(index)))
        else:
            yield path, node

    found = [".".join(path) for path, value in leaves(values())
             if SECRETISH.search(path[-1]) and value
             and "secretKeyRef" not in path and "extraConfig" not in path]
    assert found == []
    extra_env = values()["hub"]["extraEnv"]
    for name in ("OAUTH_CLIENT_SECRET", "ERUMLAB_HUB_API_TOKEN"):
        assert extra_env[name]["valueFrom"]["secretKeyRef"]["name"] == "erumlab-hub"
    assert values()["hub"]["services"]["erumlab-portal"] == {}  # no apiToken in the file


def test_hub_config_names_real_settings(k8s):
    """Each hub.config entry is a configurable trait of its class (traitlets would
    only warn about a misspelt one, and the hub would run without it)."""
    classes = {"JupyterHub": JupyterHub, "GenericOAuthenticator": GenericOAuthenticator,
               "ErumlabKubeSpawner": k8s.JupyterHub.spawner_class}
    for section, settings in values()["hub"]["config"].items():
        known = set(classes[section].class_trait_names(config=True))
        assert set(settings) <= known, (section, set(settings) - known)


def test_users_sign_in_through_the_portal_as_on_the_hub_elsewhere(k8s, monkeypatch, tmp_path):
    hub = JupyterHub(config=k8s)
    assert hub.authenticator_class is GenericOAuthenticator
    oauth = GenericOAuthenticator(config=k8s)
    assert oauth.client_id == "jupyterhub"
    assert oauth.client_secret == K8S_SECRET["data"]["client-secret"]  # OAUTH_CLIENT_SECRET
    assert oauth.authorize_url == f"{PORTAL}/o/authorize/"
    assert oauth.token_url == f"{PORTAL}/o/token/"
    assert oauth.userdata_url == f"{PORTAL}/o/userinfo/"
    assert oauth.oauth_callback_url == f"{HUB}/hub/oauth_callback"

    elsewhere = GenericOAuthenticator(config=hub_config(monkeypatch, tmp_path))
    for name in ("login_service", "client_id", "scope", "username_claim", "auto_login",
                 "manage_groups", "auth_state_groups_key", "admin_groups", "allow_all",
                 "authorize_url", "oauth_callback_url"):
        assert getattr(oauth, name) == getattr(elsewhere, name), name


def test_the_portal_service_has_the_shared_token_and_the_hubs_role(k8s, monkeypatch, tmp_path):
    services = {s["name"]: s for s in k8s.JupyterHub.services}
    assert services["erumlab-portal"]["api_token"] == K8S_SECRET["data"]["api-token"]
    assert "command" in services["jupyterhub-idle-culler"]
    roles = {r["name"]: r for r in k8s.JupyterHub.load_roles}
    assert k8s.ErumlabKubeSpawner.portal_token == K8S_SECRET["data"]["api-token"]

    elsewhere = hub_config(monkeypatch, tmp_path)
    [portal_role] = [r for r in elsewhere.JupyterHub.load_roles if r["name"] == "erumlab-portal"]
    assert roles["erumlab-portal"] == portal_role
    [culler] = [s for s in elsewhere.JupyterHub.services if s["name"] == "idle-culler"]
    assert f"--timeout={values()['cull']['timeout']}" in culler["command"]


def test_each_portal_default_profile_has_its_kubernetes_profile():
    listed = profile_by_slug()
    for slug, portal in portal_default_profiles().items():
        profile = listed[slug]
        override = profile["kubespawner_override"]
        assert profile["display_name"] == portal["name"]
        assert override["cpu_limit"] == portal["cpus"]
        assert override["mem_limit"] == f"{portal['memory_gb']:g}G"
        gpus = override.get("extra_resource_limits", {}).get("nvidia.com/gpu", "0")
        assert int(gpus) == portal["gpus"], slug
    assert [p["slug"] for p in values()["singleuser"]["profileList"] if p.get("default")] \
        == ["cpu"]


def test_profile_overrides_are_kubespawner_settings():
    """KubeSpawner sets overrides with setattr: a misspelt name would be ignored."""
    known = set(KubeSpawner.class_trait_names(config=True))
    for profile in values()["singleuser"]["profileList"]:
        assert set(profile["kubespawner_override"]) <= known, profile["slug"]


def test_kubespawner_accepts_the_profile_list(k8s):
    """profile_list is a validated trait: a malformed one fails as the spawner is made."""
    async def made(config: Config) -> Any:
        return kube_spawner(config).profile_list

    assert run_coroutine(made(k8s)) == values()["singleuser"]["profileList"]
    broken = copy.deepcopy(k8s)
    broken.KubeSpawner.profile_list = "gpu"
    with pytest.raises(TraitError, match="profile_list"):
        run_coroutine(made(broken))


GIB = 1024 ** 3
EXPECTED_PODS = {
    "cpu": {"image": "erumlab/singleuser:latest", "cpu": (1, 2), "memory": (2, 4), "gpu": {},
            "gpu_node": False},
    "gpu": {"image": "erumlab/singleuser:cuda", "cpu": (4, 4), "memory": (16, 16),
            "gpu": {"nvidia.com/gpu": "1"}, "gpu_node": True},
    "gpu-shared": {"image": "erumlab/singleuser:cuda", "cpu": (1, 2), "memory": (8, 8),
                   "gpu": {"nvidia.com/gpu.shared": "1"}, "gpu_node": True},
}


def pod_json(spawner: KubeSpawner, manifest: Any) -> dict:
    """The pod as it would go to the Kubernetes API."""
    return spawner.api.api_client.sanitize_for_serialization(manifest)


@pytest.mark.parametrize("slug", sorted(EXPECTED_PODS))
def test_each_profile_becomes_the_pod_it_promises(k8s, slug):
    async def build() -> dict:
        spawner = kube_spawner(k8s)
        spawner.user_options = {"profile": slug}
        await spawner.load_user_options()
        return pod_json(spawner, await spawner.get_pod_manifest())

    pod = run_coroutine(build())
    expected = EXPECTED_PODS[slug]
    [container] = pod["spec"]["containers"]
    assert container["image"] == expected["image"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert (requests["cpu"], limits["cpu"]) == expected["cpu"]
    assert (requests["memory"], limits["memory"]) == tuple(g * GIB for g in expected["memory"])
    assert {k: v for k, v in limits.items() if k.startswith("nvidia.com/")} == expected["gpu"]
    tolerations = {t["key"] for t in pod["spec"].get("tolerations", [])}
    if expected["gpu_node"]:
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert "nvidia.com/gpu" in tolerations
    else:
        assert not pod["spec"].get("nodeSelector")
        assert "nvidia.com/gpu" not in tolerations
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ERUMLAB_URL"] == PORTAL
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert (env.get("NVIDIA_VISIBLE_DEVICES") == "void") is (not expected["gpu_node"])
    [home] = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert home["persistentVolumeClaim"]["claimName"] == "claim-ada"
    assert {"mountPath": "/home/jovyan", "name": home["name"]} in container["volumeMounts"]
    assert container["securityContext"]["runAsUser"] == 1000
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000


def start_pod(k8s: Config, portal: FakePortal, user_options: dict) -> tuple[Any, Any]:
    """The hub's start up to the Kubernetes API: the portal is asked, KubeSpawner
    loads the profile and builds the pod; creating it is where the fake stops."""
    async def run():  # noqa: ANN202
        spawner = kube_spawner(k8s)
        spawner._portal_call = portal
        spawner.user_options = user_options

        async def up_to_the_api() -> tuple[str, int]:
            await spawner.load_user_options()
            spawner.built = pod_json(spawner, await spawner.get_pod_manifest())
            return "10.0.0.7", 8888

        spawner._start = up_to_the_api
        result = await spawner.start()
        return spawner, result

    return run_coroutine(run())


def test_the_portal_decides_before_a_pod_is_built(k8s):
    assert issubclass(k8s.JupyterHub.spawner_class, PortalSessionMixin)
    gpu = spec(portal_default_profiles()["gpu"])
    portal = FakePortal(gpu)
    spawner, result = start_pod(k8s, portal, {"profile": "gpu", "mem_limit": "1T"})
    assert result == ("10.0.0.7", 8888)
    assert portal.calls[0] == ("POST", "hub/sessions/authorize/",
                               {"user": "ada", "server": "", "profile": "gpu"})
    assert portal.paths[1] == "hub/sessions/started/"
    assert spawner.user_options == {"profile": "gpu"}
    [container] = spawner.built["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ERUMLAB_API_TOKEN"] == "erl_server_token"
    assert "CUDA_VISIBLE_DEVICES" not in env  # the device plugin's GPU stays visible


def test_without_a_choice_the_portal_picks_the_profile(k8s):
    portal = FakePortal(spec(portal_default_profiles()["cpu"]))
    spawner, _ = start_pod(k8s, portal, {})
    assert spawner.user_options == {"profile": "cpu"}
    assert "nvidia.com/gpu" not in spawner.built["spec"]["containers"][0]["resources"]["limits"]


def test_a_refusal_builds_no_pod(k8s):
    portal = FakePortal(None, status=403)
    with pytest.raises(web.HTTPError) as refused:
        start_pod(k8s, portal, {"profile": "gpu"})
    assert refused.value.status_code == 403
    assert portal.paths == ["hub/sessions/authorize/"]  # nothing started, nothing to end


# --- Slurm: batchspawner ---------------------------------------------------------------


def slurm_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> JupyterHub:
    clean_env(monkeypatch, tmp_path, **env)
    hub = JupyterHub()
    hub.load_config_file(str(SLURM_CONFIG))
    return hub


class FakeSlurm:
    """sbatch, squeue and scancel as batchspawner runs them (through sudo)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str | None, dict | None]] = []
        self.running = False

    async def __call__(self, cmd: str, input: str | None = None,  # noqa: A002
                      env: dict | None = None) -> str:
        self.commands.append((cmd, input, env))
        if "sbatch" in cmd:
            self.running = True
            return "4242"
        if "squeue" in cmd:
            return "RUNNING node07" if self.running else ""
        if "scancel" in cmd:
            self.running = False
        return ""

    @property
    def script(self) -> str:
        [(_, script, _)] = [c for c in self.commands if "sbatch" in c[0]]
        return script


def slurm_spawner(hub: JupyterHub, portal: FakePortal) -> tuple[Any, FakeSlurm]:
    # batchspawner submits as the user, who must exist on the hub's host: here, us.
    username = pwd.getpwuid(os.getuid()).pw_name
    spawner = hub.spawner_class(config=hub.config, user=make_user(username), hub=Hub(),
                                api_token="hub-token", oauth_client_id="client")
    slurm = FakeSlurm()
    spawner.run_command = slurm
    spawner._portal_call = portal
    spawner.db = SimpleNamespace(commit=lambda: None)
    spawner.mock_port = 43210  # batchspawner-singleuser would report it to the hub API
    spawner.startup_poll_interval = 0.01
    return spawner, slurm


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def test_the_slurm_hub_is_the_hub_with_another_spawner(monkeypatch, tmp_path):
    hub = slurm_hub(monkeypatch, tmp_path)
    assert hub.spawner_class.__name__ == "ErumlabSlurmSpawner"
    assert issubclass(hub.spawner_class, PortalSessionMixin)
    assert issubclass(hub.spawner_class, SlurmSpawner)
    assert hub.authenticator_class is GenericOAuthenticator
    assert hub.hub_ip == "0.0.0.0"  # the compute nodes call the hub API
    assert hub.cleanup_servers is False  # jobs outlive a hub restart

    elsewhere = hub_config(monkeypatch, tmp_path)
    assert hub.config.GenericOAuthenticator == elsewhere.GenericOAuthenticator
    assert hub.services == elsewhere.JupyterHub.services
    assert hub.load_roles == elsewhere.JupyterHub.load_roles
    slurm = hub.config.ErumlabSlurmSpawner
    assert slurm.portal_api_url == f"{PORTAL}/api/v1"
    assert slurm.portal_token == HUB_ENV["ERUMLAB_HUB_API_TOKEN"]


def test_a_gpu_profile_becomes_a_gpu_job(monkeypatch, tmp_path):
    hub = slurm_hub(monkeypatch, tmp_path, ERUMLAB_SLURM_PROLOGUE="source /opt/erumlab/activate",
                    ERUMLAB_SLURM_ACCOUNT="erum-ml")
    portal = FakePortal(spec(portal_default_profiles()["gpu"]))
    spawner, slurm = slurm_spawner(hub, portal)
    # Options only the portal decides on: ignored when asked for through the REST API.
    spawner.user_options = {"profile": "gpu", "gres": "gpu:8", "partition": "big"}

    host, port = run_coroutine(spawner.start())

    assert (host, port) == ("node07", 43210)
    assert portal.calls[0][2]["profile"] == "gpu"
    submit, script, env = slurm.commands[0]
    assert submit == f"sudo -E -u {spawner.user.name} sbatch --parsable"
    lines = sbatch_lines(script)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gres=gpu:1", "#SBATCH --mem=16G",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --time=08:00:00",
                 "#SBATCH --account=erum-ml"):
        assert line in lines, (line, script)
    assert not [line for line in lines if "gpu:8" in line or "big" in line]
    body = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert "source /opt/erumlab/activate" in body
    [command] = [line for line in body if "jupyterhub-singleuser" in line and "echo" not in line]
    assert command.split()[:3] == ["srun", "batchspawner-singleuser", "jupyterhub-singleuser"]
    # The server's portal token travels in the environment sbatch exports to the job.
    assert env["ERUMLAB_API_TOKEN"] == "erl_server_token"
    assert env["ERUMLAB_URL"] == PORTAL
    assert "CUDA_VISIBLE_DEVICES" not in env  # Slurm sets it for the job's GPUs
    [export] = [line for line in lines if line.startswith("#SBATCH --export=")]
    assert {"ERUMLAB_API_TOKEN", "ERUMLAB_URL", "JUPYTERHUB_API_TOKEN"} \
        <= set(export.removeprefix("#SBATCH --export=").split(","))

    run_coroutine(spawner.stop())
    assert any(cmd.endswith("scancel 4242") for cmd, _, _ in slurm.commands)
    assert portal.paths[-1] == "hub/sessions/ended/"


def test_a_cpu_profile_becomes_a_cpu_job(monkeypatch, tmp_path):
    hub = slurm_hub(monkeypatch, tmp_path, ERUMLAB_SLURM_CPU_PARTITION="standard",
                    ERUMLAB_SLURM_RUNTIME="1-00:00:00")
    spawner, slurm = slurm_spawner(hub, FakePortal(spec(portal_default_profiles()["cpu"])))
    spawner.user_options = {}
    run_coroutine(spawner.start())
    lines = sbatch_lines(slurm.script)
    for line in ("#SBATCH --partition=standard", "#SBATCH --mem=4G",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --time=1-00:00:00"):
        assert line in lines, (line, slurm.script)
    assert not [line for line in lines if "--gres" in line or "--account" in line]
    assert spawner.user_options == {"profile": "cpu"}


def test_a_refusal_submits_no_job(monkeypatch, tmp_path):
    hub = slurm_hub(monkeypatch, tmp_path)
    spawner, slurm = slurm_spawner(hub, FakePortal(None, status=403))
    spawner.user_options = {"profile": "gpu"}
    with pytest.raises(web.HTTPError) as refused:
        run_coroutine(spawner.start())
    assert refused.value.status_code == 403
    assert slurm.commands == []


def test_a_missing_hub_configuration_is_named(monkeypatch, tmp_path):
    with pytest.raises(HubConfigError, match="ERUMLAB_HUB_BASE_CONFIG"):
        slurm_hub(monkeypatch, tmp_path, ERUMLAB_HUB_BASE_CONFIG=str(tmp_path / "missing.py"))
