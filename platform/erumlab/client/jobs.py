"""Batch jobs from a notebook or script.

    from erumlab.client import jobs
    job = jobs.submit("hello", {"steps": 5})
    job.wait()
    for artifact in job.artifacts:
        artifact.download(".")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erumlab.client.api import Client

TERMINAL = ("succeeded", "failed", "cancelled")


class JobFailed(RuntimeError):
    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(f"job {job.id} {job.state}: {job.data.get('message', '')}")


@dataclass
class Artifact:
    client: Client
    job_id: str
    id: str
    name: str
    size: int
    sha256: str

    def download(self, folder: str | Path = ".") -> Path:
        """Save under ``folder`` with the file's base name; returns the path."""
        target = Path(folder) / Path(self.name).name
        self.client.download(f"jobs/{self.job_id}/artifacts/{self.id}/", target)
        return target


class Job:
    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state} {self.data.get('template')}>"

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def state(self) -> str:
        return self.data["state"]

    @property
    def progress(self) -> dict[str, Any]:
        return self.data["progress"]

    def refresh(self) -> Job:
        self.data = self.client.request("GET", f"jobs/{self.id}/")
        return self

    def wait(self, timeout: float | None = None, poll: float = 2.0, *,
             raise_on_failure: bool = True) -> Job:
        """Block until the job ends; raise JobFailed if it failed or was cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().state not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {self.state} after {timeout} s")
            time.sleep(poll)
        if raise_on_failure and self.state != "succeeded":
            raise JobFailed(self)
        return self

    def cancel(self) -> Job:
        self.data = self.client.request("POST", f"jobs/{self.id}/cancel/")
        return self

    def clone(self, parameters: dict[str, Any] | None = None) -> Job:
        body = {} if parameters is None else {"parameters": parameters}
        return Job(self.client, self.client.request("POST", f"jobs/{self.id}/clone/", json=body))

    @property
    def log(self) -> str:
        return self.refresh().data.get("log", "")

    @property
    def artifacts(self) -> list[Artifact]:
        if "artifacts" not in self.data:
            self.refresh()
        return [Artifact(self.client, self.id, a["id"], a["name"], a["size"], a["sha256"])
                for a in self.data["artifacts"]]

    def download_output(self, path: str | Path) -> Path:
        target = Path(path)
        self.client.download(f"jobs/{self.id}/output/", target)
        return target


class Jobs:
    def __init__(self, client: Client) -> None:
        self.client = client

    def submit(self, template: str, parameters: dict[str, Any] | None = None, *,
               queue: str | None = None, wall_time_limit: int | None = None,
               collaboration: str | None = None) -> Job:
        body: dict[str, Any] = {"template": template, "parameters": parameters or {}}
        for key, value in (("queue", queue), ("wall_time_limit", wall_time_limit),
                           ("collaboration", collaboration)):
            if value is not None:
                body[key] = value
        return Job(self.client, self.client.request("POST", "jobs/", json=body))

    def get(self, job_id: str) -> Job:
        return Job(self.client, self.client.request("GET", f"jobs/{job_id}/"))

    def list(self, **filters: str) -> list[Job]:
        data = self.client.request("GET", "jobs/", params=filters)
        return [Job(self.client, item) for item in data["results"]]

    def templates(self) -> list[dict[str, Any]]:
        return self.client.request("GET", "templates/")["results"]


_default: Jobs | None = None


def _jobs() -> Jobs:
    global _default
    if _default is None:
        from erumlab.client.api import Client

        _default = Jobs(Client())
    return _default


def submit(template: str, parameters: dict[str, Any] | None = None, **options: Any) -> Job:
    """Submit with the default client (ERUMLAB_URL and ERUMLAB_API_TOKEN)."""
    return _jobs().submit(template, parameters, **options)


def get(job_id: str) -> Job:
    return _jobs().get(job_id)


def list(**filters: str) -> list[Job]:  # noqa: A001
    return _jobs().list(**filters)
