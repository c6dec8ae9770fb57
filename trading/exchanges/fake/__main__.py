"""Run the fake Bitget as a standalone server: ``python -m trading.exchanges.fake``.

By default the bundled data is shifted (by a multiple of 8 h) so that market time equals the
wall clock at speed 1: any client in another process sees consistent times. ``--speed`` /
``--start`` run market time on its own clock instead; a consumer must then read that clock
(``GET /fake/clock``): ``EXCHANGE_BASE_URL=http://127.0.0.1:8765 manage.py radar --exchange
fake`` mirrors it (``radar.launch.StandaloneFake``) and trades with the fake's fixed demo key
(``Credentials``' defaults). The fake outlives any radar: kill one, start another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from trading.exchanges.fake.market import SAMPLE_DIR, FakeMarket
from trading.exchanges.fake.server import FakeBitget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", type=Path, default=SAMPLE_DIR)
    parser.add_argument("--speed", type=float, default=None, help="market-time multiple")
    parser.add_argument("--start", default=None, help="market start, ISO UTC (with --speed)")
    args = parser.parse_args()
    market = FakeMarket.from_files(args.data_dir)
    if args.speed is None and args.start is None:
        fake = FakeBitget.aligned_to_wall_clock(market)
    else:
        start_ms = None
        if args.start:
            start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
            start_ms = int(start.timestamp() * 1000)
        fake = FakeBitget(market, start_ms=start_ms, speed=args.speed or 1.0)

    async def serve() -> None:
        url = await fake.start(args.host, args.port)
        keys = fake.credentials
        print(
            f"fake Bitget on {url} (market time {fake.now_ms()} ms at {fake.clock.speed:g}×; "
            f"demo key {keys.api_key} / {keys.secret} / {keys.passphrase}); Ctrl-C stops"
        )
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
