"""History download (``manage.py fetch_history``): 1m candles, funding settlements, the mark
price at each settlement and open interest, read from the exchange's REST API through ccxt and
the shared rate limiter, resumable, stored through :mod:`trading.services`.

Modules, by job: :mod:`.plan` (ranges, missing minutes, pages: pure values), :mod:`.fetch`
(paced, retried, validated requests), :mod:`.store` (what is stored; writes through the
services), :mod:`.download` (the order of the work), :mod:`.progress` and :mod:`.report` (what
the trader sees). How to use it and why it works this way: docs/history.md.
"""
