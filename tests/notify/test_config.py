"""config/notify.yaml: strict checking with the key named, and every key acting.

The delivery keys (per_chat_interval_s, coalesce_window_s, max_message_chars, retry_backoff_s,
stale_after_minutes) act in the sender: tests/notify/test_sender.py changes each one. The
watchdog / deadman keys and heartbeat_minutes' cadence act in H3's features (radar.watchdog,
notify.deadman, notify.heartbeat) and are tested there; here they are checked (types, bounds).
:data:`COVERED` names the test of each key; a key added to the schema without one fails
:func:`test_every_key_of_notify_yaml_has_a_test`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from common.notices import Notice, alert_notice, emit, trade_closed_notice, trade_opened_notice
from common.yamlcheck import ConfigError
from notify.config import (
    NotifyConfig,
    NotifyFile,
    get_notify_config,
    load_notify_config,
    reset_cache,
)
from notify.models import Notification

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "notify.yaml"

SENDER = "tests/notify/test_sender.py::"
H3 = "H3's tests of the watchdog / dead-man / heartbeat (tests/radar/test_watchdog.py, ...)"
COVERED = {
    "alerts_min_level": "test_alerts_min_level_decides_which_alerts_reach_the_phone",
    "trades.opened": "test_each_trade_switch_silences_its_trades",
    "trades.closed": "test_each_trade_switch_silences_its_trades",
    "trades.live": "test_each_trade_switch_silences_its_trades",
    "trades.paper": "test_each_trade_switch_silences_its_trades",
    "radar_start_stop": "test_radar_start_stop_and_heartbeat_minutes_gate_their_notices",
    "heartbeat_minutes": "test_radar_start_stop_and_heartbeat_minutes_gate_their_notices + H3",
    "per_chat_interval_s": SENDER + "test_one_chat_gets_at_most_one_message_per_interval",
    "coalesce_window_s": SENDER + "test_messages_within_the_coalescing_window_go_as_one",
    "max_message_chars": SENDER + "test_a_batch_longer_than_max_message_chars_is_split",
    "retry_backoff_s": SENDER + "test_a_network_error_waits_the_backoff_then_sends",
    "stale_after_minutes": SENDER + "test_a_row_pending_longer_than_stale_after_is_dropped",
    "watchdog.ws_disconnected_s": H3,
    "watchdog.api_latency_s": H3,
    "watchdog.candle_silence_s": H3,
    "watchdog.strategy_silence_minutes": H3,
    "deadman.check_every_s": H3,
    "deadman.silent_after_s": H3,
    "deadman.ping_every_s": H3,
}


def schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        tp = field.annotation
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys |= schema_keys(tp, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_every_key_of_notify_yaml_has_a_test():
    assert schema_keys(NotifyFile) == set(COVERED)


@pytest.fixture
def config_dir(tmp_path: Path, settings) -> Path:
    """A copy of the shipped notify.yaml, made the settings' config directory."""
    shutil.copy(SHIPPED, tmp_path / "notify.yaml")
    settings.CONFIG_DIR = tmp_path
    return tmp_path


