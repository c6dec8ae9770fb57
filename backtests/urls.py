from __future__ import annotations

from django.urls import path

from backtests import views

urlpatterns = [
    path("", views.backtest_list, name="backtests"),
    path("compare/", views.backtest_compare, name="backtest_compare"),
    path("arena/", views.backtest_arena, name="backtest_arena"),
    path("<int:run_id>/", views.backtest_detail, name="backtest_detail"),
    path("<int:run_id>/progress/", views.backtest_progress, name="backtest_progress"),
]
