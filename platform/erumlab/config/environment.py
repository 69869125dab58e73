"""Every setting that comes from the environment is read here.

Each reader names the variable when its value is malformed, so a typo stops
start-up with a message instead of a silently different platform. A variable
``NAME`` may also be given as ``NAME_FILE`` (a path whose content is the
value), the usual way to hand secrets to containers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Environment:
    """Typed, strict access to a mapping of environment variables."""

    def __init__(self, environ_: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if environ_ is None else environ_

    def raw(self, name: str) -> str | None:
        if name in self._env:
            return self._env[name]
        file_name = self._env.get(f"{name}_FILE")
        if file_name:
            try:
                return Path(file_name).read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(
                    f"{name}_FILE: cannot read {file_name!r} ({exc.strerror})"
                ) from exc
        return None

    def str(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{name}: expected a boolean (true/false, 1/0, yes/no, on/off), got {value!r}"
        )

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def url(self, name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.str(name, default).strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ImproperlyConfigured(
                f"{name}: expected an absolute URL with scheme {' or '.join(schemes)}, "
                f"got {value!r}"
            )
        return value.rstrip("/")

    def database(self, name: str, default: str) -> dict:
        value = self.str(name, default)
        if "://" not in value:
            raise ImproperlyConfigured(
                f"{name}: expected a database URL such as postgres://user@host:5432/name "
                f"or sqlite:////absolute/path.sqlite3, got {value!r}"
            )
        try:
            config = environ.Env.db_url_config(value)
        except (ValueError, KeyError, environ.ImproperlyConfigured) as exc:
            raise ImproperlyConfigured(f"{name}: cannot parse {value!r} ({exc})") from exc
        engine = config.get("ENGINE", "")
        if not engine:
            raise ImproperlyConfigured(f"{name}: unsupported database scheme in {value!r}")
        if engine.endswith("sqlite3"):
            if not config.get("NAME"):
                raise ImproperlyConfigured(f"{name}: a SQLite URL needs a file path, got {value!r}")
        elif not config.get("NAME"):
            raise ImproperlyConfigured(f"{name}: the URL names no database, got {value!r}")
        return config

    def email(self, name: str, default: str) -> dict:
        value = self.str(name, default)
        try:
            return environ.Env.email_url_config(value)
        except (ValueError, KeyError, environ.ImproperlyConfigured) as exc:
            raise ImproperlyConfigured(f"{name}: cannot parse {value!r} ({exc})") from exc

    def storage(self, name: str) -> dict:
        """A Django STORAGES entry: the local file system, or s3://bucket?options."""
        value = (self.raw(name) or "").strip()
        if not value:
            return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc:
            raise ImproperlyConfigured(
                f"{name}: expected s3://BUCKET?endpoint_url=https://...&region_name=..., "
                f"got {value!r}"
            )
        from urllib.parse import parse_qsl

        allowed = {"endpoint_url", "region_name", "location", "addressing_style",
                   "signature_version"}
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - allowed
        if unknown:
            raise ImproperlyConfigured(
                f"{name}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted(allowed))}"
            )
        # Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or _FILE).
        for variable, option in (("AWS_ACCESS_KEY_ID", "access_key"),
                                 ("AWS_SECRET_ACCESS_KEY", "secret_key")):
            if self.raw(variable):
                options[option] = self.raw(variable)
        options.update(bucket_name=parts.netloc, default_acl=None, file_overwrite=False,
                       querystring_auth=True)
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}

    def redis_url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"{name}: expected redis://host:port/db, rediss://... or unix:///path.sock, "
                f"got {value!r}"
            )
        if parts.scheme != "unix" and not parts.hostname:
            raise ImproperlyConfigured(f"{name}: the URL names no host, got {value!r}")
        if parts.scheme == "unix" and not parts.path:
            raise ImproperlyConfigured(f"{name}: the URL names no socket path, got {value!r}")
        return value


def celery_redis_urls(url: str) -> tuple[str, str]:
    """Broker and result-backend URLs for Celery from a Redis URL.

    Django and redis-py speak ``unix:///path?db=N``; kombu and Celery's result
    backend name a socket ``redis+socket:///path`` instead.
    """
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url, url
    db = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db", "0")
    return (
        f"redis+socket://{parts.path}?virtual_host={db}",
        f"redis+socket://{parts.path}?virtual_host={db}",
    )


def write_once(path: Path, content: str) -> str:
    """Store ``content`` at ``path`` unless something is there already; return what is there.

    The content is written to a private temporary file first and then linked
    into place, so a process starting at the same moment sees either nothing
    or the whole file, and both agree on one value.
    """
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text()
        return content
    finally:
        temporary.unlink(missing_ok=True)


def persisted_secret(path: Path, *, nbytes: int = 48) -> str:
    """The secret stored at ``path``, generated (mode 0600) on first use."""
    return write_once(path, secrets.token_urlsafe(nbytes) + "\n").strip()
