from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from erumlab.jobs.services import templates_sync_bundled


class Command(BaseCommand):
    help = "Load the bundled notebook templates (notebooks_templates/) into the database."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--folder", default=settings.ERUMLAB_TEMPLATES_DIR)

    def handle(self, *args, folder, **options):  # noqa: ANN001, ANN002, ANN003
        path = Path(folder)
        if not path.is_dir():
            raise CommandError(f"ERUMLAB_TEMPLATES_DIR: no folder at {path}")
        templates = templates_sync_bundled(folder=path)
        self.stdout.write(f"{len(templates)} bundled template(s): "
                          + ", ".join(t.slug for t in templates))
