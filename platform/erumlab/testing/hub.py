"""A real JupyterHub for tests and benches, wired to the portal the settings name.

The portal's settings (ERUMLAB_HUB_URL and friends) must already point at
``url`` when the hub starts: ``hub_environment()`` derives the hub's whole
configuration from them, exactly as ``erumlab hub`` does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from erumlab.testing.aio import run_coroutine
from erumlab.testing.processes import free_port, running, wait_for_http


@dataclass
class TestHub:
    """One hub's folder, ports and environment; ``run()`` may be entered again (a restart)."""

    folder: Path
    url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def __post_init__(self) -> None:
        # Fixed for the hub's lifetime, restarts included: running servers keep
        # talking to the hub's API at the address they were given.
        self.env = {
            "ERUMLAB_HUB_DATA_DIR": str(self.folder / "hub"),
            "ERUMLAB_HUB_HOMES": str(self.folder / "homes"),
            "ERUMLAB_HUB_INTERNAL_PORT": str(free_port()),
            "ERUMLAB_HUB_PROXY_API_PORT": str(free_port()),
            "ERUMLAB_HUB_CULL_IDLE_SECONDS": "0",
            **self.env,
        }

    @property
    def api_url(self) -> str:
        return f"{self.url}/hub/api"

    @property
    def internal_api_url(self) -> str:
        """The hub's own port, as the portal reaches it (the proxy buffers event streams)."""
        return f"http://127.0.0.1:{self.env['ERUMLAB_HUB_INTERNAL_PORT']}/hub/api"

    @property
    def log(self) -> Path:
        return self.folder / f"hub-{self.runs}.log"

    @contextmanager
    def run(self, *, timeout: float = 60) -> Iterator[subprocess.Popen]:
        from erumlab.cli import hub_argv, hub_environment

        self.runs += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**hub_environment(), **self.env}
        try:
            with running(hub_argv(), env=env, log=self.log) as process:
                # The proxy answers 404 until the hub has registered its routes.
                wait_for_http(f"{self.api_url}/", timeout=timeout, process=process,
                              log=self.log, status=200)
                yield process
        finally:
            self._stop_orphaned_proxy()

    def _stop_orphaned_proxy(self) -> None:
        """The hub starts its proxy in a session of its own and stops it on a clean exit
        only; a hub killed early (a failing test) would leave it running."""
        pid_file = Path(self.env["ERUMLAB_HUB_DATA_DIR"]) / "proxy.pid"
        try:
            pid = int(pid_file.read_text().strip())
            # Only that proxy: the pid may have been reused since.
            if b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass  # no pid file, or the proxy is gone already

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text()[-chars:] if self.log.exists() else ""


@dataclass
class CellResult:
    stdout: str
    error: str  # "Name: message" of an exception, empty when the cell ran through


def run_in_kernel(server_url: str, token: str, code: str, *, wait: bool = True,
                  timeout: float = 120) -> CellResult:
    """Run ``code`` as a cell in a new kernel of a running notebook server, as a browser would.

    ``server_url`` is the server's public address (``http://hub/user/NAME/``) and
    ``token`` any hub token allowed to access it. With ``wait=False`` the cell
    is sent and left running (the kernel stays busy after the socket closes).
    """
    return run_coroutine(_run_in_kernel(server_url.rstrip("/"), token, code, wait, timeout))


async def _run_in_kernel(server: str, token: str, code: str, wait: bool,
                         timeout: float) -> CellResult:
    import json
    import uuid
    from datetime import UTC, datetime

    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {token}"}
    response = await AsyncHTTPClient().fetch(HTTPRequest(
        f"{server}/api/kernels", method="POST", body="{}", headers=headers,
        request_timeout=timeout))
    kernel = json.loads(response.body)["id"]
    socket = await websocket_connect(HTTPRequest(
        f"ws{server[4:]}/api/kernels/{kernel}/channels", headers=headers,
        request_timeout=timeout))
    message_id = uuid.uuid4().hex
    socket.write_message(json.dumps({
        "header": {"msg_id": message_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    stdout, error = [], ""
    try:
        while wait:
            raw = await asyncio.wait_for(socket.read_message(), timeout)
            if raw is None:
                raise RuntimeError("the kernel's socket closed before the cell finished")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != message_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content.get("name") == "stdout":
                stdout.append(content["text"])
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if not wait:  # the request must reach the kernel before the socket goes
            while True:
                message = json.loads(await asyncio.wait_for(socket.read_message(), timeout))
                if (message["msg_type"] == "status"
                        and message["content"]["execution_state"] == "busy"
                        and message.get("parent_header", {}).get("msg_id") == message_id):
                    break
    finally:
        socket.close()
    return CellResult(stdout="".join(stdout), error=error)
