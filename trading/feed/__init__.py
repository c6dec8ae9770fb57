"""Market data feed: one code path over a ccxt(-pro)-shaped exchange object.

The live Bitget exchange (``ccxt.pro.bitget``), the replay of recorded data and the test fake
all expose the same small ccxt interface (``watch_ohlcv``, ``fetch_ohlcv``,
``watch_order_book``, ``fetch_funding_rate``, ``fetch_open_interest``, ``milliseconds``,
``close``), so :class:`trading.feed.feed.MarketFeed` cannot tell them apart.
"""
