"""Hostile, broken and unusual files end to end, through HTTP ingest and through the platform flow.

Every file in shared/bad-inputs goes (1) through ``POST /v1/spaces/{space}/uploads`` and, unless it
is one that becomes an avatar (ingest already stores it byte for byte), (2) straight onto
``image.uploaded`` after the object is put in S3 (the platform flow skips ingest's admission, so the
validator must stand on its own). expected.csv names the outcome; nothing answers 500, no worker
crashes or stalls, and the workers stay under their documented memory caps while they chew on it.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from avatarflow_contracts import EVENT_MODELS, PoisonEvent, decode_event
from avatarflow_contracts.events import FaceRejected
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import RSS_CAP_MB, RssSampler

from avatarflow.devstack.harness import PipelineHarness, Upload

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heif",
    ".tif": "image/tiff",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
}


def _expected(shared_dir: Path) -> list[dict[str, str]]:
    with (shared_dir / "bad-inputs" / "expected.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _rows(harness: PipelineHarness, ids: list[str]) -> dict[str, Any]:
    with harness.db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT upload_id, status, reasons, failure FROM notifier_uploads WHERE upload_id = ANY(:ids)"),
            {"ids": ids},
        ).mappings()
        return {r["upload_id"]: dict(r) for r in rows}


def _check_final(row: dict[str, Any], final: str, allowed_reasons: set[str], label: str) -> str | None:
    """None when the terminal row is what expected.csv allows, else a description of what is wrong."""
    reasons = row["reasons"] if isinstance(row["reasons"], list) else json.loads(row["reasons"] or "[]")
    if final == "accept":
        return None if row["status"] == "ready" else f"{label}: {row['status']} {reasons} {row['failure']}"
    if row["status"] == "rejected":
        codes = {r["code"] if isinstance(r, dict) else str(r) for r in reasons}
        if not codes:
            return f"{label}: rejected without a reason"
        if allowed_reasons and not codes & allowed_reasons:
            return f"{label}: rejected for {codes}, expected one of {allowed_reasons}"
        return None
    if row["status"] == "failed" and not allowed_reasons:
        return None if row["failure"] else f"{label}: failed without a failure record"
    return f"{label}: {row['status']} {reasons}, expected a rejection ({allowed_reasons or 'any reason'})"


@pytest.mark.integration
@pytest.mark.timeout(900)  # a ceiling, not a figure: ~60 uploads of hostile files on a loaded 2-core machine
def test_every_bad_input_through_ingest_and_platform_flow(
    harness: PipelineHarness, shared_dir: Path, reliability_figures: dict[str, Any]
) -> None:
    folder = shared_dir / "bad-inputs"
    run = uuid.uuid4().hex[:6]
    wrong: list[str] = []
    pending: list[tuple[Upload, str, set[str], str]] = []
    pids = {n: harness.procs[n].popen.pid for n in ("validator", "matting")}  # type: ignore[union-attr]
    with RssSampler(pids) as rss:
        for index, row in enumerate(_expected(shared_dir)):
            path = folder / row["file"]
            data = path.read_bytes()
            allowed = {r for r in row["reasons"].split(";") if r}
            editor = f"hostile-editor-{run}-{index}"
            # (1) HTTP ingest.
            space = f"hostile-{run}-{index}"
            response = harness.post_upload(space, data, path.name, harness.token(space, editor))
            code = response.status_code
            if code >= 500:
                wrong.append(f"ingest {row['file']}: {code} {response.text[:200]}")
            elif row["ingest"] == "4xx" and not 400 <= code < 500:
                wrong.append(f"ingest {row['file']}: {code}, expected a 4xx")
            elif row["ingest"] == "accept" and code != 202:
                wrong.append(f"ingest {row['file']}: {code} {response.text[:200]}, expected 202")
            elif 400 <= code < 500:
                body = response.json()
                if not (body.get("error") and body.get("detail")):
                    wrong.append(f"ingest {row['file']}: {code} without a clear error: {body}")
            if code == 202:
                upload = Upload(str(response.json()["upload_id"]), space, editor, "", path.name)
                pending.append((upload, row["final"] or "reject", allowed, f"ingest {row['file']}"))
            # (2) Platform flow: the object is already in S3, image.uploaded produced directly. Not for
            # files that become avatars: ingest stored these very bytes under the same content type, so
            # a second upload would only repeat the same validation, cut-out and (minutes-long on a
            # loaded 2-core machine) render, and CI ran past the wait below on those repeats.
            if row["final"] == "accept":
                continue
            content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            direct = harness.produce_uploaded(data, content_type, f"hostile-direct-{run}-{index}", editor, path.name)
            # Files ingest must refuse have no `final`: the validator rejects or fails them, with a reason.
            pending.append((direct, row["final"] or "reject", allowed, f"platform {row['file']}"))

        ids = [u.upload_id for u, *_ in pending]
        harness.wait_terminal(ids, timeout_s=600)
    rows = _rows(harness, ids)
    for upload, final, allowed, label in pending:
        problem = _check_final(rows[upload.upload_id], final, allowed, label)
        if problem:
            wrong.append(problem)

    alive = harness.all_alive_and_ready()
    assert all(alive.values()), alive
    for name, proc in harness.procs.items():
        assert proc.popen is not None and proc.popen.poll() is None, f"{name} exited"
        # A crash loop would show as restarts; these are the processes started with the harness.
    reliability_figures["hostile_inputs"] = {
        "files": len(_expected(shared_dir)),
        "terminal_uploads": len(ids),
        "peak_rss_mb": {n: round(v) for n, v in rss.peak_mb.items()},
        "rss_cap_mb": RSS_CAP_MB,
    }
    assert not wrong, "\n".join(wrong)
    for name, cap in RSS_CAP_MB.items():
        assert rss.peak_mb[name] < cap, f"{name} peak RSS {rss.peak_mb[name]:.0f} MB >= cap {cap} MB"
    harness.assert_invariants(ids)


# ---- the event parser never does anything but return a valid model or raise PoisonEvent ----------

_VALID = FaceRejected.model_validate(
    {
        "event_type": "face.rejected",
        "upload_id": str(uuid.uuid4()),
        "space_id": "space-1",
        "editor_id": "editor-1",
        "original": {
            "bucket": "avatarflow",
            "key": "originals/x/y.jpg",
            "size": 10,
            "sha256": "a" * 64,
            "content_type": "image/jpeg",
        },
        "reasons": ["no_face"],
        "editor_messages": ["We couldn't find a face"],
        "checks": [],
    }
)
_VALID_JSON: dict[str, Any] = json.loads(_VALID.model_dump_json())
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _decode_or_poison(raw: bytes) -> None:
    for model in EVENT_MODELS.values():
        try:
            event = decode_event(raw, model)
        except PoisonEvent:
            continue
        assert isinstance(event, model)
        model.model_validate(json.loads(event.model_dump_json()))  # round-trips as a valid model


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_decode_event_on_arbitrary_bytes_returns_a_model_or_raises_poison(raw: bytes) -> None:
    _decode_or_poison(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from([*sorted(_VALID_JSON), "extra"]), _json_values, max_size=4),
    st.sets(st.sampled_from(sorted(_VALID_JSON)), max_size=3),
)
def test_decode_event_on_mutated_json_returns_a_model_or_raises_poison(
    changes: dict[str, Any], removed: set[str]
) -> None:
    payload = {k: v for k, v in _VALID_JSON.items() if k not in removed}
    payload.update(changes)
    _decode_or_poison(json.dumps(payload).encode())
