"""The kernel's settings, modes and state, and how that state is saved and restored.

:class:`KernelConfig` holds one strategy's money, costs and limits; :class:`KernelState` is the
base of :class:`strategies.core.kernel.loop.StrategyKernel`: the attributes every part of the
kernel shares (ledgers, kill switch, pending entries, the seeded generator) and the JSON-safe
:meth:`KernelState.state` / restore. Determinism: every random draw (limit fills) comes from
one ``numpy`` generator seeded with ``seed``; its state is part of the saved state, so the same
candles + inputs + seed give the same events whether the run was interrupted or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np

from strategies.core.base import OrderBook, Strategy, StrategyError
from strategies.core.kernel.events import ENTRY, OrderIntent, client_order_id
from strategies.core.regime import Regime, RegimeThresholds
from strategies.core.snapshot import DEFAULT_MAX_CANDLES, SnapshotBuilder
from trading.core.fees import BITGET_VIP0, FeeSchedule
from trading.core.fills import LimitFillModel
from trading.core.ledger import ClosedTrade, Ledger
from trading.core.orders import BUNDLED_ASSET_RULES, InstrumentRules
from trading.core.risk import AccountState, KillSwitchState, RiskGate, RiskLimits
from trading.core.slippage import SlippageModel
from trading.core.types import MarginMode, OrderType, Side

MINUTE_MS = 60_000
STATE_VERSION = 2  # 2: pending entries are order intents (1 is read and converted)
ZERO_FEES = FeeSchedule(maker_rate=0.0, taker_rate=0.0)


class KernelError(StrategyError):
    """The kernel was driven in a way that would break its guarantees."""


class Mode(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    KILLED = "killed"


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """Money, costs and limits of one strategy's loop. Percent fields hold percent (5 = 5 %).

    ``market_rules`` maps each traded symbol to its :class:`InstrumentRules` (tick, step,
    minimums, max leverage): the sizing, the gate, the fill model and the intents all round
    with them, and a kernel refuses at construction a symbol it has no rules for. Default: the
    bundled BTC/ETH/SOL contracts (:data:`trading.core.orders.BUNDLED_ASSET_RULES`).
    ``regime`` classifies the entry timeframe (trend rule and volatility: the gate's
    high-volatility slippage, the regime label of signals and positions) and is handed to the
    strategies through the snapshot (``MarketSnapshot.regime_rules``); its ATR percentile is
    ranked over ``atr_percentile_window`` candles (288 = one day of 5m candles), which the
    snapshot always holds. ``limit_order_ttl_candles``: 1m candles a limit entry rests.

    The pre-trade rules live in ``risk_limits`` (:class:`trading.core.risk.RiskLimits`).
    """

    capital_usdt: float = 10_000.0
    fee_schedule: FeeSchedule = BITGET_VIP0
    slippage: SlippageModel = field(default_factory=SlippageModel)
    fill_model: LimitFillModel = field(default_factory=LimitFillModel)
    risk_limits: RiskLimits = field(default_factory=RiskLimits)
    max_session_loss_pct: float = 5.0
    margin_mode: MarginMode = MarginMode.ISOLATED
    fees_enabled: bool = True
    limit_order_ttl_candles: int = 5
    seed: int = 0
    max_candles: int = DEFAULT_MAX_CANDLES
    # A KILLED strategy keeps deciding on the shadow ledger (its recovery stays visible) unless
    # this is False: then it stops deciding until its kill switch is reset (a PAUSED one always
    # shadows: pausing is the trader's choice, not a loss limit).
    shadow_when_killed: bool = True
    market_rules: Mapping[str, InstrumentRules] = field(
        default_factory=lambda: BUNDLED_ASSET_RULES, hash=False
    )
    regime: RegimeThresholds = field(
        default_factory=lambda: RegimeThresholds(atr_percentile_window=288)
    )

    @property
    def booked_fees(self) -> FeeSchedule:
        """The schedule the ledgers charge: the real one, or zero with ``fees_enabled=False``."""
        return self.fee_schedule if self.fees_enabled else ZERO_FEES

    def with_fees(self, enabled: bool) -> KernelConfig:
        return _replace(self, fees_enabled=enabled)


def _replace(config: KernelConfig, **changes: Any) -> KernelConfig:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values.update(changes)
    return KernelConfig(**values)


@dataclass(slots=True)
class PendingEntry:
    """An entry intent resting at the paper venue, with the venue's bookkeeping:
    ``candles_left`` 1m candles before a limit entry is cancelled."""

    intent: OrderIntent
    candles_left: int

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent.to_dict(), "candles_left": self.candles_left}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingEntry:
        return cls(OrderIntent.from_dict(data["intent"]), int(data["candles_left"]))


@dataclass(slots=True)
class _SymbolState:
    strategy: Strategy
    entry_tf: str
    entry_step_ms: int
    max_hold_ms: int | None
    builder: SnapshotBuilder | None = None
    preloaded_until_ms: int = -1  # open time of the last 1m candle the builder already holds
    last_row: list[float] | None = None
    last_now_ms: int | None = None
    funding: np.ndarray | None = None
    funding_cursor: int = 0  # index of the first funding row not yet booked
    # Every funding row stamped at or before this (ms) is booked, or passed before the kernel's
    # first candle; a row arriving LATE (polled after its settlement instant, as live polling
    # does) sorts after it and is booked at the next candle. None before the first candle.
    funding_seen_ms: int | None = None
    open_interest: np.ndarray | None = None
    trades: np.ndarray | None = None
    order_book: OrderBook | None = None
    skipped_reason: str | None = None
    # Checkpointed series states (strategies.core.series) waiting for the next preload, and
    # the keys the last preload could not resume (its history ended elsewhere).
    saved_series: dict[str, Any] | None = None
    series_not_resumed: list[str] = field(default_factory=list)


class KernelState:
    """What every part of the kernel reads and writes; ``StrategyKernel`` sets it up."""

    name: str
    config: KernelConfig
    confirmers: tuple[Strategy, ...]
    regime_rules: RegimeThresholds
    ledger: Ledger
    shadow_ledger: Ledger
    gate: RiskGate
    kill_switch: KillSwitchState
    mode: Mode
    pending: list[PendingEntry]
    rng: np.random.Generator
    account: AccountState | None
    _symbols: dict[str, _SymbolState]
    _marks: dict[str, float]
    _regimes: dict[tuple[str, bool], str]  # regime at entry, per (position id, shadow)
    _rules: dict[str, InstrumentRules]  # per traded symbol

    @property
    def shadow(self) -> bool:
        return self.mode is not Mode.ACTIVE

    def set_mode(self, mode: Mode | str) -> None:
        """``active`` trades the real ledger; ``paused``/``killed`` trade the shadow ledger.

        Leaving ``active`` cancels the real ledger's pending entries (nothing new may open).
        """
        new = Mode(mode)
        if new is not Mode.ACTIVE:
            self.pending = [o for o in self.pending if o.intent.shadow]
        self.mode = new

    def symbols(self) -> tuple[str, ...]:
        """The symbols this kernel trades."""
        return tuple(self._symbols)

    def _sym(self, symbol: str) -> _SymbolState:
        try:
            return self._symbols[symbol]
        except KeyError:
            raise KernelError(
                f"kernel {self.name!r} does not trade {symbol} (it trades "
                f"{', '.join(self._symbols)})"
            ) from None

    def _ledger(self, shadow: bool) -> Ledger:
        return self.shadow_ledger if shadow else self.ledger

    def _regime_of(self, trade: ClosedTrade) -> str:
        for key in ((trade.position_id, False), (trade.position_id, True)):
            if key in self._regimes:
                return self._regimes[key]
        return Regime.UNKNOWN.name.lower()

    # -- persistence ---------------------------------------------------------------------------

    def state(self, include_closed: bool = True) -> dict[str, Any]:
        """JSON-safe state: restore with ``StrategyKernel(..., state=kernel.state())``.

        Candle history is not included: the caller preloads it again (from the database live,
        from the same arrays in a backtest) before feeding the next candle. Without
        ``include_closed`` the ledgers' closed trades are left out (their sums are kept): the
        live runtime's checkpoints, whose trades are stored as rows, stay the same size
        however many trades were made.
        """
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "mode": self.mode.value,
            "ledger": self.ledger.to_dict(include_closed),
            "shadow_ledger": self.shadow_ledger.to_dict(include_closed),
            "kill_switch": self.kill_switch.to_dict(),
            "pending": [o.to_dict() for o in self.pending],
            "rng": _json_safe(self.rng.bit_generator.state),
            "marks": dict(self._marks),
            "regimes": [[pid, shadow, label] for (pid, shadow), label in self._regimes.items()],
            "symbols": {
                symbol: {
                    "last_row": st.last_row,
                    "last_now_ms": st.last_now_ms,
                    "funding_cursor": st.funding_cursor,
                    "funding_seen_ms": st.funding_seen_ms,
                    "skipped_reason": st.skipped_reason,
                    "series": (
                        st.builder.series_states()
                        if st.builder is not None
                        else dict(st.saved_series or {})
                    ),
                }
                for symbol, st in self._symbols.items()
            },
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        version = state.get("version")
        if version not in (1, STATE_VERSION):
            raise KernelError(
                f"cannot restore kernel state version {version!r}; expected {STATE_VERSION}"
            )
        self.mode = Mode(state["mode"])
        self.ledger = Ledger.from_dict(state["ledger"])
        self.shadow_ledger = Ledger.from_dict(state["shadow_ledger"])
        self.kill_switch = KillSwitchState.from_dict(state["kill_switch"])
        read = PendingEntry.from_dict if version == STATE_VERSION else self._pending_from_v1
        self.pending = [read(o) for o in state["pending"]]
        self.rng.bit_generator.state = state["rng"]
        self._marks = {k: float(v) for k, v in state["marks"].items()}
        for pid, shadow, label in state.get("regimes", []):
            self._regimes[str(pid), bool(shadow)] = str(label)
        for symbol, raw in state["symbols"].items():
            st = self._sym(symbol)
            st.last_row = raw["last_row"]
            st.last_now_ms = raw["last_now_ms"]
            st.funding_cursor = int(raw["funding_cursor"])
            # Older checkpoints: everything up to the last close was booked.
            st.funding_seen_ms = raw.get("funding_seen_ms", raw["last_now_ms"])
            st.skipped_reason = raw["skipped_reason"]
            st.saved_series = dict(raw.get("series") or {}) or None

    def _pending_from_v1(self, raw: Mapping[str, Any]) -> PendingEntry:
        """A version-1 pending order (flat fields, before order intents) as an intent."""
        order_type = OrderType(raw["order_type"])
        ttl = self.config.limit_order_ttl_candles if order_type is OrderType.LIMIT else 0
        decided = int(raw["decided_ms"])
        intent = OrderIntent(
            strategy=self.name,
            symbol=raw["symbol"],
            side=Side(raw["side"]),
            order_type=order_type,
            limit_price=float(raw["price"]) if order_type is OrderType.LIMIT else None,
            reference_price=float(raw["price"]),
            qty=float(raw["qty"]),
            leverage=int(raw["leverage"]),
            margin_mode=self.config.margin_mode,
            stop_loss=float(raw["stop_loss"]),
            take_profit=raw["take_profit"],
            max_hold_ms=self._sym(raw["symbol"]).max_hold_ms,
            expires_after_candles=ttl,
            expires_at_ms=decided + ttl * MINUTE_MS,
            time_ms=decided,
            client_order_id=client_order_id(
                self.name, raw["symbol"], decided, ENTRY, shadow=bool(raw["shadow"])
            ),
            shadow=bool(raw["shadow"]),
            high_volatility=bool(raw["high_volatility"]),
            regime=str(raw["regime"]),
        )
        return PendingEntry(intent, int(raw["candles_left"]))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
