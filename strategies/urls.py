from __future__ import annotations

from django.urls import path

from strategies import close_views, live_views, views

urlpatterns = [
    path("", views.radar, name="radar"),
    path("arena/", views.arena, name="arena"),
    path("session/", views.session, name="session"),
    path("signals/", views.signals, name="signals"),
    path("chart/", views.chart, name="chart"),
    path("chart/data/", views.chart_json, name="chart_data"),
    path("live/", live_views.live, name="live"),
    path("control/", views.control, name="control"),
    path("positions/close/", close_views.position_close, name="position_close"),
    path("live/close/", close_views.live_position_close, name="live_position_close"),
]
