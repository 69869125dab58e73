"""The portal's only way to JupyterHub: its REST API, with the portal's service token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime


class HubUnavailable(Exception):
    """The hub did not answer, or answered with an error the portal cannot act on."""


@dataclass(frozen=True)
class ServerStatus:
    state: str  # "absent", "stopped", "starting", "running", "stopping"
    url: str = ""
    started: datetime | None = None
    last_activity: datetime | None = None

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

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(
                method, f"{self.api_url}{path}", timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise HubUnavailable(f"JupyterHub is not reachable at {self.api_url}: {exc}") from exc
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

    def stop_server(self, name: str) -> None:
        response = self._request("DELETE", f"/users/{quote(name)}/server")
        if response.status_code not in (202, 204, 400, 404):
            response.raise_for_status()


def _date(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None
