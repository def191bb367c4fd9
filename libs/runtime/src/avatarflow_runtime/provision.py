"""Create every avatarflow topic (idempotent). ``python -m avatarflow_runtime.provision --partitions N``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from avatarflow_contracts import ALL_TOPICS


async def create_topics(bootstrap: str, *, partitions: int, replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t.value for t in ALL_TOPICS if t.value not in existing]
        if missing:
            # Another provisioner may win the race: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
                        for name in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create avatarflow's Kafka topics")
    parser.add_argument("--bootstrap", default=None, help="defaults to AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args(argv)
    from .settings import ServiceSettings

    bootstrap = args.bootstrap or ServiceSettings().kafka_bootstrap_servers
    created = asyncio.run(
        create_topics(bootstrap, partitions=args.partitions, replication_factor=args.replication_factor)
    )
    print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
