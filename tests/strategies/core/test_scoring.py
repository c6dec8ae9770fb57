"""Scores in [0, 1] and the confirmation step."""

from __future__ import annotations

import pytest

from strategies.core.base import EntryType, ScoreAdjustment, Signal
from strategies.core.scoring import ScoreParts, apply_confirmation, ramp
from trading.core.types import Side

SIGNAL = Signal(Side.LONG, EntryType.LIMIT, 100.0, 99.0, 102.0, 0.6, ("RSI 20 < 25",))


def test_ramp_is_zero_at_the_threshold_and_one_at_full() -> None:
    """Volume 2.25× with 1.5× required and 3× full → 0.5; a falling scale ADX 15 between 20
    and 10 → 0.5; beyond either end it is clipped."""
    assert ramp(2.25, 1.5, 3.0) == 0.5
    assert ramp(15.0, 20.0, 10.0) == 0.5
    assert ramp(1.0, 1.5, 3.0) == 0.0
    assert ramp(9.0, 1.5, 3.0) == 1.0


def test_score_is_the_weighted_mean_of_its_parts() -> None:
    """0.4 × 0.5 + 0.2 × 1.0 + 0.2 × 0.25 + 0.2 × 0.5 = 0.55."""
    assert ScoreParts(0.5, 1.0, 0.25, 0.5).score() == pytest.approx(0.55)


def test_confirmations_add_their_deltas_and_reasons() -> None:
    """0.60 + 0.15 − 0.05 = 0.70, reasons appended after the signal's own."""
    adjusted = apply_confirmation(
        SIGNAL, [ScoreAdjustment(0.15, ("book bids heavy",)), ScoreAdjustment(-0.05, ("x",))]
    )
    assert adjusted.score == pytest.approx(0.70)
    assert adjusted.reasons == ("RSI 20 < 25", "book bids heavy", "x")


def test_a_confirmed_score_stays_within_zero_and_one() -> None:
    assert apply_confirmation(SIGNAL, [ScoreAdjustment(0.9)]).score == 1.0
    assert apply_confirmation(SIGNAL, [ScoreAdjustment(-0.9)]).score == 0.0
