"""Export the JSON Schema of every event model (committed under libs/contracts/schemas/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .events import EVENT_MODELS, DeadLetter, DlqReplay

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every topic's payload and the dead-letter record."""
    schemas = {f"{topic.value}.schema.json": model.model_json_schema() for topic, model in EVENT_MODELS.items()}
    schemas["dead-letter.schema.json"] = DeadLetter.model_json_schema()
    schemas["dlq-replay.schema.json"] = DlqReplay.model_json_schema()
    try:
        from .manifest import AvatarManifest

        schemas["avatar-manifest.schema.json"] = AvatarManifest.model_json_schema()
    except ImportError:  # manifest contract not present in this build
        pass
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
