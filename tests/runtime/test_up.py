"""`erumlab up` on embedded defaults: every part starts, a second start is refused,
and Ctrl-C stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from celery import Celery

from erumlab.testing.processes import free_port, stop_group

pytestmark = pytest.mark.slow


def _up_env(data_dir, ports):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(
        ERUMLAB_DATA_DIR=str(data_dir),
        ERUMLAB_BIND=f"127.0.0.1:{ports['web']}",
        ERUMLAB_PORTAL_URL=f"http://127.0.0.1:{ports['web']}",
        ERUMLAB_HUB_URL=f"http://127.0.0.1:{ports['hub']}",
        ERUMLAB_HUB_INTERNAL_PORT=str(ports["hub_api"]),
        ERUMLAB_HUB_PROXY_API_PORT=str(ports["proxy_api"]),
        ERUMLAB_ADMIN_PASSWORD="first-admin-password",
        ERUMLAB_WEB_WORKERS="1",
    )
    return env


def _up(env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "erumlab", "up"], env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_for_line(path, text, process, timeout=150):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text()
        if text in content:
            return content
        if process.poll() is not None:
            raise AssertionError(f"erumlab up exited ({process.returncode}):\n{content[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} within {timeout} s:\n{path.read_text()[-4000:]}")


def test_up_starts_everything_refuses_a_second_start_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "d"
    ports = {name: free_port() for name in ("web", "hub", "hub_api", "proxy_api")}
    env = _up_env(data_dir, ports)
    log_path = tmp_path / "up.log"
    with open(log_path, "w") as log:
        up = _up(env, log)
    try:
        output = _wait_for_line(log_path, "Ctrl-C stops everything.", up)
        assert "Created administrator 'admin'" in output
        assert "first-admin-password" not in output

        with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/healthz") as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['hub']}/hub/api/") as response:
            assert response.status == 200

        # The worker answers through the embedded Redis (a unix socket in the data dir).
        socket_path = data_dir / "run" / "redis.sock"
        client = Celery(broker=f"redis+socket://{socket_path}",
                        backend=f"redis+socket://{socket_path}")
        result = client.send_task("erumlab.health", kwargs={"echo": "up"}, queue="default")
        assert result.get(timeout=60)["echo"] == "up"

        # A second start on the same data dir is refused, naming the running one.
        second = subprocess.run([sys.executable, "-m", "erumlab", "up"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"already running on the data dir {data_dir}" in second.stdout + second.stderr

        # Another data dir on the same ports is refused, naming the port.
        other = subprocess.run([sys.executable, "-m", "erumlab", "up"],
                               env={**env, "ERUMLAB_DATA_DIR": str(tmp_path / "other")},
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 2
        assert f"Port {ports['web']} on 127.0.0.1 is already in use" in other.stdout + other.stderr

        children = psutil.Process(up.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        for part in ("redis-server", "gunicorn", "worker", "beat", "jupyterhub",
                     "configurable-http-proxy"):
            assert part in names, part

        os.kill(up.pid, signal.SIGINT)
        assert up.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
        assert "stopped" in log_path.read_text()
    finally:
        stop_group(up)
