"""Speech: the TTS port, espeak-ng's phoneme timing, provider viseme events, and a preview whose
mouth follows its own audio (offsets measured on the decoded WebM)."""

from __future__ import annotations

import io
import itertools

import av
import numpy as np
import pytest
from animator_fixtures import SAMPLE_IMAGES
from animator_probe import atlas_cells, decode_webm_rgba
from avatarflow_animator.adapters import espeak
from avatarflow_animator.adapters.espeak import EspeakNg
from avatarflow_animator.bootstrap import render_pack
from avatarflow_animator.core import FPS
from avatarflow_animator.core.poses import VISEME_POSES
from avatarflow_animator.core.speech import (
    EDGE_SILENCE_SECONDS,
    Speech,
    SpeechUnavailable,
    azure_track,
    ipa_to_viseme,
    polly_track,
    track_from_onsets,
)
from avatarflow_contracts.manifest import AZURE_VISEME_TO_OVR, OVR_VISEMES, POLLY_VISEME_TO_OVR

# Mouth changes bigger than this (L1 over the mouth controls) are "visible" changes of shape.
SALIENT_CHANGE = 0.4
# Both visemes around the change last this long (2.5 frames), so a third viseme does not blend in.
MIN_SEGMENT_S = 0.1
TARGET_OFFSET_S = 0.040


def contiguous(track) -> bool:
    return track[0][1] == 0.0 and all(a[2] == b[1] and a[1] < a[2] for a, b in itertools.pairwise(track))


@pytest.mark.parametrize(
    ("ipa", "viseme"),
    [("p", "PP"), ("m", "PP"), ("f", "FF"), ("ð", "TH"), ("t", "DD"), ("ŋ", "kk"), ("tʃ", "CH"), ("s", "SS"),
     ("l", "nn"), ("ɹ", "RR"), ("ɑː", "aa"), ("ˈæ", "aa"), ("ɛ", "E"), ("iː", "ih"), ("oʊ", "oh"), ("uː", "ou"),
     ("w", "ou"), ("", "sil")],
)  # fmt: skip
def test_ipa_maps_onto_the_ovr_visemes(ipa, viseme):
    assert ipa_to_viseme(ipa)[0] == viseme


def test_r_coloured_vowels_and_borrowing_consonants():
    assert ipa_to_viseme("ɑːɹ") == ("aa", True)
    assert ipa_to_viseme("h") == (None, False)
    # /h/ takes the shape of what follows; repeats merge; the track runs 0..duration, ends at rest.
    track = track_from_onsets([(0.1, None), (0.15, "aa"), (0.3, "aa"), (0.4, "PP")], 0.6)
    rounded = [(v, round(s, 6), round(e, 6)) for v, s, e in track]
    assert rounded == [("sil", 0.0, 0.1), ("aa", 0.1, 0.4), ("PP", 0.4, 0.56), ("sil", 0.56, 0.6)]
    with pytest.raises(ValueError, match="OVR"):
        track_from_onsets([(0.1, "xx")], 1.0)


def test_provider_viseme_events_plug_into_the_same_track():
    # Azure: audio offsets in 100 ns ticks; Polly: ms. Both through the manifest's tables.
    azure = azure_track([(1_000_000, 21), (2_000_000, 2), (3_500_000, 0)], 0.5)
    assert azure == [("sil", 0.0, 0.1), (AZURE_VISEME_TO_OVR[21], 0.1, 0.2), ("aa", 0.2, 0.35), ("sil", 0.35, 0.5)]
    polly = polly_track([(100, "p"), (200, "a"), (350, "sil")], 0.5)
    assert polly == [("sil", 0.0, 0.1), (POLLY_VISEME_TO_OVR["p"], 0.1, 0.2), ("aa", 0.2, 0.35), ("sil", 0.35, 0.5)]


def test_espeak_ng_speaks_and_times_its_phonemes(speech):
    spoken = speech.synthesize("Hello! Bob meets Sue at five.")
    again = speech.synthesize("Hello! Bob meets Sue at five.")  # a fresh engine per utterance: repeatable
    assert np.array_equal(spoken.samples, again.samples) and spoken.track == again.track
    assert spoken.engine == "espeak-ng" and spoken.sample_rate > 8000 and spoken.duration_s > 1.0
    level = np.abs(spoken.samples.astype(np.int32))
    assert level.max() > 3000  # real audio, not silence
    onsets = [t for t, _ in spoken.onsets]
    assert onsets == sorted(onsets) and onsets[0] >= 0 and onsets[-1] <= spoken.duration_s
    visemes = [v for v, _, _ in spoken.track]
    assert contiguous(spoken.track) and spoken.track[-1][2] == pytest.approx(spoken.duration_s)
    assert visemes[0] == visemes[-1] == "sil" and set(visemes) <= set(OVR_VISEMES)
    assert {"PP", "SS", "ou", "FF"} <= set(visemes)  # Bob, meets/Sue, Sue, five
    # Sound where the track speaks, quiet in the pause after "Hello!".
    rate = spoken.sample_rate
    pause = max((e - s, s, e) for v, s, e in spoken.track[1:-1] if v == "sil")
    quiet = level[int(pause[1] * rate) + 200 : int(pause[2] * rate) - 200]
    talking = np.concatenate([level[int(s * rate) : int(e * rate)] for v, s, e in spoken.track if v != "sil"])
    assert pause[0] > 0.1 and quiet.mean() < 0.05 * talking.mean()


