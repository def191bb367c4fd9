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
    DEAD_LETTER = "avatarflow.dead-letter"


class ConsumerGroup(StrEnum):
    VALIDATOR = "avatarflow-validator"
    MATTING = "avatarflow-matting"
    ANIMATOR = "avatarflow-animator"
    NOTIFIER = "avatarflow-notifier"
    # The documented example consumer for analytics (avatarctl rejections).
    ANALYTICS_REJECTIONS = "avatarflow-analytics-rejections"


# Every event is keyed by space_id so that one space's events stay in order on one partition.
PARTITION_KEY_FIELD = "space_id"

# Topic -> (event_type) published on it. The dead-letter topic carries DeadLetter records.
ALL_TOPICS: tuple[Topic, ...] = tuple(Topic)

# Kafka header names.
HEADER_TRACEPARENT = "traceparent"
HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"


def is_dead_letter_topic(name: str) -> bool:
    """Dead-letter topics keep their records longer (retention) than the event topics."""
    return name == Topic.DEAD_LETTER.value or name.endswith(".dlq")
