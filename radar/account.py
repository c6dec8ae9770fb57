"""The account of one mode (paper or live): every strategy of the mode together.

At each processed candle :meth:`AccountGuard.state` gathers the account — equity realised +
unrealised of every strategy's real ledger, their used margin, every open position and
pending entry (``Exposure.strategy`` naming its owner) — and evaluates the ACCOUNT kill switch
on it (``trading.core.risk.evaluate_account_kill_switch``, limit
``risk.yaml kill_switch.account_max_session_loss_pct``); each kernel of the mode then decides
with that state (``StrategyKernel.set_account``): once tripped, the gate refuses every new
real entry of the mode with the account's reason (shown on the Signals page), and it counts
the correlation groups and the free margin over the whole account.

The switch lives in the account's session (``TradingSession`` with ``strategy_name`` "",
``ledger_state["kill_switch"]``): a trip is stored (with an alert) in the batch's transaction
and survives restarts; only the recorded reset control
(``strategies.services.kill_switch_reset(name="")``) clears it, and the next session then
starts at the account's equity of that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from radar.arena import ArenaEntry
from trading.alerts import alert_create
from trading.core.risk import (
    ACCOUNT_SCOPE,
    AccountState,
    Exposure,
    KillSwitchState,
    evaluate_account_kill_switch,
    start_session,
)
from trading.services import session_checkpoint, session_kill_switch_trip, session_start

log = logging.getLogger(__name__)


class AccountGuard:
    """The account kill switch of one mode, over the arena entries of that mode."""

    def __init__(
        self,
        mode: str,
        entries: Sequence[ArenaEntry],
        *,
        max_session_loss_pct: float,
        now_ms: int = 0,
    ) -> None:
        self.mode = mode
        self.entries = list(entries)
        self.max_session_loss_pct = max_session_loss_pct
        capital = sum(e.session.initial_capital_usdt for e in self.entries) or 1.0
        self.session = session_start(strategy_name="", mode=mode, initial_capital_usdt=capital)
        stored = (self.session.ledger_state or {}).get("kill_switch")
        if stored:
            self.kill_switch = KillSwitchState.from_dict(stored)
        else:
            self.kill_switch = start_session(ACCOUNT_SCOPE, self.equity() or capital, now_ms)
            self._save_switch()
        self.current: AccountState | None = None

    def equity(self) -> float:
        """Realised + unrealised equity of every strategy of the mode (USDT, real ledgers)."""
        return sum(e.kernel.equity() for e in self.entries)

    def state(self, *, now_ms: int) -> AccountState:
        """The account now, its kill switch evaluated on it (a trip is stored at once)."""
        exposures: list[Exposure] = []
        used = 0.0
        for entry in self.entries:
            kernel, name = entry.kernel, entry.config.name
            used += kernel.ledger.used_margin_usdt
            exposures += [
                Exposure(p.symbol, p.side, p.margin_usdt, strategy=name)
                for p in kernel.ledger.positions.values()
            ]
            exposures += [
                Exposure(o.intent.symbol, o.intent.side, strategy=name)
                for o in kernel.pending
                if not o.intent.shadow
            ]
        equity = self.equity()
        was_tripped = self.kill_switch.tripped
        if not was_tripped and equity != self.kill_switch.last_equity:
            self.kill_switch = evaluate_account_kill_switch(
                self.kill_switch,
                equity,
                time_ms=now_ms,
                max_session_loss_pct=self.max_session_loss_pct,
            )
            if self.kill_switch.tripped:
                self._store_trip()
        self.current = AccountState(
            mode=self.mode,
            equity_usdt=equity,
            used_margin_usdt=used,
            open_positions=tuple(exposures),
            kill_switch=self.kill_switch,
        )
        return self.current

    def apply_controls(self, *, now_ms: int) -> bool:
        """A recorded reset (the session no longer tripped while the switch is) starts a new
        account session at the current equity. Returns whether the switch changed."""
        if self.kill_switch.tripped and not self.session.kill_switch_tripped:
            self.kill_switch = start_session(ACCOUNT_SCOPE, self.equity(), now_ms)
            self._save_switch()
            log.info("account kill switch reset", extra={"mode": self.mode})
            return True
        return False

    def _save_switch(self) -> None:
        self.session.ledger_state = {
            **(self.session.ledger_state or {}),
            "kill_switch": self.kill_switch.to_dict(),
        }
        session_checkpoint(session=self.session, fields=["ledger_state"])

    def _store_trip(self) -> None:
        reason = f"account ({self.mode}): {self.kill_switch.reason}"
        session_kill_switch_trip(
            session=self.session, reason=reason, state=self.kill_switch.to_dict()
        )
        alert_create(
            level="error",
            message=reason,
            source="account",
            payload={"scope": ACCOUNT_SCOPE, "mode": self.mode},
        )
        log.error("account kill switch tripped", extra={"mode": self.mode, "reason": reason})


def account_guards(
    arena: Sequence[ArenaEntry], *, max_session_loss_pct: float, now_ms: int = 0
) -> dict[str, AccountGuard]:
    """One guard per mode present in the arena."""
    modes = dict.fromkeys(e.session.mode for e in arena)
    return {
        mode: AccountGuard(
            mode,
            [e for e in arena if e.session.mode == mode],
            max_session_loss_pct=max_session_loss_pct,
            now_ms=now_ms,
        )
        for mode in modes
    }
