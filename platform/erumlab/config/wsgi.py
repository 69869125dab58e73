import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erumlab.config.settings")
application = get_wsgi_application()
# Import every view now, while the worker boots, rather than in its first request:
# the URL configuration pulls in nbformat, torch and the rest (about 3 s here), and
# that first request is often the hub's pre-spawn call, which a user is waiting on.
get_resolver().url_patterns  # noqa: B018
