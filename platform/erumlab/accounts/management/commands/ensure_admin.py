import os
import secrets

from django.core.management.base import BaseCommand

from erumlab.accounts.models import User


class Command(BaseCommand):
    help = (
        "Create the first administrator if there is none. The password comes from "
        "ERUMLAB_ADMIN_PASSWORD, or is generated and printed once."
    )

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("ERUMLAB_ADMIN_USERNAME", "admin")
        email = os.environ.get("ERUMLAB_ADMIN_EMAIL", "admin@localhost")
        password = os.environ.get("ERUMLAB_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=email, password=password)
        if generated:
            self.stdout.write(
                f"Created administrator {username!r} with password {password} "
                f"(shown only now; change it under Profile > Password)."
            )
        else:
            self.stdout.write(
                f"Created administrator {username!r} (password from ERUMLAB_ADMIN_PASSWORD)."
            )
