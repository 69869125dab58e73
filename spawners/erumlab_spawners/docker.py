"""DockerSpawner for production: one container per user, a volume for each home.

Each user's server runs in its own container as the image's unprivileged user
(jovyan), with the profile's CPU and memory limits and, for GPU profiles, an
NVIDIA device request for exactly the allocated device ids.
"""

from __future__ import annotations

try:
    from dockerspawner import DockerSpawner
except ImportError as exc:  # pragma: no cover - only without the [docker] extra
    raise ImportError(
        "The erumlab-docker spawner needs dockerspawner: pip install 'erumlab-spawners[docker]'"
    ) from exc

from typing import Any

from traitlets import Unicode, default

from erumlab_spawners.portal import PortalSessionMixin


class ErumlabDockerSpawner(PortalSessionMixin, DockerSpawner):
    home_volume_template = Unicode(
        "erumlab-home-{username}",
        config=True,
        help="Docker volume holding each user's home (/home/jovyan).",
    )

    @default("options_form")
    def _default_options_form(self):  # noqa: ANN202
        return PortalSessionMixin.erumlab_options_form

    def cuda_visible_devices(self) -> str:
        # The container holds only its devices, numbered from 0 inside.
        return ",".join(str(index) for index in range(len(self.gpu_ids or [])))

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # The NVIDIA runtime exposes these host devices; "void" keeps a CPU server from
        # seeing any, even from an image that asks for all (NVIDIA_VISIBLE_DEVICES=all).
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(self.gpu_ids or []) or "void"
        return env

    def apply_profile(self, profile: dict[str, Any], gpu_ids: list[str]) -> None:
        super().apply_profile(profile, gpu_ids)
        self.volumes = {
            **self.volumes,
            self.home_volume_template.format(username=self.escaped_name): "/home/jovyan",
        }
        host_config = {k: v for k, v in self.extra_host_config.items()
                       if k != "device_requests"}
        if gpu_ids:
            host_config["device_requests"] = [{
                "Driver": "nvidia", "DeviceIDs": list(gpu_ids),
                "Capabilities": [["gpu"]]}]
        self.extra_host_config = host_config
