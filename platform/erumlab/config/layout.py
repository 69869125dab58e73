"""Where erumlab keeps its state: one data directory, laid out here once.

Used by the settings, the ``erumlab`` command and the hub launcher, so the
paths agree without any of them importing the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# AF_UNIX socket paths are limited to 108 bytes on Linux, NUL included.
_MAX_SOCKET_PATH = 107


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "erumlab"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def from_environment(cls) -> DataDir:
        value = os.environ.get("ERUMLAB_DATA_DIR", "").strip()
        root = Path(value).expanduser() if value else default_data_dir()
        if not root.is_absolute():
            root = Path.cwd() / root
        return cls(root.resolve())

    def ensure(self) -> DataDir:
        try:
            for folder in (self.root, self.run, self.hub, self.media, self.static, self.homes,
                           self.oidc):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"ERUMLAB_DATA_DIR: cannot create {exc.filename!r} ({exc.strerror})"
            ) from exc
        return self

    @property
    def sqlite(self) -> Path:
        return self.root / "db.sqlite3"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret_key"

    @property
    def oidc(self) -> Path:
        return self.root / "oidc"

    @property
    def oidc_private_key(self) -> Path:
        return self.oidc / "private-key.pem"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock(self) -> Path:
        return self.run / "erumlab.lock"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def redis_socket(self) -> Path:
        return self.run / "redis.sock"

    @property
    def embedded_redis_url(self) -> str:
        path = str(self.redis_socket)
        if len(path.encode()) > _MAX_SOCKET_PATH:
            raise ImproperlyConfigured(
                f"ERUMLAB_DATA_DIR: {self.root} is too deep for the embedded Redis socket "
                f"({len(path)} > {_MAX_SOCKET_PATH} bytes); choose a shorter path or set REDIS_URL"
            )
        return f"unix://{path}?db=0"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def hub_client_secret(self) -> Path:
        return self.hub / "oauth-client-secret"

    @property
    def hub_api_token(self) -> Path:
        return self.hub / "portal-service-token"

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def static(self) -> Path:
        return self.root / "static"

    @property
    def homes(self) -> Path:
        return self.root / "homes"

    @property
    def logs(self) -> Path:
        return self.root / "logs"
