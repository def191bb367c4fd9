"""Helpers the commands share: time filters and the broker address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """'30m', '24h', '7d' or an ISO timestamp -> an aware UTC datetime."""
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def bootstrap(value: str | None) -> str:
    """``--bootstrap``, else the services' own setting (AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS)."""
    from avatarflow_runtime.settings import ServiceSettings

    return value or ServiceSettings().kafka_bootstrap_servers
