"""``manage.py grant_trader USERNAME [--revoke]``: give (or take back) the trader role.

The role is the "trader" group, which holds the ``strategies.steer_radar`` permission (pause,
resume, kill-switch resets, parameters); viewing needs only a login (docs/security.md). The same
as ticking the group on the user's admin page, for a server without a browser at hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

TRADER_GROUP = "trader"


class Command(BaseCommand):
    help = "Add a user to the trader group (steers the radar), or remove them with --revoke."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--revoke", action="store_true", help="remove the user from the trader group"
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        model = get_user_model()
        try:
            user = model._default_manager.get(**{model.USERNAME_FIELD: username})
        except model.DoesNotExist:
            raise CommandError(
                f"no user {username!r}: create one first with manage.py createsuperuser "
                "or in the admin (Users -> Add)"
            ) from None
        try:
            group = Group.objects.get(name=TRADER_GROUP)
        except Group.DoesNotExist:
            raise CommandError(
                f'the "{TRADER_GROUP}" group is missing: run manage.py migrate'
            ) from None
        if options["revoke"]:
            user.groups.remove(group)
            self.stdout.write(f"{username} is no longer a trader (can still view)")
        else:
            user.groups.add(group)
            self.stdout.write(f"{username} is a trader: may pause, resume and reset")
        if user.is_superuser:
            self.stdout.write(f"note: {username} is a superuser and steers in any case")
