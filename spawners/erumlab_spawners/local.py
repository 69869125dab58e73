"""A local-process spawner for single machines: one server per portal user.

Portal users are not system accounts, so servers run as the hub's own user
(like SimpleLocalProcessSpawner), each with a home folder under the data dir:
users share one operating-system account, which suits a single-user
workstation or a trusted group (docs/deployment.md says so plainly).
GPUs come from the shared allocator and reach the server as
CUDA_VISIBLE_DEVICES; CPU and memory limits are passed as CPU_LIMIT and
MEM_LIMIT (shown by JupyterLab, not enforced by the kernel here).
"""

from __future__ import annotations

import os

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, Unicode, default

from erumlab_spawners.portal import PortalSessionMixin


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

    @default("options_form")
    def _default_options_form(self):  # noqa: ANN202
        return PortalSessionMixin.erumlab_options_form

    @default("allow_root")
    def _default_allow_root(self) -> bool:
        return os.geteuid() == 0

    def get_args(self) -> list[str]:
        args = list(super().get_args())  # a copy: the parent may hand out its own list
        if self.allow_root and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # The server's own files (runtime, config) stay inside the user's home.
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(self.home_dir, ".local", "share", "jupyter",
                                                  "runtime")
        return env
