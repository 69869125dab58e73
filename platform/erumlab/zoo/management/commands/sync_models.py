from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from erumlab.zoo.seeding import SEED_DIR, seed_models


class Command(BaseCommand):
    help = "Publish the models bundled with erumlab (zoo/seed/) that the zoo does not hold yet."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--folder", default=str(SEED_DIR))

    def handle(self, *args, folder, **options):  # noqa: ANN001, ANN002, ANN003
        try:
            seeded = seed_models(folder=Path(folder))
        except LookupError as error:
            raise CommandError(str(error)) from error
        for entry in seeded:
            self.stdout.write(f"bundled model {entry.name}: {entry.outcome}")
