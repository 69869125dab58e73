from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from erumlab.client.datasets import Datasets
    from erumlab.client.jobs import Jobs
    from erumlab.client.models import Models


class ClientConfigError(RuntimeError):
    """The client does not know where the portal is or who the caller is."""


class ApiError(RuntimeError):
    """The portal refused a request; the message carries its explanation."""

    def __init__(self, status: int, method: str, path: str, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{method} {path} -> {status}: {detail}")


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0) -> None:
        url = url or os.environ.get("ERUMLAB_URL")
        token = token or os.environ.get("ERUMLAB_API_TOKEN")
        if not url:
            raise ClientConfigError(
                "No portal URL: pass url=... or set ERUMLAB_URL (set for you in erumlab sessions)."
            )
        if not token:
            raise ClientConfigError(
                "No API token: pass token=... or set ERUMLAB_API_TOKEN "
                "(create one under API tokens in the portal)."
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        self._http.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        response = self._http.request(method, f"{self.url}/api/v1/{path.lstrip('/')}", **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json()
            except ValueError:
                detail = response.text[:500]
            raise ApiError(response.status_code, method, path, detail)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def download(self, path: str, target: Path) -> None:
        """Stream a file from the API to ``target`` (written whole or not at all)."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        with self._http.get(url, stream=True, timeout=self.timeout) as response:
            if response.status_code >= 400:
                raise ApiError(response.status_code, "GET", path, response.text[:500])
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            with open(partial, "wb") as handle:
                for chunk in response.iter_content(1 << 20):
                    handle.write(chunk)
            partial.replace(target)

    @property
    def datasets(self) -> Datasets:
        from erumlab.client.datasets import Datasets

        return Datasets(self)

    @property
    def jobs(self) -> Jobs:
        from erumlab.client.jobs import Jobs

        return Jobs(self)

    @property
    def models(self) -> Models:
        from erumlab.client.models import Models

        return Models(self)

    def me(self) -> dict[str, Any]:
        """The caller's profile and collaborations."""
        return self.request("GET", "me/")

    def submit_exercise(self, path: str | Path, *, wait: bool = False,
                        timeout: float = 900) -> dict[str, Any]:
        """Hand in a course exercise notebook (save it first); returns the submission.

        The notebook says which lecture it belongs to (the portal put that in
        when it copied it to you). ``wait=True`` waits for the grader's result.
        """
        import json
        import time

        notebook = Path(path)
        content = notebook.read_text(encoding="utf-8")
        release = json.loads(content).get("metadata", {}).get("erumlab", {}).get("release")
        if release is None:
            raise ClientConfigError(
                f"{notebook} does not say which lecture it belongs to; open the lecture from "
                f"the portal's Courses page and submit the notebook it copies for you.")
        submission = self.request("POST", "course-submissions/",
                                  json={"release": release, "notebook": content})
        deadline = time.monotonic() + timeout
        while wait and submission["state"] in ("queued", "grading"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"submission {submission['id']} not graded within {timeout} s")
            time.sleep(2)
            submission = self.request("GET", f"course-submissions/{submission['id']}/")
        return submission

    def collaborations(self) -> list[dict[str, Any]]:
        return self.request("GET", "collaborations/")["results"]
