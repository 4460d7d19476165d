"""Jump resolution: grouping by QR, verdicts with reasons, in/out points (pure)."""

from __future__ import annotations

from stinercut_svc.ingest.resolve import (
    Clip,
    FreefallWindow,
    JumpState,
    ManualReason,
    QrSighting,
    RecordingFacts,
    ResolveConfig,
    chapter_cuts,
    resolve_jumps,
)

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"
FF = (FreefallWindow(100.0, 140.0, 0.9),)


def qr(code: str, customer: str | None = "known", last_seen: float = 3.0) -> QrSighting:
    return QrSighting(
        code=code, customer=code if customer == "known" else customer, last_seen=last_seen
    )


def test_qr_opens_jump_and_following_recordings_join_it() -> None:
    recs = [
        RecordingFacts("q1", 5.0, qr=qr(A)),
        RecordingFacts("j1", 400.0, freefalls=FF, landing=300.0),
        RecordingFacts("q2", 5.0, qr=qr(B)),
        RecordingFacts("j2a", 200.0),
        RecordingFacts("j2b", 300.0, freefalls=(FreefallWindow(10.0, 50.0, 0.8),), landing=250.0),
    ]
    jumps = resolve_jumps(recs)
    assert [j.recordings for j in jumps] == [("q1", "j1"), ("q2", "j2a", "j2b")]
    assert [j.customer for j in jumps] == [A, B]
    assert all(j.state is JumpState.RESOLVED and j.reasons == () for j in jumps)
    assert jumps[1].freefall is not None and jumps[1].freefall.key == "j2b"
    assert (jumps[1].freefall.start, jumps[1].freefall.end) == (10.0, 50.0)


def test_recordings_before_first_qr_are_an_unassigned_group() -> None:
    recs = [
        RecordingFacts("early", 60.0, freefalls=FF),
        RecordingFacts("q1", 5.0, qr=qr(A)),
        RecordingFacts("j1", 400.0, freefalls=FF),
    ]
    jumps = resolve_jumps(recs)
    assert jumps[0].recordings == ("early",)
    assert jumps[0].unassigned and jumps[0].state is JumpState.NEEDS_MANUAL
    assert jumps[0].reasons == (ManualReason.MISSING_QR,)
    assert jumps[1].state is JumpState.RESOLVED


def test_card_without_any_qr_is_one_group_needing_manual() -> None:
    jumps = resolve_jumps([RecordingFacts("a", 10.0), RecordingFacts("b", 10.0)])
    assert len(jumps) == 1
    assert jumps[0].reasons == (ManualReason.MISSING_QR, ManualReason.NO_FREEFALL)


def test_reasons_for_each_defect() -> None:
    two = (FreefallWindow(10.0, 40.0, 0.9), FreefallWindow(600.0, 640.0, 0.9))
    recs = [
        RecordingFacts("q-unknown", 5.0, qr=qr(A, customer=None)),
        RecordingFacts("j1", 400.0, freefalls=FF),
        RecordingFacts("q-nofall", 5.0, qr=qr(B)),
        RecordingFacts("j2", 400.0),
        RecordingFacts("q-two", 5.0, qr=qr(A)),
        RecordingFacts("j3", 900.0, freefalls=two),
    ]
    jumps = resolve_jumps(recs)
    assert [j.reasons for j in jumps] == [
        (ManualReason.UNKNOWN_CUSTOMER,),
        (ManualReason.NO_FREEFALL,),
        (ManualReason.TWO_FREEFALLS,),
    ]
    assert all(j.state is JumpState.NEEDS_MANUAL for j in jumps)
    assert jumps[2].freefall is None and len(jumps[2].freefalls) == 2
    assert jumps[0].customer is None and jumps[0].qr_code == A


def test_same_qr_filmed_twice_is_one_jump_but_not_after_a_freefall() -> None:
    recs = [
        RecordingFacts("q1", 5.0, qr=qr(A)),
        RecordingFacts("q1-again", 4.0, qr=qr(A)),
        RecordingFacts("j1", 400.0, freefalls=FF),
        RecordingFacts("q1-next-jump", 5.0, qr=qr(A)),
        RecordingFacts("j2", 400.0, freefalls=FF),
    ]
    jumps = resolve_jumps(recs)
    assert [j.recordings for j in jumps] == [("q1", "q1-again", "j1"), ("q1-next-jump", "j2")]
    assert all(j.state is JumpState.RESOLVED for j in jumps)


def test_in_out_points_drop_qr_shot_and_long_ground_after_landing() -> None:
    recs = [
        RecordingFacts("qr-only", 4.0, qr=qr(A, last_seen=3.8)),
        RecordingFacts("whole", 600.0, qr=qr(B, last_seen=4.0), freefalls=FF, landing=500.0),
        RecordingFacts("interview", 45.0),
    ]
    jumps = resolve_jumps(recs, ResolveConfig(ground_after_limit_s=30.0, qr_margin_s=0.5))
    assert jumps[0].clips == ()  # nothing but the QR shot
    assert jumps[0].recordings == ("qr-only",)  # still part of the jump
    assert jumps[1].clips == (Clip("whole", 4.5, 530.0), Clip("interview", 0.0, 45.0))


def test_landing_only_trims_the_first_recording_that_has_it() -> None:
    recs = [
        RecordingFacts("q", 5.0, qr=qr(A)),
        RecordingFacts("j", 300.0, freefalls=FF, landing=290.0),
        RecordingFacts("later", 300.0, landing=10.0),
    ]
    (jump,) = resolve_jumps(recs)
    assert jump.clips[1] == Clip("j", 0.0, 300.0)
    assert jump.clips[2] == Clip("later", 0.0, 300.0)


def test_empty_card_has_no_jumps() -> None:
    assert resolve_jumps([]) == ()


def test_chapter_cuts_split_a_recording_range_across_chapters() -> None:
    assert chapter_cuts([100.0, 100.0, 50.0], 20.0, 180.0) == [(0, 20.0, 100.0), (1, 0.0, 80.0)]
    assert chapter_cuts([100.0, 100.0], 0.0, 200.0) == [(0, 0.0, 100.0), (1, 0.0, 100.0)]
    assert chapter_cuts([100.0, 100.0], 150.0, 160.0) == [(1, 50.0, 60.0)]
