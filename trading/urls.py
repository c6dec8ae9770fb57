from __future__ import annotations

from django.urls import path

from trading import views

urlpatterns = [
    path("positions/", views.positions, name="positions"),
    path("trades/", views.trades, name="trades"),
    path("trades.csv", views.trades_csv, name="trades_csv"),
    path("risk/", views.risk, name="risk"),
    path("alerts/", views.alerts, name="alerts"),
]
