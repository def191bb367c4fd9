"""Ingest's edges: the idempotency and confirm records in S3 (``records``), read and written through
the upload store port (the runtime's ``ObjectStore``)."""
