"""The strategy kernel: ONE strategy's trading loop over closed 1m candles, in five parts.

* :mod:`~strategies.core.kernel.loop` — :class:`StrategyKernel`, the decision loop and the
  order of work per candle;
* :mod:`~strategies.core.kernel.venue` — the paper venue, which executes the kernel's order
  intents (fills, closes, funding) and decides nothing;
* :mod:`~strategies.core.kernel.replay` — the replay fast path of backtests;
* :mod:`~strategies.core.kernel.events` — what the kernel says, order and close intents
  included (the decision seam);
* :mod:`~strategies.core.kernel.state` — settings, modes, saved state.

Every name importable from ``strategies.core.kernel`` before the split still is.
"""

from __future__ import annotations

from strategies.core.kernel.events import (
    CloseIntent,
    FundingApplied,
    KernelEvent,
    KillSwitchTripped,
    OrderCancelled,
    OrderIntent,
    PositionClosed,
    PositionOpened,
    SignalEvent,
    StrategySkippedEvent,
    client_order_id,
    events_of_type,
)
from strategies.core.kernel.loop import StrategyKernel
from strategies.core.kernel.replay import CandidateFilter, ExitFilter, Replay
from strategies.core.kernel.state import (
    MINUTE_MS,
    STATE_VERSION,
    ZERO_FEES,
    KernelConfig,
    KernelError,
    Mode,
    PendingEntry,
)

__all__ = [
    "MINUTE_MS",
    "STATE_VERSION",
    "ZERO_FEES",
    "CandidateFilter",
    "CloseIntent",
    "ExitFilter",
    "FundingApplied",
    "KernelConfig",
    "KernelError",
    "KernelEvent",
    "KillSwitchTripped",
    "Mode",
    "OrderCancelled",
    "OrderIntent",
    "PendingEntry",
    "PositionClosed",
    "PositionOpened",
    "Replay",
    "SignalEvent",
    "StrategyKernel",
    "StrategySkippedEvent",
    "client_order_id",
    "events_of_type",
]
