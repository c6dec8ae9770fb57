"""ASGI entry point: HTTP through Django, websockets through Channels (login required).

Websocket logins are resolved by ``LiveAuthMiddlewareStack`` (``scalpradar.consumers``): the
checks of Channels' ``AuthMiddlewareStack``, on a pool of their own instead of asgiref's one
shared sync thread, so a burst of connects never queues behind the rest of the process."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
django_asgi_app = get_asgi_application()

# A bare `daphne scalpradar.asgi:application` runs no system checks: validate the YAML here so
# a bad value stops start-up with the file and key named.
from strategies.config import get_config  # noqa: E402

get_config()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from scalpradar.consumers import LiveAuthMiddlewareStack  # noqa: E402
from scalpradar.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            LiveAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
