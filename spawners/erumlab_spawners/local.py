"""A local-process spawner for single machines: one server per portal user.

Portal users are not system accounts, so servers run as the hub's own user
(like SimpleLocalProcessSpawner), each with a home folder under the data dir:
users share one operating-system account, which suits a single-user
workstation or a trusted group (docs/deployment.md says so plainly).
GPUs come from the shared allocator and reach the server as
CUDA_VISIBLE_DEVICES; CPU and memory limits are passed as CPU_LIMIT and
MEM_LIMIT (shown by JupyterLab, not enforced by the kernel here).

Where the hub runs as root, ``system_users`` runs each server as a system
account of its own instead (like JupyterHub's LocalProcessSpawner): the
account named by ``system_user_template``, created with useradd when
``create_system_users`` is on. Users then cannot read each other's files.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Bool, Unicode, default

from erumlab_spawners.portal import PortalSessionMixin

# What useradd accepts on every common distribution (portable POSIX names).
_SYSTEM_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class ErumlabLocalSpawner(PortalSessionMixin, SimpleLocalProcessSpawner):
    home_dir_template = Unicode(
        "/tmp/erumlab-homes/{username}",  # noqa: S108 (overridden by the config)
        config=True,
        help="Home folder of each user's server; {username} is the hub user name.",
    )

    allow_root = Bool(
        config=True,
        help="""Pass --allow-root to the single-user server.

        Jupyter servers refuse to run as root, and the hub then fails the spawn
        after a long wait with an unhelpful error. Defaults to True exactly when
        the hub itself runs as root (containers, CI machines).
        """,
    )

    system_users = Bool(
        False, config=True,
        help="""Run each user's server as a system account of its own (the hub must run
        as root). Off: every server runs as the hub's own account, which suits a
        single-user workstation or a trusted group only.""",
    )
    system_user_template = Unicode(
        "{username}", config=True,
        help="System account for a hub user, e.g. 'erl-{username}'; lower-case POSIX names only.",
    )
    create_system_users = Bool(
        False, config=True,
        help="With system_users: create a missing account (useradd --create-home).",
    )

    @default("options_form")
    def _default_options_form(self):  # noqa: ANN202
        return PortalSessionMixin.erumlab_options_form

    @default("allow_root")
    def _default_allow_root(self) -> bool:
        return os.geteuid() == 0 and not self.system_users

    # --- per-user system accounts -------------------------------------------------------

    @property
    def system_user(self) -> str:
        return self.system_user_template.format(username=self.user.name)

    def _account(self) -> pwd.struct_passwd:
        return pwd.getpwnam(self.system_user)

    async def _ensure_account(self) -> None:
        name = self.system_user
        if os.geteuid() != 0:
            raise web.HTTPError(500, "system_users needs the hub to run as root; it runs as "
                                     f"uid {os.geteuid()}")
        if not _SYSTEM_NAME.fullmatch(name):
            raise web.HTTPError(400, f"{self.user.name!r} maps to the system account {name!r}, "
                                     f"which is not a valid POSIX user name; set "
                                     f"system_user_template")
        try:
            self._account()
            return
        except KeyError:
            if not self.create_system_users:
                raise web.HTTPError(403, f"There is no system account {name!r} for "
                                         f"{self.user.name}; ask an administrator") from None
        result = await asyncio.to_thread(
            subprocess.run, ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                             name], capture_output=True, text=True)
        if result.returncode != 0:
            raise web.HTTPError(500, f"useradd {name} failed: {result.stderr.strip()}")
        self.log.info("Created system account %s for %s", name, self.user.name)

    @property
    def server_home(self) -> str:
        return self._account().pw_dir if self.system_users else self.home_dir

    def make_preexec_fn(self, name: str):  # noqa: ANN201
        if self.system_users:
            return set_user_setuid(self.system_user)
        return super().make_preexec_fn(name)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        if not self.system_users:
            return super().user_env(env)
        account = self._account()
        env.update(USER=account.pw_name, HOME=account.pw_dir, SHELL=account.pw_shell)
        return env

    async def prepare_start(self) -> None:
        if self.system_users:  # only once the portal has allowed the start
            await self._ensure_account()

    def get_args(self) -> list[str]:
        args = list(super().get_args())  # a copy: the parent may hand out its own list
        if self.allow_root and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # The server's own files (runtime, config) stay inside the user's home.
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(self.server_home, ".local", "share",
                                                  "jupyter", "runtime")
        return env
