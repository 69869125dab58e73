"""Writes for notebook sessions: the OAuth client through which the hub signs users in."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import transaction
from oauth2_provider.models import get_application_model


@transaction.atomic
def hub_client_ensure(*, hub_url: str | None = None):  # noqa: ANN201
    """Create or update the hub's OAuth application so that it matches the settings.

    Idempotent: run at every start, it fixes a changed secret or hub URL. The
    hub is a confidential client with RS256 ID tokens and skips the consent
    screen (the portal and hub are one platform to the user).
    """
    Application = get_application_model()
    redirect_uri = f"{(hub_url or settings.ERUMLAB_HUB_URL).rstrip('/')}/hub/oauth_callback"
    app = Application.objects.filter(client_id=settings.ERUMLAB_HUB_CLIENT_ID).first()
    if app is None:
        app = Application(client_id=settings.ERUMLAB_HUB_CLIENT_ID)
    elif (
        app.redirect_uris == redirect_uri
        and app.algorithm == Application.RS256_ALGORITHM
        # The secret is stored hashed: compare rather than re-hash on every start.
        and check_password(settings.ERUMLAB_HUB_CLIENT_SECRET, app.client_secret)
    ):
        return app
    app.name = "JupyterHub"
    app.client_type = Application.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    app.redirect_uris = redirect_uri
    app.algorithm = Application.RS256_ALGORITHM
    app.skip_authorization = True
    app.client_secret = settings.ERUMLAB_HUB_CLIENT_SECRET
    app.hash_client_secret = True
    app.save()
    return app
