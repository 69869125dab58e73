"""DockerSpawner for production: one container per user, a volume for each home."""

from __future__ import annotations

try:
    from dockerspawner import DockerSpawner
except ImportError as exc:  # pragma: no cover - only without the [docker] extra
    raise ImportError(
        "The erumlab-docker spawner needs dockerspawner: pip install 'erumlab-spawners[docker]'"
    ) from exc

from traitlets import Unicode


class ErumlabDockerSpawner(DockerSpawner):
    home_volume_template = Unicode(
        "erumlab-home-{username}",
        config=True,
        help="Docker volume holding each user's home (/home/jovyan).",
    )

    def start(self):  # noqa: ANN201
        self.volumes = {
            **self.volumes,
            self.home_volume_template.format(username=self.escaped_name): "/home/jovyan",
        }
        return super().start()
