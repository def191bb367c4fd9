"""Create every avatarflow topic with its durability settings (idempotent).

``python -m avatarflow_runtime.provision --partitions N --replication-factor R --min-insync-replicas M
--retention-ms T --dead-letter-retention-ms D``. Missing topics are created with the replication factor,
``retention.ms`` and ``min.insync.replicas``; topics that already exist get ``retention.ms`` and
``min.insync.replicas`` updated (a replication-factor change needs a partition reassignment, which is an
operator's decision: it is reported, not done).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from avatarflow_contracts import ALL_TOPICS
from avatarflow_contracts.topics import is_dead_letter_topic

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicPolicy:
    partitions: int
    replication_factor: int = 1
    min_insync_replicas: int = 1
    retention_ms: int = SEVEN_DAYS_MS
    dead_letter_retention_ms: int = THIRTY_DAYS_MS

    def __post_init__(self) -> None:
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"min.insync.replicas {self.min_insync_replicas} must be between 1 and the replication factor "
                f"{self.replication_factor}"
            )

    def configs(self, topic: str) -> dict[str, str]:
        retention = self.dead_letter_retention_ms if is_dead_letter_topic(topic) else self.retention_ms
        return {"retention.ms": str(retention), "min.insync.replicas": str(self.min_insync_replicas)}

    def new_topics(self, names: list[str]) -> list[NewTopic]:
        return [
            NewTopic(
                name,
                num_partitions=self.partitions,
                replication_factor=self.replication_factor,
                topic_configs=self.configs(name),
            )
            for name in names
        ]


async def create_topics(
    bootstrap: str, *, partitions: int, replication_factor: int = 1, policy: TopicPolicy | None = None
) -> list[str]:
    """Create the topics that do not exist yet, update the others' configs; returns the names created."""
    policy = policy or TopicPolicy(partitions=partitions, replication_factor=replication_factor)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [str(t) for t in ALL_TOPICS]
        missing = [name for name in wanted if name not in existing]
        if missing:
            # Another provisioner may win the race: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(policy.new_topics(missing))
        present = [name for name in wanted if name in existing]
        await _update_existing(admin, policy, present)
        return missing
    finally:
        await admin.close()


async def _update_existing(admin: AIOKafkaAdminClient, policy: TopicPolicy, names: list[str]) -> None:
    if not names:
        return
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, configs=policy.configs(name)) for name in names]
    try:
        await admin.alter_configs(resources)
    except Exception as exc:  # a broker without AlterConfigs: say so, the topics still exist
        print(f"could not update existing topics' configs: {type(exc).__name__}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create avatarflow's Kafka topics")
    parser.add_argument("--bootstrap", default=None, help="defaults to AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--min-insync-replicas", type=int, default=1)
    parser.add_argument("--retention-ms", type=int, default=SEVEN_DAYS_MS)
    parser.add_argument("--dead-letter-retention-ms", type=int, default=THIRTY_DAYS_MS)
    args = parser.parse_args(argv)
    from .settings import ServiceSettings

    policy = TopicPolicy(
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        min_insync_replicas=args.min_insync_replicas,
        retention_ms=args.retention_ms,
        dead_letter_retention_ms=args.dead_letter_retention_ms,
    )
    bootstrap = args.bootstrap or ServiceSettings().kafka_bootstrap_servers
    created = asyncio.run(create_topics(bootstrap, partitions=policy.partitions, policy=policy))
    print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
