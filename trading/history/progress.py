"""A progress bar with rate and ETA, in plain text that any console shows (Windows too).

On a terminal it is tqdm's bar drawn in ASCII; elsewhere (a log, a pipe, a test) one line per
tenth of the work: ``candles: 12000/43200 minutes (28 %), 2,400/s, ETA 0:00:13``.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm


def eta_text(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Work of ``total`` ``unit`` for ``label``; ``update(n)`` as it is done, ``note(line)``
    to print a line without breaking the bar, ``close()`` at the end."""

    STEPS = 10  # plain lines per phase

    def __init__(
        self, stream: TextIO, *, label: str, total: int, unit: str, enabled: bool = True
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.enabled = enabled and self.total > 0
        self.done = 0
        self._started = time.monotonic()
        self._next_step = 1
        self._bar: Any = None
        isatty = getattr(stream, "isatty", None)
        if self.enabled and callable(isatty) and isatty():
            # Past Django's OutputWrapper, which would end each of tqdm's redraws with a newline.
            raw = getattr(stream, "_out", stream)
            self._bar = tqdm(
                total=self.total,
                desc=label,
                unit=f" {unit}",
                file=raw,
                ascii=True,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.done * self.STEPS >= self._next_step * self.total:
            self._next_step = self.done * self.STEPS // self.total + 1
            self.stream.write(self.line() + "\n")

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        pct = 100 * self.done // self.total if self.total else 100
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit} ({pct} %), "
            f"{rate:,.0f}/s, ETA {eta_text(eta)}"
        )

    def note(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._bar.fp)
        else:
            self.stream.write(line + "\n")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
