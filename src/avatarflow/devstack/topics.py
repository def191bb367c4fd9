"""Read what is on a topic from offset 0: the reader lives in the lean operations package
(``avatarflow_ops.topics``, which ``avatarctl-ops`` uses); re-exported here for the harness, tests and
benchmarks that read topics through the dev stack."""

from __future__ import annotations

from avatarflow_ops.topics import Record, read_topic

__all__ = ["Record", "read_topic"]
