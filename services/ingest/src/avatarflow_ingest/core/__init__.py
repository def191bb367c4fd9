"""Ingest's pure core: the Idempotency-Key rules (``idempotency``), what an upload can end in
(``outcomes``) and the ports the upload service works through (``ports``). No I/O, no environment,
no process-global state, so the rules are unit-tested without storage, a broker or HTTP."""
