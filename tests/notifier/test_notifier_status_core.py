"""The pure core: reducer, latest-upload-wins, prompt and hints (no I/O)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from avatarflow_contracts import SUPPORT_TICKET_URL, ReasonCode, WarningCode, editor_message
from avatarflow_notifier.core import status
from avatarflow_notifier.core.status import Pick, apply_event, fold_events, space_view
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier_factories import T0, Run

SUPPORT = "https://support.example/processing"
RANK = {"uploaded": 0, "validated": 1, "matted": 2}


def rank(state: status.UploadState) -> int:
    return 3 if state.is_terminal else RANK[state.stage]


def view(states, pick=None, dismissed=None):
    return space_view("space-a", states.values(), pick=pick, dismissed_upload_id=dismissed, support_url=SUPPORT)


# ---- reducer: examples ----------------------------------------------------------------------


def test_processing_stages_advance_in_order():
    run = Run("space-a", T0)
    state = apply_event(None, run.uploaded())
    assert (state.status, state.stage, state.uploaded_at) == ("processing", "uploaded", T0)
    state = apply_event(state, run.validated())
    assert state.stage == "validated"
    state = apply_event(state, run.matted())
    assert state.stage == "matted"
    state = apply_event(state, run.rendered())
    assert state.status == "ready" and state.stage is None
    assert state.pack_assets["idle_loop"].key.endswith("idle.webm")


def test_stale_processing_event_never_moves_backwards():
    run = Run("space-a", T0)
    state = fold_events([run.uploaded(), run.matted()])[str(run.upload_id)]
    assert apply_event(state, run.validated()) == state
    assert apply_event(state, run.uploaded()) == state


@pytest.mark.parametrize("terminal", ["rendered", "rejected", "failed"])
def test_terminal_first_stays_terminal_and_learns_upload_time(terminal):
    run = Run("space-a", T0)
    state = apply_event(None, getattr(run, terminal)())
    assert state.is_terminal
    assert state.uploaded_at is None and state.order_at > T0  # until image.uploaded is seen
    for late in (run.uploaded(), run.validated(), run.matted()):
        state = apply_event(state, late)
    assert (
        state.is_terminal
        and state.status == {"rendered": "ready", "rejected": "rejected", "failed": "failed"}[terminal]
    )
    assert state.uploaded_at == T0 and state.order_at == T0


def test_terminal_status_never_changes_once_set():
    run = Run("space-a", T0)
    state = apply_event(None, run.rejected())
    assert apply_event(state, run.rendered()).status == "rejected"
    assert apply_event(state, run.failed()).status == "rejected"


def test_duplicate_event_is_a_no_op():
    run = Run("space-a", T0)
    state = apply_event(None, run.rejected((ReasonCode.NOT_FRONTAL, ReasonCode.BLURRY)))
    assert apply_event(state, run.rejected((ReasonCode.NOT_FRONTAL, ReasonCode.BLURRY))) == state


def test_event_of_another_space_for_the_same_upload_is_refused():
    run = Run("space-a", T0)
    other = Run("space-b", T0, upload_id=run.upload_id)
    with pytest.raises(ValueError):
        apply_event(apply_event(None, run.uploaded()), other.validated())


def test_warnings_are_merged_from_every_stage():
    run = Run("space-a", T0)
    states = fold_events(
        [run.validated((WarningCode.BUSY_BACKGROUND,)), run.matted((WarningCode.LOW_MATTE_CONFIDENCE,))]
    )
    state = states[str(run.upload_id)]
    assert set(state.warnings) == {"busy_background", "low_matte_confidence"}
    hints = status.build_hints(state)
    assert [h.code for h in hints] == ["low_matte_confidence", "busy_background"]
    assert hints[1].message == editor_message(WarningCode.BUSY_BACKGROUND)


def test_soft_focus_from_the_validator_is_a_hint_the_editor_sees():
    run = Run("space-a", T0)
    states = fold_events([run.validated((WarningCode.SOFT_FOCUS, WarningCode.BUSY_BACKGROUND))])
    hints = status.build_hints(states[str(run.upload_id)])
    assert [h.code for h in hints] == ["soft_focus", "busy_background"]
    assert "slightly soft" in hints[0].message and "accepted" in hints[0].message


# ---- the space-level rule ---------------------------------------------------------------------


def test_older_upload_finishing_late_does_not_overwrite_newer_status():
    older, newer = Run("space-a", T0), Run("space-a", T0 + timedelta(minutes=1))
    events = [older.uploaded(), newer.uploaded(), newer.rejected(), older.rendered()]
    result = view(fold_events(events))
    assert result.latest.upload_id == str(newer.upload_id)
    assert result.latest.status == "rejected"
    assert result.prompt is not None and result.prompt.upload_id == str(newer.upload_id)
    # The older upload's avatar is still the newest *ready* one: end users see it.
    assert result.avatar.kind == "custom" and result.avatar.upload_id == str(older.upload_id)


def test_newer_ready_upload_replaces_the_avatar_whatever_the_finishing_order():
    older, newer = Run("space-a", T0), Run("space-a", T0 + timedelta(minutes=1))
    events = [older.uploaded(), newer.uploaded(), newer.rendered(), older.rendered()]
    assert view(fold_events(events)).avatar.upload_id == str(newer.upload_id)


def test_tie_on_upload_time_is_broken_by_upload_id():
    a, b = Run("space-a", T0), Run("space-a", T0)
    states = fold_events([a.uploaded(), b.uploaded()])
    expected = max(str(a.upload_id), str(b.upload_id))
    assert view(states).latest.upload_id == expected


def test_pick_newer_than_ready_upload_wins_and_older_pick_loses():
    run = Run("space-a", T0)
    states = fold_events([run.uploaded(), run.rendered()])
    assert view(states, pick=Pick("aurora", T0 + timedelta(seconds=5))).avatar.kind == "pregenerated"
    assert view(states, pick=Pick("aurora", T0 - timedelta(seconds=5))).avatar.kind == "custom"


def test_no_upload_and_rejected_only_both_show_the_default_avatar():
    run = Run("space-a", T0)
    assert view({}).avatar == status.DEFAULT_AVATAR
    assert view(fold_events([run.uploaded(), run.rejected()])).avatar == status.DEFAULT_AVATAR


# ---- the prompt -------------------------------------------------------------------------------


def test_rejection_prompt_text_uses_most_actionable_reason_and_lists_all():
    run = Run("space-a", T0)
    reasons = (ReasonCode.POOR_LIGHTING, ReasonCode.NO_FACE, ReasonCode.BLURRY)
    result = view(fold_events([run.uploaded(), run.rejected(reasons)]))
    prompt = result.prompt
    assert prompt.kind == "rejected"
    assert [r.code for r in prompt.reasons] == ["no_face", "blurry", "poor_lighting"]
    assert prompt.message == (
        "Your avatar image couldn't be used: " + editor_message(ReasonCode.NO_FACE) + " "
        "Upload a different image or choose one of the pre-generated avatars."
    )
    assert prompt.actions == ("upload_different_image", "choose_pregenerated", "dismiss")
    assert prompt.support_ticket_url is None


def test_face_covering_prompt_offers_a_support_ticket_not_a_different_image():
    run = Run("space-a", T0)
    result = view(fold_events([run.rejected((ReasonCode.MOUTH_OCCLUDED, ReasonCode.FACE_COVERING))]))
    prompt = result.prompt
    assert prompt.actions[0] == "open_support_ticket"
    assert "upload_different_image" not in prompt.actions
    assert prompt.support_ticket_url == SUPPORT_TICKET_URL
    assert prompt.reasons[0].code == "face_covering"
    assert "Upload a different image" not in prompt.message
    assert editor_message(ReasonCode.FACE_COVERING) in prompt.message


@pytest.mark.parametrize("advice", ["retry_upload", "upload_different_image", "contact_support"])
def test_failure_raises_a_prompt_with_retry_advice(advice):
    run = Run("space-a", T0)
    prompt = view(fold_events([run.uploaded(), run.failed(advice)])).prompt
    assert prompt.kind == "failed" and prompt.retry_advice == advice
    assert prompt.message.startswith("Your avatar image couldn't be processed: We couldn't finish")
    assert prompt.message.endswith(status.FAILED_ADVICE[advice])
    assert ("open_support_ticket" in prompt.actions) == (advice == "contact_support")
    assert (prompt.support_ticket_url == SUPPORT) == (advice == "contact_support")


def test_prompt_stays_until_dismissed_or_superseded():
    first, second = Run("space-a", T0), Run("space-a", T0 + timedelta(minutes=1))
    states = fold_events([first.uploaded(), first.rejected()])
    assert view(states).prompt is not None
    assert view(states, dismissed=str(first.upload_id)).prompt is None
    states = fold_events([first.uploaded(), first.rejected(), second.uploaded()])
    assert view(states).prompt is None  # the re-upload is processing: no prompt
    assert view({}).prompt is None


# ---- order and duplication independence (hypothesis) ------------------------------------------

TERMINALS = st.sampled_from([None, "rendered", "rejected", "failed"])
REASONS = st.lists(st.sampled_from(list(ReasonCode)), min_size=1, max_size=4, unique=True)
WARNINGS = st.lists(st.sampled_from(list(WarningCode)), max_size=2, unique=True)


@st.composite
def space_histories(draw):
    """Events of 1-3 uploads of one space, each a valid (possibly incomplete) pipeline run."""
    events = []
    for _ in range(draw(st.integers(1, 3))):
        offset = draw(st.integers(0, 3))  # equal offsets exercise the upload_id tie-break
        run = Run("space-a", T0 + timedelta(minutes=offset))
        terminal = draw(TERMINALS)
        stages = draw(st.sets(st.sampled_from(["uploaded", "validated", "matted"]), min_size=1))
        if terminal == "rejected":
            stages -= {"validated", "matted"}  # a rejected image never reaches later stages
        if "uploaded" in stages:
            events.append(run.uploaded())
        if "validated" in stages:
            events.append(run.validated(tuple(draw(WARNINGS))))
        if "matted" in stages:
            events.append(run.matted(tuple(draw(WARNINGS))))
        if terminal == "rejected":
            events.append(run.rejected(tuple(draw(REASONS))))
        elif terminal is not None:
            events.append(getattr(run, terminal)())
    return events


@settings(max_examples=150, deadline=None)
@given(data=st.data(), events=space_histories())
def test_final_state_is_independent_of_order_and_duplication(data, events):
    expected_states = fold_events(events)  # pipeline order
    expected_view = view(expected_states)
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=6))
    redelivered = data.draw(st.permutations(duplicated))

    states: dict[str, status.UploadState] = {}
    for event in redelivered:
        key = str(event.upload_id)
        before = states.get(key)
        after = apply_event(before, event)
        if before is not None:
            assert rank(after) >= rank(before)  # never backwards
            if before.is_terminal:
                assert after.status == before.status  # terminal never changes
        states[key] = after
    assert states == expected_states
    assert view(states) == expected_view
