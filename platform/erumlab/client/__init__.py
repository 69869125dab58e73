"""erumlab.client: the thin REST client for notebooks and jobs.

    from erumlab.client import Client
    erumlab = Client()            # ERUMLAB_URL and ERUMLAB_API_TOKEN from the environment
    erumlab.me()["username"]

It talks to the portal over HTTP only, so it works the same in a JupyterLab
session, a batch job or on a laptop.
"""

from erumlab.client.api import ApiError, Client, ClientConfigError

__all__ = ["ApiError", "Client", "ClientConfigError"]
