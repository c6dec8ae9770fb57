"""``manage.py radar``: the main job in one process on the embedded default.

Applies migrations, loads ``config/*.yaml`` when the database has no strategies, creates an
admin account if none exists (the password is printed ONCE), then runs the feed and the
runtime in-process with Daphne serving the dashboard on the same event loop.

Source: live Bitget public data by default (no API keys needed for paper trading); when the
exchange cannot be reached it says so in one line and replays the bundled real sample instead
(``--replay`` asks for a replay explicitly, of the bundled sample or of the given CSV files).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from radar.launch import sample_candle_files
from scalpradar import serve as radar
from strategies.models import StrategyConfig


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise CommandError(f"--speed must be a number or 'max', got {value!r}") from None
    if speed <= 0:
        raise CommandError("--speed must be positive")
    return speed


class Command(BaseCommand):
    help = "Run the radar: feed, strategies, paper arena and the live dashboard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--replay",
            nargs="*",
            metavar="PATH",
            default=None,
            help="replay recorded 1m candles (default: the bundled sample) instead of live data",
        )
        parser.add_argument(
            "--speed",
            default="60",
            help="replay speed: multiple of real time (60 = one minute per second) or 'max'",
        )
        parser.add_argument(
            "--warmup-hours",
            type=float,
            default=24.0,
            help="a paced replay runs its first N hours at max speed to warm up indicators",
        )
        parser.add_argument(
            "--fake-exchange",
            metavar="SPEED",
            type=float,
            default=None,
            help="run LIVE against an in-process fake Bitget (the real ccxt code on a local "
            "server, bundled real candles and funding, synthesised open interest) whose market "
            "clock runs SPEED times faster than real time, e.g. 60",
        )
        parser.add_argument(
            "--exchange",
            choices=["fake"],
            default=None,
            help="fake = the whole LIVE loop on this machine: the feed from an in-process fake "
            "Bitget replaying the bundled real candles at --speed, and the strategies set live "
            "trading against its private API (orders, stops, fills, reconciliation). With "
            "EXCHANGE_BASE_URL set: the fake already serving there (python -m "
            "trading.exchanges.fake), on its own market clock (--speed is not used)",
        )
        parser.add_argument(
            "--selector-every",
            type=int,
            default=60,
            metavar="MINUTES",
            help="minutes of market time per round of the arena's selector (0 = no selector)",
        )
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--headless",
            action="store_true",
            help="no web server; with a replay, exit at its end and print a summary",
        )
        parser.add_argument(
            "--no-fallback",
            action="store_true",
            help="fail instead of replaying the sample when the exchange is unreachable",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        speed = _speed(opts["speed"])
        if opts["fake_exchange"] is not None and opts["fake_exchange"] <= 0:
            raise CommandError("--fake-exchange SPEED must be positive")
        if opts["exchange"] == "fake" and opts["fake_exchange"] is None:
            if speed is None:
                raise CommandError("--exchange fake runs at a pace: give --speed a number")
            opts["fake_exchange"] = speed
        if opts["selector_every"] < 0:
            raise CommandError("--selector-every must be 0 (off) or a number of minutes")
        if opts["warmup_hours"] < 0:
            raise CommandError("--warmup-hours must be zero or positive")
        call_command("migrate", interactive=False, verbosity=0)
        if not StrategyConfig.objects.exists():
            self.stdout.write("First run: loading config/*.yaml into the database")
            call_command("load_config", stdout=self.stdout)
        self._ensure_admin()
        replay_paths = None
        if opts["replay"] is not None:
            replay_paths = [Path(p) for p in opts["replay"]] or sample_candle_files()
        try:
            radar.run(
                replay_paths=replay_paths,
                speed=speed,
                warmup_hours=opts["warmup_hours"],
                host=opts["host"],
                port=opts["port"],
                headless=opts["headless"],
                fallback_to_replay=not opts["no_fallback"],
                out=self.stdout,
                fake_speed=opts["fake_exchange"],
                selector_every=opts["selector_every"],
            )
        except radar.RadarError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _ensure_admin(self) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "", password)
        self.stdout.write(
            self.style.WARNING(
                "Created the admin account — shown once, keep it:\n"
                f"    username: admin\n    password: {password}\n"
                f"(data folder: {settings.DATA_DIR})"
            )
        )
