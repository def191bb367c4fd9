"""Topic names, the partition key and consumer-group names: defined once, used everywhere."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    IMAGE_UPLOADED = "image.uploaded"
    FACE_VALIDATED = "face.validated"
    FACE_REJECTED = "face.rejected"
    AVATAR_MATTED = "avatar.matted"
    AVATAR_RENDERED = "avatar.rendered"
    AVATAR_FAILED = "avatar.failed"


class ConsumerGroup(StrEnum):
    VALIDATOR = "avatarflow-validator"
    MATTING = "avatarflow-matting"
    ANIMATOR = "avatarflow-animator"
    NOTIFIER = "avatarflow-notifier"
    # The documented example consumer for analytics (avatarctl rejections).
    ANALYTICS_REJECTIONS = "avatarflow-analytics-rejections"


# Every event is keyed by space_id so that one space's events stay in order on one partition.
PARTITION_KEY_FIELD = "space_id"

# The groups run by the stage template: each has its own retry and dead-letter topic, so a replay
# re-runs exactly the group that failed (issue 16), never the stages before or beside it.
STAGE_GROUPS: tuple[ConsumerGroup, ...] = (
    ConsumerGroup.VALIDATOR,
    ConsumerGroup.MATTING,
    ConsumerGroup.ANIMATOR,
    ConsumerGroup.NOTIFIER,
)
RETRY_SUFFIX = ".retry"
DEAD_LETTER_SUFFIX = ".dlq"
# What `avatarctl replay-dlq` replayed, one DlqReplay record per run.
DLQ_REPLAYS_TOPIC = "avatarflow.dlq-replays"


def retry_topic(group: str) -> str:
    """Records replayed for ``group`` only; consumed by that group alone."""
    return f"{group}{RETRY_SUFFIX}"


def dead_letter_topic(group: str) -> str:
    """``group``'s dead letters (original bytes, context in dlt-* headers)."""
    return f"{group}{DEAD_LETTER_SUFFIX}"


# Every topic to provision: the event topics, each stage group's retry and dead-letter topics, the
# replay journal.
ALL_TOPICS: tuple[str, ...] = (
    *(t.value for t in Topic),
    *(name for g in STAGE_GROUPS for name in (retry_topic(g.value), dead_letter_topic(g.value))),
    DLQ_REPLAYS_TOPIC,
)

# Kafka header names.
HEADER_TRACEPARENT = "traceparent"
# CloudEvents 1.0 Kafka protocol binding, binary content mode (the value is the event's JSON).
CE_SPECVERSION = "1.0"
HEADER_CE_ID = "ce_id"
HEADER_CE_TYPE = "ce_type"
HEADER_CE_SOURCE = "ce_source"
HEADER_CE_TIME = "ce_time"
HEADER_CE_SPECVERSION = "ce_specversion"
# On a retry-topic record: the event topic it came from, and the dead letter it was replayed from.
HEADER_REPLAY_ORIGINAL_TOPIC = "replay-original-topic"
HEADER_REPLAYED_FROM = "replayed-from-dlq"
HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"


def is_dead_letter_topic(name: str) -> bool:
    """Dead-letter topics keep their records longer (retention) than the event topics."""
    return name.endswith(DEAD_LETTER_SUFFIX) or name == DLQ_REPLAYS_TOPIC
