"""The Close buttons: of a paper position (Positions page; the radar carries it out,
``radar.close``) and of a live position (Live page; the live executor carries it out,
``radar.live``) — confirmed, recorded requests (``strategies.closes``). Both need the steer
permission, like ``/control/``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from strategies.closes import live_position_close_request, position_close_request
from strategies.services import ControlError
from strategies.views import STEER_PERMISSION, form_errors_text, redirect_back


class CloseForm(forms.Form):
    strategy = forms.CharField(max_length=64)
    position_id = forms.CharField(max_length=64)
    shadow = forms.BooleanField(required=False)
    reason = forms.CharField(required=False, max_length=500)
    confirm = forms.BooleanField(required=True, error_messages={"required": "tick confirm"})


@login_required
@permission_required(STEER_PERMISSION, raise_exception=True)
@require_POST
def position_close(request: HttpRequest) -> HttpResponse:
    """Record a Close of one open paper position; the radar closes it at market at its next
    candle. Without the steer permission: 403 and nothing is recorded."""
    form = CloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not closed — {form_errors_text(form)}")
    else:
        data = form.cleaned_data
        try:
            position_close_request(
                strategy=data["strategy"],
                position_id=data["position_id"],
                shadow=data["shadow"],
                user=request.user,
                reason=data["reason"],
            )
        except ControlError as exc:
            messages.error(request, f"Not closed — {exc}")
        else:
            messages.success(
                request,
                f"Close of {data['strategy']} position {data['position_id']} requested: the "
                "radar closes it at market at its next candle (see Alerts).",
            )
    return redirect_back(request, "positions")


class LiveCloseForm(forms.Form):
    live_position_id = forms.IntegerField(min_value=1)
    reason = forms.CharField(required=False, max_length=500)
    confirm = forms.BooleanField(required=True, error_messages={"required": "tick confirm"})


@login_required
@permission_required(STEER_PERMISSION, raise_exception=True)
@require_POST
def live_position_close(request: HttpRequest) -> HttpResponse:
    """Record a Close of one open live position; the live executor closes it reduce-only at
    market at its next controls read. Without the steer permission: 403, nothing recorded."""
    form = LiveCloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not closed — {form_errors_text(form)}")
    else:
        data = form.cleaned_data
        try:
            action = live_position_close_request(
                live_position_id=data["live_position_id"],
                user=request.user,
                reason=data["reason"],
            )
        except ControlError as exc:
            messages.error(request, f"Not closed — {exc}")
        else:
            messages.success(
                request,
                f"Close of live position #{data['live_position_id']} ({action.strategy_name}) "
                "requested: the live executor closes it at market at its next controls read "
                "(see Alerts).",
            )
    return redirect(reverse("live"))
