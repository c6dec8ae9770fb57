"""Exchange clients built from ``exchanges.yaml`` (:mod:`.clients`) and the offline fake
Bitget (:mod:`.fake`)."""
