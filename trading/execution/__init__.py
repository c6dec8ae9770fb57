"""Live execution on the exchange: the executor, its order state machine's store, the private
streams and the reconciliation (live only; it never decides — the kernel does)."""
