from django.core.management.base import BaseCommand

from erumlab.sessions.services import hub_client_ensure


class Command(BaseCommand):
    help = "Create or update the OAuth client through which JupyterHub signs users in."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--hub-url", help="Public URL of the hub (default: ERUMLAB_HUB_URL)")

    def handle(self, *args, hub_url=None, **options):  # noqa: ANN001
        app = hub_client_ensure(hub_url=hub_url)
        self.stdout.write(f"hub OAuth client {app.client_id!r} -> {app.redirect_uris}")