def edit(directory: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in ``directory/notify.yaml``, then forget the cached config
    (as a restart would)."""
    path = directory / "notify.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in notify.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    reset_cache()


# --- checking ------------------------------------------------------------------------------------


def test_the_shipped_file_is_the_documented_defaults():
    assert load_notify_config(SHIPPED.parent) == NotifyConfig()


def test_a_config_directory_without_the_file_gets_the_defaults(tmp_path):
    assert load_notify_config(tmp_path) == NotifyConfig()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("alerts_min_level: warning", "alert_min_level: warning",
         "alert_min_level = \"warning\" — unknown key (did you mean alerts_min_level?) (line 10)"),
        ("  opened: true", "  openned: true",
         "trades.openned = true — unknown key (did you mean opened?)"),
        ("alerts_min_level: warning", "alerts_min_level: debug",
         "alerts_min_level = \"debug\" — must be one of 'info', 'warning' or 'error'"),
        ("max_message_chars: 3500", "max_message_chars: lots",
         'max_message_chars = "lots" — must be a whole number'),
        ("max_message_chars: 3500", "max_message_chars: 5000",
         "max_message_chars = 5000 — must be ≤ 4096"),
        ("per_chat_interval_s: 1.0", "per_chat_interval_s: -1",
         "per_chat_interval_s = -1 — must be > 0"),
        ("coalesce_window_s: 2.0", "coalesce_window_s: -0.5",
         "coalesce_window_s = -0.5 — must be ≥ 0"),
        ("heartbeat_minutes: 60", "heartbeat_minutes: -5", "heartbeat_minutes = -5 — must be ≥ 0"),
        ("radar_start_stop: true", "radar_start_stop: 1", "radar_start_stop = 1 — must be true or"),
        ("retry_backoff_s: [1, 2, 5, 15, 60]", "retry_backoff_s: [1, -2]",
         "retry_backoff_s[1] = -2 — must be > 0"),
        ("retry_backoff_s: [1, 2, 5, 15, 60]", "retry_backoff_s: []",
         "retry_backoff_s = [] — must not be empty"),
        ("stale_after_minutes: 60", "stale_after_minutes: 0",
         "stale_after_minutes = 0 — must be > 0"),
        ("  ws_disconnected_s: 30", "  ws_disconnected_s: -30",
         "watchdog.ws_disconnected_s = -30 — must be > 0"),
        ("  api_latency_s: 2.0", "  api_latency_s: fast",
         'watchdog.api_latency_s = "fast" — must be a number'),
        ("  candle_silence_s: 120", "  candle_silence_s: 0",
         "watchdog.candle_silence_s = 0 — must be > 0"),
        ("  strategy_silence_minutes: 60", "  strategy_silence_minutes: -1",
         "watchdog.strategy_silence_minutes = -1 — must be > 0"),
        ("  check_every_s: 10", "  check_every_s: 0", "deadman.check_every_s = 0 — must be > 0"),
        ("  silent_after_s: 60", "  silent_after_s: 5",
         "deadman — silent_after_s (5) must be at least check_every_s (10)"),
        ("  ping_every_s: 60", "  ping_every_s: -60", "deadman.ping_every_s = -60 — must be > 0"),
        ("trades:\n", "trades: yes\ntrades_:\n", "trades = true — must be a mapping"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_its_key(config_dir, old, new, expected):
    edit(config_dir, old, new)
    with pytest.raises(ConfigError) as raised:
        load_notify_config(config_dir)
    assert expected in str(raised.value)
    assert "notify.yaml" in str(raised.value)


def test_broken_yaml_and_a_file_that_is_not_a_mapping_are_refused(config_dir):
    (config_dir / "notify.yaml").write_text("alerts_min_level: [warning\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML syntax error at line"):
        load_notify_config(config_dir)
    (config_dir / "notify.yaml").write_text("- warning\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_notify_config(config_dir)


def test_the_config_is_cached_per_directory(config_dir, tmp_path_factory):
    first = get_notify_config()
    assert get_notify_config() is first
    other = tmp_path_factory.mktemp("other")
    (other / "notify.yaml").write_text("alerts_min_level: error\n", encoding="utf-8")
    assert get_notify_config(other).alerts_min_level == "error"
    assert get_notify_config() is first


# --- the keys that act when a notice is queued ----------------------------------------------------


@pytest.fixture
def telegram_on(settings):
    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_CHAT_IDS = ("111",)


def queued_kinds() -> list[str]:
    return list(Notification.objects.order_by("id").values_list("kind", flat=True))


def emit_every_trade() -> None:
    for mode in ("paper", "live"):
        emit(trade_opened_notice(mode=mode, strategy="s", side="long", symbol="X", qty=1, price=1))
        emit(
            trade_closed_notice(
                mode=mode, strategy="s", side="long", symbol="X", qty=1, price=1, reason="exit",
                gross_usdt=1.0, fees_usdt=0.1, funding_usdt=0.0, net_usdt=0.9,
            )
        )  # fmt: skip


def queued_trades() -> list[tuple[str, str]]:
    rows = Notification.objects.order_by("id").values_list("kind", "text")
    return [(kind, text.split()[1].lower()) for kind, text in rows]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("level", "sent"),
    [("info", ["info", "warning", "error"]), ("warning", ["warning", "error"]),
     ("error", ["error"])],
)  # fmt: skip
def test_alerts_min_level_decides_which_alerts_reach_the_phone(
    config_dir, telegram_on, level, sent
):
    edit(config_dir, "alerts_min_level: warning", f"alerts_min_level: {level}")
    for each in ("info", "warning", "error"):
        emit(alert_notice(level=each, message=f"an {each} alert"))
    assert list(Notification.objects.order_by("id").values_list("level", flat=True)) == sent


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "left"),
    [
        ("opened", [("trade_closed", "paper"), ("trade_closed", "live")]),
        ("closed", [("trade_opened", "paper"), ("trade_opened", "live")]),
        ("paper", [("trade_opened", "live"), ("trade_closed", "live")]),
        ("live", [("trade_opened", "paper"), ("trade_closed", "paper")]),
    ],
)
def test_each_trade_switch_silences_its_trades(config_dir, telegram_on, key, left):
    emit_every_trade()
    assert len(queued_trades()) == 4  # all on: every trade
    Notification.objects.all().delete()
    edit(config_dir, f"  {key}: true", f"  {key}: false")
    emit_every_trade()
    assert queued_trades() == left


@pytest.mark.django_db
def test_radar_start_stop_and_heartbeat_minutes_gate_their_notices(config_dir, telegram_on):
    def emit_both() -> None:
        emit(Notice(kind="radar", text="radar started", source="radar"))
        emit(Notice(kind="heartbeat", text="alive", source="radar"))

    emit_both()
    assert queued_kinds() == ["radar", "heartbeat"]
    Notification.objects.all().delete()
    edit(config_dir, "radar_start_stop: true", "radar_start_stop: false")
    edit(config_dir, "heartbeat_minutes: 60", "heartbeat_minutes: 0")
    emit_both()
    assert queued_kinds() == []


# --- the environment (scalpradar/settings.py) ----------------------------------------------------


def test_telegram_ids_from_the_environment_are_checked_naming_the_variable(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from scalpradar.settings import env_chat_ids, env_user_ids

    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", " 111, 222 ")
    users = env_user_ids("TELEGRAM_ALLOWED_USER_IDS")
    assert users == (111, 222)
    monkeypatch.delenv("TELEGRAM_CHAT_IDS", raising=False)
    assert env_chat_ids("TELEGRAM_CHAT_IDS", users) == ("111", "222")  # default: private chats
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "-1001234,@scalp_alerts")
    assert env_chat_ids("TELEGRAM_CHAT_IDS", users) == ("-1001234", "@scalp_alerts")
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", "111,bob")
    with pytest.raises(ImproperlyConfigured, match="TELEGRAM_ALLOWED_USER_IDS: 'bob' is not"):
        env_user_ids("TELEGRAM_ALLOWED_USER_IDS")
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "111,my group")
    with pytest.raises(ImproperlyConfigured, match="TELEGRAM_CHAT_IDS: 'my group' is not a chat"):
        env_chat_ids("TELEGRAM_CHAT_IDS", users)


@pytest.mark.django_db
def test_a_channel_name_of_telegrams_full_length_is_stored_and_a_longer_id_refused(monkeypatch):
    """A channel username may have 32 characters: "@" + 32 did not fit the column (on
    PostgreSQL every chat's notification failed in one bulk insert)."""
    from django.core.exceptions import ImproperlyConfigured

    from notify.models import Notification
    from scalpradar.settings import env_chat_ids

    longest = "@" + "c" * 32
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", f"111,{longest}")
    assert env_chat_ids("TELEGRAM_CHAT_IDS", ()) == ("111", longest)
    Notification.objects.create(chat_id=longest, kind="alert", level="error", text="t")
    assert Notification.objects.get().chat_id == longest
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "@" + "c" * 64)
    with pytest.raises(ImproperlyConfigured, match="longer than 64"):
        env_chat_ids("TELEGRAM_CHAT_IDS", ())
