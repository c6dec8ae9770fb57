"""ASGI entry point: HTTP through Django, websockets through Channels (login required)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
django_asgi_app = get_asgi_application()

# A bare `daphne scalpradar.asgi:application` runs no system checks: validate the YAML here so
# a bad value stops start-up with the file and key named.
from strategies.config import get_config  # noqa: E402

get_config()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from scalpradar.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
