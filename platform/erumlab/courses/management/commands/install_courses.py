from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from erumlab.courses.material import MaterialError
from erumlab.courses.services import course_install, courses_install_all


class Command(BaseCommand):
    help = ("Install the course material under courses/ (or one course folder) into the portal; "
            "lectures already released keep the material they were released with.")

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("folder", nargs="?", default=settings.ERUMLAB_COURSES_DIR,
                            help="the courses folder, or one course's folder (with course.json)")

    def handle(self, *args, folder, **options):  # noqa: ANN001, ANN002, ANN003
        path = Path(folder)
        if not path.is_dir():
            raise CommandError(f"ERUMLAB_COURSES_DIR: no folder at {path}")
        try:
            if (path / "course.json").is_file():
                reports = [course_install(folder=path)]
            else:
                reports = courses_install_all(root=path)
        except MaterialError as error:
            raise CommandError(str(error)) from error
        for report in reports:
            self.stdout.write(
                f"{report.course.title}: {len(report.created)} lecture(s) new, "
                f"{len(report.updated)} updated, {len(report.unchanged)} unchanged")