def test_missing_espeak_is_a_clear_error_and_the_pack_stays_whole(monkeypatch, renderer, rendered):
    monkeypatch.setattr(espeak, "LIBRARY", "libespeak-ng-missing.so.9")
    with pytest.raises(SpeechUnavailable, match=r"espeak-ng is not installed.*AVATARFLOW_ANIMATOR_TTS=none"):
        EspeakNg()

    class NoEngine:  # what a synthesizer whose engine vanished at run time does
        name = "espeak-ng"

        def synthesize(self, text: str) -> Speech:
            raise SpeechUnavailable("espeak-ng is not installed")

    item = rendered[SAMPLE_IMAGES[0]]
    pack = render_pack(item.cutout.rgba, item.cutout.face, renderer=renderer, speech=NoEngine())
    assert pack.speech_error == "espeak-ng is not installed"
    assert pack.manifest.preview.audio is None and set(pack.files) == set(item.pack.files)
    assert len(decode_webm_rgba(pack.files["preview.webm"])) == pack.manifest.preview.frame_count
    with av.open(io.BytesIO(pack.files["preview.webm"])) as container:
        assert not container.streams.audio


def decoded_audio(webm: bytes) -> tuple[np.ndarray, int, str]:
    with av.open(io.BytesIO(webm)) as container:
        stream = container.streams.audio[0]
        codec, rate = stream.codec_context.name, stream.codec_context.sample_rate
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
    return pcm.astype(np.float64), rate, codec


def envelope(samples: np.ndarray, rate: int, step_s: float = 0.005) -> np.ndarray:
    step = round(rate * step_s)
    usable = len(samples) // step * step
    return np.sqrt((samples[:usable].reshape(-1, step) ** 2).mean(axis=1))


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_preview_carries_the_speech_and_the_mouth_follows_its_timing(rendered, speech, name):
    pack = rendered[name].pack
    preview = pack.manifest.preview
    assert preview.audio is not None and preview.audio.codec == "opus" and preview.audio.engine == "espeak-ng"

    # 1. The clip's audio is the speech, starting with frame 0 and as long as the video.
    pcm, rate, codec = decoded_audio(pack.files["preview.webm"])
    assert codec == "opus" and rate == preview.audio.sample_rate
    assert abs(len(pcm) / rate - preview.frame_count / FPS) <= 0.021
    spoken = speech.synthesize(preview.text)
    reference = np.concatenate([np.zeros(round(EDGE_SILENCE_SECONDS * spoken.sample_rate)), spoken.samples])
    got, want = envelope(pcm, rate), envelope(reference.astype(np.float64), spoken.sample_rate)
    length = min(len(got), len(want))
    lags = range(-20, 21)  # +-100 ms in 5 ms steps
    scores = [np.dot(np.roll(want[:length], lag), got[:length]) for lag in lags]
    audio_lag_s = lags[int(np.argmax(scores))] * 0.005
    assert abs(audio_lag_s) <= 0.005, audio_lag_s

    # 2. The mouth changes shape at the phoneme onsets. For each visible change between two
    #    visemes (each lasting >= MIN_SEGMENT_S, so a neighbour does not dominate), every decoded
    #    frame's mouth region is placed between the two visemes' atlas cells (projection onto
    #    their difference: 0 = before, 1 = after); the frame where it first reaches half-way is
    #    where the shape changed. A frame is on screen from index / fps.
    frames = np.stack(decode_webm_rgba(pack.files["preview.webm"])).astype(np.float64)
    cells = {k: v.astype(np.float64) for k, v in atlas_cells(pack.files["visemes.png"], pack.manifest).items()}
    mx, my = pack.manifest.anchors.mouth_center.x, pack.manifest.anchors.mouth_center.y
    _fx, _fy, fw, fh = pack.manifest.anchors.face_box
    rows, columns = slice(int(my - 0.12 * fh), int(my + 0.2 * fh)), slice(int(mx - 0.25 * fw), int(mx + 0.25 * fw))
    offsets = []
    for before, after in itertools.pairwise(preview.timeline):
        a, b = VISEME_POSES[before.viseme], VISEME_POSES[after.viseme]
        distance = sum(abs(getattr(a, f) - getattr(b, f)) for f in ("jaw_open", "lip_spread", "lip_round", "lip_press"))
        long_enough = min(before.end_s - before.start_s, after.end_s - after.start_s) >= MIN_SEGMENT_S
        if distance < SALIENT_CHANGE or not long_enough:
            continue
        start = cells[before.viseme][rows, columns, :3].ravel()
        direction = cells[after.viseme][rows, columns, :3].ravel() - start
        near = round(after.start_s * FPS)
        window = range(max(1, near - 3), min(len(frames), near + 3))
        progress = {
            i: float(np.dot(frames[i][rows, columns, :3].ravel() - start, direction) / direction.dot(direction))
            for i in range(window.start - 1, window.stop)
        }
        crossings = [i for i in window if progress[i - 1] < 0.5 <= progress[i]]
        assert crossings, (before.viseme, after.viseme, after.start_s)
        frame = min(crossings, key=lambda i: abs(i - near))
        offsets.append(frame / FPS - after.start_s)
    print(f"{name}: phoneme onset -> mouth change offsets (ms)", [round(o * 1000) for o in offsets])
    assert len(offsets) >= 4, offsets
    assert max(abs(o) for o in offsets) <= TARGET_OFFSET_S, offsets
