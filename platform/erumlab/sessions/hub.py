"""The portal's only way to JupyterHub: its REST API, with the portal's service token."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime


class HubUnavailable(Exception):
    """The hub did not answer, or answered with an error the portal cannot act on."""


class SpawnFailed(Exception):
    """The hub tried to start the server and could not; the message says why."""


@dataclass(frozen=True)
class ServerStatus:
    state: str  # "absent", "stopped", "starting", "running", "stopping"
    url: str = ""
    started: datetime | None = None
    last_activity: datetime | None = None
    profile: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


class HubClient:
    def __init__(self, *, api_url: str, token: str, timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"token {token}"

    @classmethod
    def from_settings(cls) -> HubClient:
        return cls(api_url=settings.ERUMLAB_HUB_API_URL, token=settings.ERUMLAB_HUB_API_TOKEN)

    def _request(self, method: str, path: str, *, allow: tuple[int, ...] = (),
                 **kwargs: Any) -> requests.Response:
        try:
            kwargs.setdefault("timeout", self.timeout)
            response = self._session.request(method, f"{self.api_url}{path}", **kwargs)
        except requests.RequestException as exc:
            raise HubUnavailable(f"JupyterHub is not reachable at {self.api_url}: {exc}") from exc
        if response.status_code in allow:
            return response
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise HubUnavailable(
                f"JupyterHub answered {response.status_code} to {method} {path}: "
                f"{response.text[:200]}"
            )
        return response

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/").json()

    def user(self, name: str) -> dict[str, Any] | None:
        response = self._request("GET", f"/users/{quote(name)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def server_status(self, name: str) -> ServerStatus:
        model = self.user(name)
        if model is None:
            return ServerStatus("absent")
        server = (model.get("servers") or {}).get("")
        if not server:
            return ServerStatus("stopped", last_activity=_date(model.get("last_activity")))
        if server.get("stopped") or server.get("pending") == "stop":
            state = "stopping"
        elif server.get("ready"):
            state = "running"
        else:
            state = "starting"
        return ServerStatus(
            state,
            url=server.get("url", ""),
            started=_date(server.get("started")),
            last_activity=_date(server.get("last_activity")),
            profile=(server.get("user_options") or {}).get("profile", ""),
        )

    def read_notebook(self, *, user: str, path: str, server_url: str) -> str:
        """A notebook's JSON from the user's running server (Jupyter contents API).

        ``server_url`` is where the proxy serves user servers (the hub's public
        URL, or its address inside a compose network). The service token has
        ``access:servers``, which single-user servers accept.
        """
        clean = path.strip().lstrip("/")
        if not clean.endswith(".ipynb") or ".." in clean.split("/"):
            raise ValueError("Give the path of a .ipynb file inside your home folder.")
        url = f"{server_url.rstrip('/')}/user/{quote(user)}/api/contents/{quote(clean)}"
        try:
            response = self._session.get(url, params={"content": 1, "type": "notebook"},
                                         timeout=self.timeout)
        except requests.RequestException as exc:
            raise HubUnavailable(f"Your notebook server is not reachable: {exc}") from exc
        if response.status_code == 404:
            raise FileNotFoundError(f"No notebook {clean!r} on your server.")
        if response.status_code in (302, 401, 403, 503) or response.status_code >= 500:
            raise HubUnavailable(
                f"Your notebook server is not running or refused the request "
                f"({response.status_code}); start it from Notebooks and try again."
            )
        response.raise_for_status()
        return json.dumps(response.json()["content"])

    def _contents_url(self, user: str, path: str, server_url: str) -> str:
        return f"{server_url.rstrip('/')}/user/{quote(user)}/api/contents/{quote(path)}"

    def _contents(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise HubUnavailable(f"Your notebook server is not reachable: {exc}") from exc
        if response.status_code in (302, 401, 403, 503) or response.status_code >= 500:
            raise HubUnavailable(
                f"Your notebook server is not running or refused the request "
                f"({response.status_code}); start it from Notebooks and try again."
            )
        return response

    def put_file(self, *, user: str, path: str, text: str, server_url: str,
                 overwrite: bool = True) -> bool:
        """Write a file (a notebook if it ends in .ipynb) into the user's running server.

        Parent folders are created. With ``overwrite=False`` an existing file is
        left alone (the user's own work). Returns whether it was written.
        """
        clean = path.strip().strip("/")
        if not clean or ".." in clean.split("/"):
            raise ValueError(f"not a path inside the home folder: {path!r}")
        url = self._contents_url(user, clean, server_url)
        if not overwrite:
            found = self._contents("GET", url, params={"content": 0})
            if found.status_code == 200:
                return False
        parts = clean.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            existing = self._contents("GET", self._contents_url(user, folder, server_url),
                                      params={"content": 0})
            if existing.status_code == 404:
                self._contents("PUT", self._contents_url(user, folder, server_url),
                               json={"type": "directory"}).raise_for_status()
        if clean.endswith(".ipynb"):
            model = {"type": "notebook", "format": "json", "content": json.loads(text)}
        else:
            model = {"type": "file", "format": "text", "content": text}
        self._contents("PUT", url, json=model).raise_for_status()
        return True

    def start_server(self, name: str, *, profile: str, answer_within: float = 1.5) -> str:
        """Ask the hub to start the user's server with a profile: "started" or "pending".

        The hub answers a start only once the server is up, unless the start
        fails first. Quick refusals (the portal said no, all GPUs busy) come
        back within ``answer_within`` seconds with their reason; after that the
        start is under way and the caller follows its progress events.

        The hub knows a user only after their first login there; the portal's
        service may create them (their groups come with their next login).
        """
        if self.user(name) is None:
            created = self._request("POST", f"/users/{quote(name)}", allow=(400, 404))
            if created.status_code not in (201, 409):
                raise SpawnFailed(f"the hub did not accept the user {name!r}: "
                                  f"{_message(created) or created.status_code}")
        # A start that fails within the hub's first seconds answers with the spawner's
        # reason (the portal's refusal, all GPUs busy); later failures reach the
        # progress stream instead.
        try:
            response = self._request("POST", f"/users/{quote(name)}/server",
                                     json={"profile": profile},
                                     allow=(403, 404, 409, 500, 502, 503),
                                     timeout=(self.timeout, answer_within))
        except HubUnavailable as error:
            if isinstance(error.__cause__, requests.ReadTimeout):
                return "pending"  # past the quick checks: the server is being started
            raise
        if response.status_code == 400:  # already running or on its way
            raise HubUnavailable(_message(response) or "Your server is already starting.")
        if response.status_code >= 403:
            raise SpawnFailed(_message(response) or f"the hub answered {response.status_code}")
        response.raise_for_status()
        return "started" if response.status_code == 201 else "pending"

    def progress(self, name: str, *, wait: float = 0.8) -> dict[str, Any] | None:
        """The newest spawn progress event of the user's server, read for at most ``wait`` s.

        The hub replays a pending spawn's events to every new reader and then
        streams new ones; reading briefly and keeping the last is enough for a
        page that polls.
        """
        last = None
        deadline = time.monotonic() + wait
        try:
            # The hub replays the events so far at once, then streams new ones as they
            # come: a short silence means the replay is over.
            with self._session.get(f"{self.api_url}/users/{quote(name)}/server/progress",
                                   stream=True, timeout=(self.timeout, min(wait, 0.3))) as response:
                if response.status_code != 200:
                    return None
                # chunk_size=None: lines as they arrive (the default waits for 512 bytes).
                for line in response.iter_lines(chunk_size=None, decode_unicode=True):
                    if line and line.startswith("data:"):
                        last = json.loads(line[5:])
                        if last.get("ready") or last.get("failed"):
                            break
                    if time.monotonic() > deadline:
                        break
        except (requests.RequestException, ValueError):
            pass  # a read timeout ends the look; what arrived before it counts
        return last

    def _active_users(self) -> list[dict[str, Any]]:
        """Every user with a running or pending server, all pages of them.

        The hub caps a page (200 by default): a reconciler that read only the
        first page would take the rest for gone.
        """
        users: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = self._request(
                "GET", "/users", params={"state": "active", "offset": offset, "limit": 200},
                headers={"Accept": "application/jupyterhub-pagination+json"})
            response.raise_for_status()
            page = response.json()
            users += page["items"]
            following = (page.get("_pagination") or {}).get("next")
            if not following or not page["items"]:
                return users
            offset = following["offset"]

    def active_servers(self) -> list[dict[str, Any]]:
        """Every user's running or pending servers."""
        servers = []
        for user in self._active_users():
            for server_name, server in (user.get("servers") or {}).items():
                servers.append({
                    "user": user["name"], "server": server_name,
                    "state": "running" if server.get("ready") else
                             (server.get("pending") or "starting"),
                    "profile": (server.get("user_options") or {}).get("profile", ""),
                    "started": _date(server.get("started")),
                    "last_activity": _date(server.get("last_activity")),
                })
        return servers

    def stop_server(self, name: str) -> None:
        response = self._request("DELETE", f"/users/{quote(name)}/server")
        if response.status_code not in (202, 204, 400, 404):
            response.raise_for_status()


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", ""))
    except ValueError:
        return ""


def _date(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None
