"""Read the hub's settings from the environment, strictly, naming the variable."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit


class HubConfigError(RuntimeError):
    pass


def env_value(name: str, default: str | None = None) -> str:
    """``NAME``, else the content of the file ``NAME_FILE``, else ``default``."""
    if os.environ.get(name):
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise HubConfigError(f"{name}_FILE: cannot read {file_name!r} ({exc.strerror})") from exc
    if default is None:
        raise HubConfigError(f"{name} is not set (the erumlab hub needs it)")
    return default


def env_url(name: str, default: str | None = None) -> str:
    value = env_value(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HubConfigError(f"{name}: expected an absolute http(s) URL, got {value!r}")
    return value


def env_int(name: str, default: int) -> int:
    value = env_value(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise HubConfigError(f"{name}: expected an integer, got {value!r}") from None


def env_list(name: str) -> set[str]:
    return {item.strip() for item in env_value(name, "").split(",") if item.strip()}


def env_bool(name: str, default: bool) -> bool:
    value = env_value(name, "true" if default else "false").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise HubConfigError(f"{name}: expected true or false, got {value!r}")
