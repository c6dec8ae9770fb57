from __future__ import annotations

from django.urls import path

from strategies import live_views, views

urlpatterns = [
    path("", views.radar, name="radar"),
    path("arena/", views.arena, name="arena"),
    path("session/", views.session, name="session"),
    path("signals/", views.signals, name="signals"),
    path("chart/", views.chart, name="chart"),
    path("live/", live_views.live, name="live"),
    path("control/", views.control, name="control"),
]
