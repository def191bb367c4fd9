"""Event contracts: codes, messages, versioning rule, committed schemas in sync with the models."""

from __future__ import annotations

import json
import uuid

import pytest
from avatarflow_contracts import (
    EDITOR_MESSAGES,
    REASON_PRIORITY,
    SCHEMA_VERSION,
    SUPPORT_TICKET_URL,
    AvatarFailed,
    EventTooLarge,
    ImageUploaded,
    MalformedEvent,
    ObjectRef,
    ReasonCode,
    UnknownSchemaVersion,
    WarningCode,
    decode_event,
    encode_event,
    order_reasons,
)
from pydantic import ValidationError

from avatarflow.cli import main as avatarctl


def sample() -> ImageUploaded:
    return ImageUploaded(
        upload_id=uuid.uuid4(),
        space_id="space-1",
        editor_id="editor-1",
        original=ObjectRef(
            bucket="avatarflow", key="originals/a/b.jpg", size=3, sha256="a" * 64, content_type="image/jpeg"
        ),
    )


def test_reason_codes_are_exactly_the_contracted_set() -> None:
    assert {c.value for c in ReasonCode} == {
        "no_face",
        "multiple_faces",
        "low_resolution",
        "blurry",
        "not_frontal",
        "poor_lighting",
        "eyes_occluded",
        "mouth_occluded",
        "face_covering",
        "features_missing",
        "face_paint",
        "helmet",
        "unreadable_image",
    }
    assert {w.value for w in WarningCode} >= {"busy_background", "soft_focus"}


def test_every_code_has_an_editor_message_and_face_covering_points_to_support() -> None:
    for code in [*ReasonCode, *WarningCode]:
        assert len(EDITOR_MESSAGES[code]) > 40, code
    assert SUPPORT_TICKET_URL in EDITOR_MESSAGES[ReasonCode.FACE_COVERING]
    assert "support ticket" in EDITOR_MESSAGES[ReasonCode.FACE_COVERING]


def test_reasons_are_ordered_most_actionable_first() -> None:
    ordered = order_reasons([ReasonCode.FACE_COVERING, ReasonCode.BLURRY, ReasonCode.NO_FACE, ReasonCode.BLURRY])
    assert ordered == [ReasonCode.NO_FACE, ReasonCode.BLURRY, ReasonCode.FACE_COVERING]
    assert REASON_PRIORITY[0] == ReasonCode.UNREADABLE_IMAGE and REASON_PRIORITY[-1] == ReasonCode.FACE_COVERING
    assert set(REASON_PRIORITY) == set(ReasonCode)


@pytest.mark.parametrize(
    ("codes", "first"),
    [
        # A profile photo that is also small: a larger copy is still a profile, a new frontal photo fixes both.
        ((ReasonCode.LOW_RESOLUTION, ReasonCode.NOT_FRONTAL), ReasonCode.NOT_FRONTAL),
        ((ReasonCode.BLURRY, ReasonCode.POOR_LIGHTING, ReasonCode.EYES_OCCLUDED), ReasonCode.EYES_OCCLUDED),
        ((ReasonCode.LOW_RESOLUTION, ReasonCode.HELMET), ReasonCode.HELMET),
        ((ReasonCode.POOR_LIGHTING, ReasonCode.FACE_PAINT), ReasonCode.FACE_PAINT),
        ((ReasonCode.NOT_FRONTAL, ReasonCode.MULTIPLE_FACES), ReasonCode.MULTIPLE_FACES),
        ((ReasonCode.FACE_COVERING, ReasonCode.LOW_RESOLUTION), ReasonCode.LOW_RESOLUTION),
    ],
)
def test_first_reason_is_what_the_editor_acts_on_first(codes: tuple[ReasonCode, ...], first: ReasonCode) -> None:
    assert order_reasons(list(codes))[0] == first


def test_face_paint_and_helmet_have_their_own_messages() -> None:
    assert "face paint" in EDITOR_MESSAGES[ReasonCode.FACE_PAINT]
    assert "helmet" in EDITOR_MESSAGES[ReasonCode.HELMET]
    assert "helmet" not in EDITOR_MESSAGES[ReasonCode.FEATURES_MISSING]
    assert SCHEMA_VERSION == "1.1"


def test_round_trip_and_additive_minor_version_is_accepted() -> None:
    event = sample()
    assert decode_event(encode_event(event), ImageUploaded) == event
    newer = json.loads(encode_event(event))
    newer["schema_version"] = "1.7"
    newer["a_field_from_the_future"] = {"x": 1}
    decoded = decode_event(json.dumps(newer).encode(), ImageUploaded)
    assert decoded.upload_id == event.upload_id and decoded.schema_version == "1.7"


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: b"\x00\xffnot json", MalformedEvent),
        (lambda d: b"[1, 2]", MalformedEvent),
        (lambda d: json.dumps({**d, "schema_version": "2.0"}).encode(), UnknownSchemaVersion),
        (lambda d: json.dumps({**d, "schema_version": None}).encode(), MalformedEvent),
        (lambda d: json.dumps({**d, "event_type": "face.validated"}).encode(), MalformedEvent),
        (lambda d: json.dumps({**d, "space_id": ["x"]}).encode(), MalformedEvent),
        (lambda d: json.dumps({**d, "trace_id": "0" * 32}).encode(), MalformedEvent),
        (lambda d: json.dumps({**d, "pad": "x" * 600_000}).encode(), EventTooLarge),
        # Deeper than the JSON parser goes (RecursionError): before, the policy retried it for ever.
        (lambda d: b'{"x":' + b"[" * 100_000, MalformedEvent),
        # A time without a timezone cannot be compared with aware times: poison at decode (issue 16).
        (lambda d: json.dumps({**d, "occurred_at": "2026-11-02T10:00:00"}).encode(), MalformedEvent),
    ],
)
def test_poison_records_raise_poison_errors(mutate, error) -> None:  # type: ignore[no-untyped-def]
    payload = json.loads(encode_event(sample()))
    with pytest.raises(error):
        decode_event(mutate(payload), ImageUploaded)


