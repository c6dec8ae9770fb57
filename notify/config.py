"""``config/notify.yaml``: what is sent to Telegram, how fast, and the watchdog's thresholds.

The file is checked strictly (``common.yamlcheck``): an unknown key, a wrong type, a negative
interval or an unknown level raises :class:`~common.yamlcheck.ConfigError` with one line per
problem, ``config/notify.yaml: key.path = value — why (line N)``. Every key has a default (the
shipped file's value), so a config directory without the file gets the shipped behaviour.

:func:`get_notify_config` returns the frozen :class:`NotifyConfig` of ``settings.CONFIG_DIR``,
read once per directory for the process; :func:`reset_cache` forgets it (after an edit, or a
test's ``settings.CONFIG_DIR`` override). Units: ``*_s`` seconds, ``*_minutes`` minutes,
``max_message_chars`` characters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from django.conf import settings
from pydantic import Field, ValidationError, model_validator

from common.yamlcheck import (
    ConfigError,
    Problem,
    StrictSchema,
    display_path,
    problems_from,
    read_yaml,
    report,
)

FILE_NAME = "notify.yaml"
LEVEL_RANK = {"info": 0, "warning": 1, "error": 2}
TELEGRAM_MAX_MESSAGE_CHARS = 4096

Level = Literal["info", "warning", "error"]


# --- the file's schema (pydantic, strict) ------------------------------------------------------


class TradesSection(StrictSchema):
    opened: bool = True
    closed: bool = True
    live: bool = True
    paper: bool = True


class WatchdogSection(StrictSchema):
    ws_disconnected_s: float = Field(default=30.0, gt=0)
    api_latency_s: float = Field(default=2.0, gt=0)
    candle_silence_s: float = Field(default=120.0, gt=0)
    strategy_silence_minutes: float = Field(default=60.0, gt=0)


class DeadmanSection(StrictSchema):
    check_every_s: float = Field(default=10.0, gt=0)
    silent_after_s: float = Field(default=60.0, gt=0)
    ping_every_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _silence_spans_a_check(self) -> Self:
        if self.silent_after_s < self.check_every_s:
            raise ValueError(
                f"silent_after_s ({self.silent_after_s:g}) must be at least check_every_s "
                f"({self.check_every_s:g}): the radar would be declared down between two probes"
            )
        return self


class NotifyFile(StrictSchema):
    alerts_min_level: Level = "warning"
    trades: TradesSection = TradesSection()
    radar_start_stop: bool = True
    heartbeat_minutes: float = Field(default=60.0, ge=0)
    per_chat_interval_s: float = Field(default=1.0, gt=0)
    coalesce_window_s: float = Field(default=2.0, ge=0)
    max_message_chars: int = Field(default=3500, ge=200, le=TELEGRAM_MAX_MESSAGE_CHARS)
    retry_backoff_s: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [1.0, 2.0, 5.0, 15.0, 60.0], min_length=1
    )
    stale_after_minutes: float = Field(default=60.0, gt=0)
    watchdog: WatchdogSection = WatchdogSection()
    deadman: DeadmanSection = DeadmanSection()


# --- the value the code uses --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeSwitches:
    """Which trades are sent: an event switch (opened / closed) AND a mode switch must be on."""

    opened: bool = True
    closed: bool = True
    live: bool = True
    paper: bool = True


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    ws_disconnected_s: float = 30.0
    api_latency_s: float = 2.0
    candle_silence_s: float = 120.0
    strategy_silence_minutes: float = 60.0


@dataclass(frozen=True, slots=True)
class DeadmanConfig:
    check_every_s: float = 10.0
    silent_after_s: float = 60.0
    ping_every_s: float = 60.0


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The checked ``notify.yaml`` (see the shipped file for each key's meaning)."""

    alerts_min_level: str = "warning"
    trades: TradeSwitches = TradeSwitches()
    radar_start_stop: bool = True
    heartbeat_minutes: float = 60.0
    per_chat_interval_s: float = 1.0
    coalesce_window_s: float = 2.0
    max_message_chars: int = 3500
    retry_backoff_s: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 60.0)
    stale_after_minutes: float = 60.0
    watchdog: WatchdogConfig = WatchdogConfig()
    deadman: DeadmanConfig = DeadmanConfig()

    def alert_is_sent(self, level: str) -> bool:
        """True when an alert of ``level`` reaches the chat (``>= alerts_min_level``)."""
        return LEVEL_RANK.get(level, 0) >= LEVEL_RANK[self.alerts_min_level]

    def backoff_s(self, failures: int) -> float:
        """Wait after the ``failures``-th consecutive failure (1-based), seconds."""
        index = min(max(failures, 1), len(self.retry_backoff_s)) - 1
        return float(self.retry_backoff_s[index])

    @classmethod
    def from_file(cls, parsed: NotifyFile) -> NotifyConfig:
        return cls(
            alerts_min_level=parsed.alerts_min_level,
            trades=TradeSwitches(**parsed.trades.model_dump()),
            radar_start_stop=parsed.radar_start_stop,
            heartbeat_minutes=float(parsed.heartbeat_minutes),
            per_chat_interval_s=float(parsed.per_chat_interval_s),
            coalesce_window_s=float(parsed.coalesce_window_s),
            max_message_chars=parsed.max_message_chars,
            retry_backoff_s=tuple(float(d) for d in parsed.retry_backoff_s),
            stale_after_minutes=float(parsed.stale_after_minutes),
            watchdog=WatchdogConfig(**parsed.watchdog.model_dump()),
            deadman=DeadmanConfig(**parsed.deadman.model_dump()),
        )


def load_notify_config(directory: Path) -> NotifyConfig:
    """Read and check ``directory/notify.yaml`` (absent: the defaults). Raises ``ConfigError``."""
    path = directory / FILE_NAME
    if not path.is_file():
        return NotifyConfig()
    problems: list[Problem] = []
    file = display_path(path)
    doc = read_yaml(path, file, problems)
    if doc is not None:
        data = {} if doc.data is None else doc.data
        if not isinstance(data, dict):
            problems.append(Problem(file, why="must be a mapping (key: value lines)"))
        else:
            try:
                return NotifyConfig.from_file(NotifyFile.model_validate(data))
            except ValidationError as exc:
                problems.extend(problems_from(exc, file, NotifyFile))
    raise ConfigError(report(problems, {file: doc} if doc else {}))


_cache: dict[Path, NotifyConfig] = {}
_cache_lock = threading.Lock()


def get_notify_config(directory: Path | str | None = None) -> NotifyConfig:
    """The checked configuration of ``directory`` (default ``settings.CONFIG_DIR``), read once."""
    resolved = Path(directory if directory is not None else settings.CONFIG_DIR).resolve()
    with _cache_lock:
        config = _cache.get(resolved)
        if config is None:
            config = _cache[resolved] = load_notify_config(resolved)
        return config


def reset_cache() -> None:
    """Forget every cached configuration: the next :func:`get_notify_config` reads the file."""
    with _cache_lock:
        _cache.clear()
