"""Spawn-to-ready from the portal versus a bare JupyterHub, and a start/stop soak.

Two hubs run side by side on this machine:

- erumlab: the portal (gunicorn) and its hub with the erumlab local spawner.
  A start is what a user's click does: POST /notebooks/start/ with a logged-in
  session and a CSRF token (the portal checks profile and quota, asks the hub;
  the hub asks the portal again, allocates GPUs, issues the server's token,
  starts the server).
- bare: a plain JupyterHub with SimpleLocalProcessSpawner, the erumlab
  spawner's base class, and the same server arguments, started through its
  REST API with a service token.

Both are timed from the request until the hub reports the server ready (the
bench polls each hub's API every 50 ms). Rounds alternate the two, one user at
a time and then --users at once, so drifting load hits both alike. Printed:
median and p95 per case and the ratios erumlab / bare (target <= 1.2).

Then a soak: one user starts and stops their server --cycles times through the
portal, alternating the CPU and the GPU profile (two GPUs configured by id, so
no GPU is needed). Afterwards there must be no server process left, no GPU
allocation, no open grant and no live server token.

    .venv/bin/python bench/spawn_bench.py [--rounds 3] [--users 10] [--cycles 30]

Runs on embedded defaults (temporary SQLite and Redis) unless DATABASE_URL /
REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from benchenv import bench_platform  # noqa: E402

PASSWORD = "spawn-bench-password"  # noqa: S105 (a throw-away platform's users)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=10, help="concurrent users")
    parser.add_argument("--cycles", type=int, default=30, help="start/stop cycles of the soak")
    args = parser.parse_args()

    from erumlab.testing.hub import TestHub
    from erumlab.testing.processes import free_port

    folder = Path(tempfile.mkdtemp(prefix="erumlab-spawn-bench-"))
    hub = TestHub(folder / "erumlab", env={"ERUMLAB_GPUS": "0,1"})
    web_port = free_port()
    os.environ.update(
        ERUMLAB_PORTAL_URL=f"http://127.0.0.1:{web_port}", ERUMLAB_HUB_URL=hub.url,
        ERUMLAB_HUB_INTERNAL_PORT=hub.env["ERUMLAB_HUB_INTERNAL_PORT"], ERUMLAB_GPUS="0,1",
        ERUMLAB_BIND=f"127.0.0.1:{web_port}", ERUMLAB_WEB_WORKERS="2",
        ERUMLAB_SESSION_MAX_GPUS="1")
    data_dir = None
    try:
        with bench_platform() as data_dir:
            run(hub, folder, web_port, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


class Portal:
    """A logged-in browser session on the portal, as requests sees it."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.session = base, requests.Session()
        self._post("/accounts/login/", {"username": username, "password": PASSWORD})

    def _post(self, path: str, data: dict) -> requests.Response:
        page = self.session.get(f"{self.base}{path if 'login' in path else '/notebooks/'}",
                                timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = self.session.post(f"{self.base}{path}",
                                     data={**data, "csrfmiddlewaretoken": token}, timeout=60)
        response.raise_for_status()
        return response

    def start(self, profile: str) -> None:
        page = self._post("/notebooks/start/", {"profile": profile})
        if "Could not start" in page.text or "alert error" in page.text:
            raise RuntimeError(f"the portal refused the start: {page.text[-800:]}")

    def stop(self) -> None:
        self._post("/notebooks/stop/", {})


class HubApi:
    def __init__(self, api_url: str, token: str) -> None:
        self.api_url, self.session = api_url, requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def server(self, name: str) -> dict | None:
        response = self.session.get(f"{self.api_url}/users/{name}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return (response.json().get("servers") or {}).get("")

    def wait(self, name: str, *, ready: bool, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(name)
            if (server is not None and server.get("ready")) if ready else server is None:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{name}'s server not {'ready' if ready else 'stopped'} "
                           f"after {timeout} s")

    def create(self, name: str) -> None:
        response = self.session.post(f"{self.api_url}/users/{name}", timeout=10)
        if response.status_code not in (201, 409):
            response.raise_for_status()

    def start(self, name: str) -> None:
        response = self.session.post(f"{self.api_url}/users/{name}/server", timeout=120)
        if response.status_code not in (201, 202):
            raise RuntimeError(f"bare hub: {response.status_code} {response.text[:300]}")

    def stop(self, name: str) -> None:
        self.session.delete(f"{self.api_url}/users/{name}/server", timeout=60)


def bare_hub_config(folder: Path, token: str) -> tuple[Path, str, str]:
    """A plain JupyterHub: SimpleLocalProcessSpawner with the erumlab servers' arguments."""
    from erumlab.testing.processes import free_port

    port, hub_port, proxy_port = free_port(), free_port(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "jupyterhub_config.py"
    config.write_text(f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.pid_file = "{folder / 'proxy.pid'}"
c.JupyterHub.db_url = "sqlite:///{folder / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = "{folder / 'cookie_secret'}"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "null"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{folder / 'homes'}/{{username}}"
c.Spawner.default_url = "/lab"
c.Spawner.args = {['--allow-root'] if os.geteuid() == 0 else []!r}
c.JupyterHub.services = [{{"name": "bench", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
    "scopes": ["admin:users", "admin:servers", "list:users", "read:users"]}}]
""")
    return config, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{hub_port}/hub/api"


def timed(start, wait) -> float:  # noqa: ANN001
    began = time.perf_counter()
    start()
    wait()
    return time.perf_counter() - began


def run(hub, folder: Path, web_port: int, args: argparse.Namespace) -> None:  # noqa: ANN001
    from django.conf import settings

    from erumlab.accounts.models import User
    from erumlab.cli import web_argv
    from erumlab.sessions.services import hub_client_ensure
    from erumlab.testing.processes import running, wait_for_http

    hub_client_ensure()
    names = [f"user{i}" for i in range(args.users)]
    for name in [*names, "soak"]:
        User.objects.create_user(username=name, email=f"{name}@example.org", password=PASSWORD)
    bare_token = secrets.token_hex(16)
    bare_config, bare_url, bare_api = bare_hub_config(folder / "bare", bare_token)
    portal_url = f"http://127.0.0.1:{web_port}"

    with ExitStack() as stack:
        web_log = folder / "web.log"
        web = stack.enter_context(running(web_argv(), env=dict(os.environ), log=web_log))
        wait_for_http(f"{portal_url}/healthz", timeout=60, process=web, log=web_log)
        erumlab_hub = stack.enter_context(hub.run())
        bare_log = folder / "bare.log"
        bare = stack.enter_context(running(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(bare_config)],
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            log=bare_log))
        wait_for_http(f"{bare_api}/", timeout=60, process=bare, log=bare_log, status=200)

        ours = HubApi(hub.internal_api_url, settings.ERUMLAB_HUB_API_TOKEN)
        theirs = HubApi(bare_api, bare_token)
        portals = {name: Portal(portal_url, name) for name in names}
        for name in names:
            theirs.create(name)

        def erumlab_spawn(name: str) -> float:
            return timed(lambda: portals[name].start("cpu"), lambda: ours.wait(name, ready=True))

        def bare_spawn(name: str) -> float:
            return timed(lambda: theirs.start(name), lambda: theirs.wait(name, ready=True))

        def stop_all(api: HubApi, via_portal: bool) -> None:
            for name in names:
                portals[name].stop() if via_portal else api.stop(name)
            for name in names:
                api.wait(name, ready=False)

        # Warm-up: the first request of each gunicorn worker imports the whole portal.
        erumlab_spawn(names[0]), bare_spawn(names[0])
        stop_all(ours, True), stop_all(theirs, False)

        results: dict[str, list[float]] = {key: [] for key in (
            "erumlab 1", "bare 1", f"erumlab {args.users}", f"bare {args.users}")}
        for round_number in range(args.rounds):
            for name in names[:3]:  # one user at a time
                results["erumlab 1"].append(erumlab_spawn(name))
                results["bare 1"].append(bare_spawn(name))
            stop_all(ours, True), stop_all(theirs, False)
            for label, spawn, api, via_portal in (
                    (f"erumlab {args.users}", erumlab_spawn, ours, True),
                    (f"bare {args.users}", bare_spawn, theirs, False)):
                with ThreadPoolExecutor(max_workers=args.users) as pool:
                    results[label] += list(pool.map(spawn, names))
                stop_all(api, via_portal)
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)

        report(results, args.users)
        soak(erumlab_hub, hub, ours, Portal(portal_url, "soak"), args.cycles)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(results: dict[str, list[float]], users: int) -> None:
    print(f"\nspawn to ready, seconds ({len(results['erumlab 1'])} single and "
          f"{len(results[f'erumlab {users}'])} concurrent starts per side)")
    print(f"{'case':<14}{'median':>9}{'p95':>9}")
    for label, values in results.items():
        print(f"{label:<14}{statistics.median(values):>9.2f}{p95(values):>9.2f}")
    for n in (1, users):
        median = statistics.median(results[f"erumlab {n}"]) / statistics.median(
            results[f"bare {n}"])
        tail = p95(results[f"erumlab {n}"]) / p95(results[f"bare {n}"])
        verdict = "PASS" if median <= 1.2 else "FAIL"
        print(f"ratio erumlab / bare, {n:>2} user{'s' if n > 1 else ' '}: median {median:.2f}, "
              f"p95 {tail:.2f}  (target median <= 1.2: {verdict})")


def soak(process, hub, api: HubApi, portal: Portal, cycles: int) -> None:  # noqa: ANN001
    import psutil

    from erumlab.accounts.models import ApiToken
    from erumlab.sessions.models import Grant
    from erumlab_spawners.gpus import GpuAllocator

    began = time.perf_counter()
    for cycle in range(cycles):
        portal.start("gpu" if cycle % 2 else "cpu")
        api.wait("soak", ready=True)
        portal.stop()
        api.wait("soak", ready=False)
    seconds = time.perf_counter() - began
    time.sleep(1)  # the hub's last "ended" report may still be on its way

    servers = [child for child in psutil.Process(process.pid).children(recursive=True)
               if "jupyterhub-singleuser" in " ".join(child.cmdline())]
    allocations = GpuAllocator(Path(hub.env["ERUMLAB_HUB_DATA_DIR"]) / "gpu-allocations.sqlite",
                               ["0", "1"]).occupancy()
    held = [device for device in allocations if device["allocations"]]
    grants = Grant.objects.filter(user__username="soak")
    open_grants = grants.filter(ended_at__isnull=True).count()
    live_tokens = ApiToken.objects.active().filter(user__username="soak").count()
    leaks = len(servers) + len(held) + open_grants + live_tokens
    print(f"\nsoak: {cycles} start/stop cycles through the portal in {seconds:.0f} s "
          f"({grants.count()} grants, {grants.filter(profile__gpus__gt=0).count()} with a GPU)")
    print(f"left behind: {len(servers)} server processes, {len(held)} GPU allocations, "
          f"{open_grants} open grants, {live_tokens} live server tokens  "
          f"({'PASS' if leaks == 0 and grants.count() == cycles else 'FAIL'})")


if __name__ == "__main__":
    sys.exit(main())