def test_every_contract_timestamp_requires_a_timezone() -> None:
    """No model in libs/contracts accepts a naive datetime (pydantic's AwareDatetime everywhere)."""
    import datetime as dt
    import inspect

    import avatarflow_contracts.events as events_module
    import avatarflow_contracts.manifest as manifest_module
    from pydantic import BaseModel

    models = [
        obj
        for module in (events_module, manifest_module)
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__
    ]
    timestamp_fields = 0
    for model in models:
        for name, field in model.model_fields.items():
            if field.annotation is dt.datetime:
                raise AssertionError(f"{model.__name__}.{name} accepts naive datetimes")
            if "AwareDatetime" in str(field.annotation):
                timestamp_fields += 1
                schema = model.model_json_schema()
                assert schema["properties"][name]["format"] == "date-time"
    assert timestamp_fields >= 2  # Envelope.occurred_at (inherited by every event) and DeadLetter.failed_at
    with pytest.raises(ValidationError):
        ImageUploaded.model_validate({**json.loads(encode_event(sample())), "occurred_at": "2026-11-02T10:00:00"})


def test_object_ref_rejects_bad_digest_and_follow_up_ids_are_deterministic() -> None:
    with pytest.raises(ValidationError):
        ObjectRef(bucket="avatarflow", key="k", size=1, sha256="XYZ", content_type="image/jpeg")
    event = sample()
    kwargs = dict(
        stage="matting",
        error_code="x",
        error="x",
        editor_message="x",
        retry_advice="retry_upload",
        attempts=1,
    )
    first, second = event.follow_up(AvatarFailed, **kwargs), event.follow_up(AvatarFailed, **kwargs)
    assert first.event_id == second.event_id != event.event_id
    assert (first.upload_id, first.space_id, first.trace_id) == (
        event.upload_id,
        event.space_id,
        event.trace_id,
    )


def test_committed_schemas_match_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    """Fails when libs/contracts/schemas drift from the models or the services' AsyncAPI docs."""
    code = avatarctl(["export-schemas", "--check"])
    assert code == 0, capsys.readouterr().out


def test_current_schemas_are_compatible_with_the_released_major_version() -> None:
    """The CI contract check (issue 16): a schema change within major 1 must be additive."""
    from avatarflow_contracts.compat import RELEASED_DIR, check_released

    released = sorted(p.name for p in (RELEASED_DIR / "1").glob("*.schema.json"))
    assert {"image.uploaded.schema.json", "face.validated.schema.json", "avatar.rendered.schema.json"} <= set(released)
    assert check_released() == []


def test_the_compatibility_check_flags_breaking_changes_and_allows_additive_ones() -> None:
    import copy
    from enum import StrEnum

    from avatarflow_contracts.compat import incompatibilities
    from pydantic import create_model

    base = ImageUploaded.model_json_schema()
    additive = create_model("ImageUploaded", __base__=ImageUploaded, note=(str | None, None)).model_json_schema()
    assert incompatibilities(base, additive) == []

    required = create_model("ImageUploaded", __base__=ImageUploaded, note=(str, ...)).model_json_schema()
    assert any("required changed" in p and "note" in p for p in incompatibilities(base, required))

    removed = copy.deepcopy(base)
    del removed["properties"]["source"]
    assert any(p.endswith(".source: removed") for p in incompatibilities(base, removed))

    retyped = copy.deepcopy(base)
    retyped["$defs"]["ObjectRef"]["properties"]["size"]["type"] = "string"
    assert any("original.size: type changed" in p for p in incompatibilities(base, retyped))

    fewer = StrEnum("Fewer", {c.name: c.value for c in list(ReasonCode)[1:]})  # type: ignore[misc]
    more = StrEnum("More", {**{c.name: c.value for c in ReasonCode}, "NEW_CODE": "new_code"})  # type: ignore[misc]

    def with_codes(enum: type) -> dict:  # type: ignore[type-arg]
        return create_model("Codes", codes=(list[enum], ...)).model_json_schema()  # type: ignore[valid-type]

    assert incompatibilities(with_codes(ReasonCode), with_codes(more)) == []
    lost = incompatibilities(with_codes(ReasonCode), with_codes(fewer))
    assert lost and next(iter(ReasonCode)).value in lost[0]
