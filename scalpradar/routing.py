"""Websocket routes. Every consumer closes anonymous sockets."""

from __future__ import annotations

from django.urls import path

from scalpradar.consumers import LiveConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
