"""Small shared value types of the trading core."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """+1 for a long, -1 for a short: P&L = sign × (exit − entry) × qty."""
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    SIGNAL_EXIT = "signal_exit"
    REGIME_CHANGE = "regime_change"
    KILL_SWITCH = "kill_switch"
    MANUAL = "manual"
    END_OF_DATA = "end_of_data"
    TIME_STOP = "time_stop"
