"""The ``erumlab`` command.

    erumlab up                  everything on one machine (embedded defaults)
    erumlab init                migrate, collect static files, first admin, hub OAuth client
    erumlab web                 gunicorn serving the portal
    erumlab worker [-Q QUEUES]  a Celery worker
    erumlab beat                Celery beat: periodic tasks such as the jobs reconciler
    erumlab hub                 JupyterHub, signed in through the portal
    erumlab redis               the embedded Redis in the foreground
    erumlab manage ARGS...      Django's management commands
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from erumlab.runtime.guards import DataDirLock, Endpoint, StartRefused, ensure_ports_free
from erumlab.runtime.supervisor import Child, Supervisor

SETTINGS = "erumlab.config.settings"
REPO_SPAWNERS = Path(__file__).resolve().parents[2] / "spawners" / "jupyterhub_config.py"


def _bin(name: str) -> str:
    """A console script of this environment (the venv's bin folder first)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise StartRefused(f"'{name}' is not installed in this environment; run `make run`.")
    return found


def _settings():  # noqa: ANN202
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django
    from django.conf import settings

    django.setup()
    return settings


def _web_bind() -> str:
    return os.environ.get("ERUMLAB_BIND", "127.0.0.1:8000")


def _split_bind(bind: str, variable: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    try:
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104
    except ValueError:
        raise StartRefused(f"{variable}: expected HOST:PORT, got {bind!r}") from None


def web_argv() -> list[str]:
    workers = os.environ.get("ERUMLAB_WEB_WORKERS", "2")
    return [
        _bin("gunicorn"), "erumlab.config.wsgi:application",
        "--bind", _web_bind(),
        "--workers", workers,
        "--threads", "4",
        "--access-logfile", "-",
        "--graceful-timeout", "10",
        "--no-control-socket",
        "--forwarded-allow-ips", os.environ.get("ERUMLAB_FORWARDED_ALLOW_IPS", "127.0.0.1"),
    ]


def worker_argv(queues: str | None = None, concurrency: str | None = None) -> list[str]:
    queues = queues or os.environ.get("ERUMLAB_WORKER_QUEUES", "default,gpu")
    concurrency = concurrency or os.environ.get("ERUMLAB_WORKER_CONCURRENCY", "1")
    return [
        sys.executable, "-m", "celery", "-A", "erumlab.config", "worker",
        "--queues", queues, "--concurrency", concurrency,
        "--loglevel", os.environ.get("LOG_LEVEL", "INFO"),
        "--hostname", f"erumlab-{queues.replace(',', '-')}@%h",
    ]


def beat_argv() -> list[str]:
    """Celery beat: the periodic tasks (the jobs reconciler). Run exactly one per site."""
    return [
        sys.executable, "-m", "celery", "-A", "erumlab.config", "beat",
        "--loglevel", os.environ.get("LOG_LEVEL", "INFO"),
    ]


def hub_config_path() -> Path:
    path = Path(os.environ.get("ERUMLAB_HUB_CONFIG", REPO_SPAWNERS))
    if not path.exists():
        raise StartRefused(
            f"ERUMLAB_HUB_CONFIG: no JupyterHub configuration at {path}; point it at "
            f"spawners/jupyterhub_config.py."
        )
    return path


def hub_environment() -> dict[str, str]:
    """What the hub's declarative config reads, derived from the portal's settings."""
    settings = _settings()
    data = settings.DATA
    env = dict(os.environ)
    env.update(
        {
            "ERUMLAB_PORTAL_URL": settings.ERUMLAB_PORTAL_URL,
            "ERUMLAB_PORTAL_INTERNAL_URL": os.environ.get(
                "ERUMLAB_PORTAL_INTERNAL_URL", settings.ERUMLAB_PORTAL_URL
            ),
            "ERUMLAB_HUB_URL": settings.ERUMLAB_HUB_URL,
            "ERUMLAB_HUB_CLIENT_ID": settings.ERUMLAB_HUB_CLIENT_ID,
            "ERUMLAB_HUB_CLIENT_SECRET": settings.ERUMLAB_HUB_CLIENT_SECRET,
            "ERUMLAB_HUB_API_TOKEN": settings.ERUMLAB_HUB_API_TOKEN,
            "ERUMLAB_GPUS": settings.ERUMLAB_GPUS,
            "ERUMLAB_HUB_DATA_DIR": os.environ.get("ERUMLAB_HUB_DATA_DIR", str(data.hub)),
            "ERUMLAB_HUB_HOMES": os.environ.get("ERUMLAB_HUB_HOMES", str(data.homes)),
            # The single-user servers and the proxy come from this environment.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def hub_argv() -> list[str]:
    return [_bin("jupyterhub"), "-f", str(hub_config_path())]


def _hub_ports() -> list[Endpoint]:
    hub_url = os.environ.get("ERUMLAB_HUB_URL", "http://127.0.0.1:8001")
    parts = urlsplit(hub_url)
    public = Endpoint("JupyterHub (public)", parts.hostname or "127.0.0.1",
                      parts.port or (443 if parts.scheme == "https" else 80), "ERUMLAB_HUB_URL")
    internal = Endpoint("JupyterHub (internal API)", "127.0.0.1",
                        int(os.environ.get("ERUMLAB_HUB_INTERNAL_PORT", "8081")),
                        "ERUMLAB_HUB_INTERNAL_PORT")
    proxy = Endpoint("JupyterHub proxy API", "127.0.0.1",
                     int(os.environ.get("ERUMLAB_HUB_PROXY_API_PORT", "8002")),
                     "ERUMLAB_HUB_PROXY_API_PORT")
    return [public, internal, proxy]


def _wait_http(url: str, *, timeout: float, supervisor: Supervisor, ok=(200,)) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = supervisor.first_exit()
        if exited is not None:
            raise StartRefused(f"{exited.name} exited during start-up (see its log above).")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status in ok:
                    return
        except urllib.error.HTTPError as error:
            if error.code in ok:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise StartRefused(f"{url} did not answer within {timeout:.0f} s.")


def cmd_init(args: argparse.Namespace | None = None) -> int:
    """Bring the database and files up to date; safe to run at every start."""
    _settings()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("ensure_admin")
    call_command("ensure_hub_client")
    call_command("sync_templates")
    call_command("install_courses")
    call_command("sync_models")  # after the templates: a bundled model names its fine-tune job
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from erumlab.config.layout import DataDir

    data = DataDir.from_environment().ensure()
    lock = DataDirLock(data.lock)
    lock.acquire()
    supervisor = Supervisor()
    stop_requested = False

    def request_stop(signum, frame):  # noqa: ANN001, ARG001
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        web_host, web_port = _split_bind(_web_bind(), "ERUMLAB_BIND")
        endpoints = [Endpoint("portal", web_host, web_port, "ERUMLAB_BIND")]
        if not args.no_hub:
            endpoints += _hub_ports()
        ensure_ports_free(endpoints)

        if not os.environ.get("REDIS_URL"):
            from erumlab.runtime.redis_server import redis_command, socket_in_use, wait_for_redis

            if socket_in_use(data.redis_socket):
                raise StartRefused(
                    f"A Redis already answers on {data.redis_socket}: another erumlab is using "
                    f"this data dir."
                )
            data.redis_socket.unlink(missing_ok=True)
            process = supervisor.start(
                Child("redis", redis_command(socket_path=data.redis_socket, data_dir=data.redis_dir))
            )
            wait_for_redis(data.redis_socket, process=process)
            supervisor.say("erumlab", f"embedded Redis on {data.redis_socket}")

        supervisor.say("erumlab", f"data dir {data.root}: migrating and preparing")
        cmd_init()
        from django.conf import settings

        supervisor.start(Child("web", web_argv()))
        supervisor.start(Child("worker", worker_argv()))
        supervisor.start(Child("beat", beat_argv()))
        if not args.no_hub:
            supervisor.start(Child("hub", hub_argv(), env=hub_environment()))

        _wait_http(f"http://{web_host}:{web_port}/healthz", timeout=60, supervisor=supervisor)
        if not args.no_hub:
            _wait_http(f"{settings.ERUMLAB_HUB_URL}/hub/api/", timeout=90, supervisor=supervisor)
        supervisor.say("erumlab", "")
        supervisor.say("erumlab", f"portal      {settings.ERUMLAB_PORTAL_URL}/")
        if not args.no_hub:
            supervisor.say("erumlab", f"JupyterHub  {settings.ERUMLAB_HUB_URL}/hub/")
        supervisor.say("erumlab", f"API docs    {settings.ERUMLAB_PORTAL_URL}/api/docs/")
        supervisor.say("erumlab", "Ctrl-C stops everything.")

        exited = supervisor.wait(lambda: stop_requested)
        if exited is not None:
            supervisor.say("erumlab", f"{exited.name} exited with code "
                                      f"{exited.process.returncode}: stopping everything")
            return 1
        return 0
    except StartRefused as refused:
        supervisor.say("erumlab", f"error: {refused}")
        return 2
    finally:
        supervisor.stop_all()
        lock.release()
        supervisor.say("erumlab", "stopped")


def _exec(argv: list[str], env: dict[str, str] | None = None) -> int:
    sys.stdout.flush()
    if env is None:
        os.execv(argv[0], argv)
    os.execve(argv[0], argv, env)
    return 0  # not reached


def cmd_web(args: argparse.Namespace) -> int:
    return _exec(web_argv())


def cmd_worker(args: argparse.Namespace) -> int:
    return _exec(worker_argv(args.queues, args.concurrency))


def cmd_beat(args: argparse.Namespace) -> int:
    return _exec(beat_argv())


def cmd_hub(args: argparse.Namespace) -> int:
    return _exec(hub_argv(), hub_environment())


def cmd_redis(args: argparse.Namespace) -> int:
    from erumlab.config.layout import DataDir
    from erumlab.runtime.redis_server import redis_command

    data = DataDir.from_environment().ensure()
    return _exec(redis_command(socket_path=data.redis_socket, data_dir=data.redis_dir))


def cmd_manage(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["erumlab manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erumlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start portal, worker, hub (and Redis unless REDIS_URL)")
    up.add_argument("--no-hub", action="store_true", help="do not start JupyterHub")
    up.set_defaults(func=cmd_up)
    sub.add_parser("init", help="migrate, collect static files, admin, hub client").set_defaults(
        func=cmd_init
    )
    sub.add_parser("web", help="serve the portal with gunicorn").set_defaults(func=cmd_web)
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("-Q", "--queues", help="comma-separated queues (default: default,gpu)")
    worker.add_argument("-c", "--concurrency", help="worker processes (default: 1)")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("beat", help="run Celery beat (periodic tasks; one per site)").set_defaults(
        func=cmd_beat
    )
    sub.add_parser("hub", help="run JupyterHub").set_defaults(func=cmd_hub)
    sub.add_parser("redis", help="run the embedded Redis in the foreground").set_defaults(
        func=cmd_redis
    )
    manage = sub.add_parser("manage", help="Django management commands", add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StartRefused as refused:
        print(f"erumlab: {refused}", file=sys.stderr)
        return 2
    except Exception as exc:
        from django.core.exceptions import ImproperlyConfigured

        if isinstance(exc, ImproperlyConfigured):
            print(f"erumlab: configuration error: {exc}", file=sys.stderr)
            return 2
        raise
