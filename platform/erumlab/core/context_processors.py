from django.conf import settings

from erumlab import __version__


def platform(request):  # noqa: ANN001, ANN201
    return {
        "erumlab_version": __version__,
        "hub_url": settings.ERUMLAB_HUB_URL,
        "signup_open": settings.ERUMLAB_ALLOW_SIGNUP,
    }
