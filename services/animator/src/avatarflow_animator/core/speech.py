"""Speech for the preview: the text-to-speech port, and phoneme/viseme events onto a viseme track.

A :class:`SpeechSynthesizer` turns text into audio plus the timing of what is said. The offline
default is Debian's espeak-ng (``adapters.espeak.EspeakNg``), which reports every phoneme's onset in the
audio (IPA); :func:`ipa_to_viseme` maps those onto the OVR visemes the atlas holds. Production
engines report visemes themselves: Azure Speech's ``VisemeReceived`` events (``audio_offset`` in
100 ns ticks, ``viseme_id`` 0..21) and Amazon Polly's ``viseme`` speech marks (``time`` in ms,
``value``) become the same track through :func:`track_from_onsets` with the manifest's
``AZURE_VISEME_TO_OVR`` / ``POLLY_VISEME_TO_OVR`` tables (:func:`azure_track`, :func:`polly_track`),
so an adapter for them only has to return a :class:`Speech`.

Pure: no I/O here (the espeak-ng adapter lives in ``adapters/espeak.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from avatarflow_contracts.manifest import AZURE_VISEME_TO_OVR, OVR_VISEMES, POLLY_VISEME_TO_OVR

# Silence framing the line in the preview (as the dictionary-timed preview has).
EDGE_SILENCE_SECONDS = 0.2
# A vowel with an r-colouring (ɑːɹ, ʊɹ...) closes into RR for this last share of its length.
RHOTIC_TAIL_SHARE = 0.35

Track = list[tuple[str, float, float]]


class SpeechUnavailable(RuntimeError):
    """The speech engine cannot run here (not installed, no voice); the preview goes silent."""


@dataclass(frozen=True)
class Speech:
    """Audio and its viseme track; times in seconds from the start of ``samples``."""

    samples: np.ndarray  # (n,) int16 mono
    sample_rate: int
    # Contiguous ``(viseme, start_s, end_s)`` from 0 to the audio's end, starting and ending in sil.
    track: Track
    # ``(onset_s, unit)`` as the engine reported it (IPA phonemes, or provider viseme codes).
    onsets: tuple[tuple[float, str], ...]
    engine: str
    voice: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


class SpeechSynthesizer(Protocol):
    """The text-to-speech port. Raises :class:`SpeechUnavailable` when the engine cannot run."""

    name: str

    def synthesize(self, text: str) -> Speech: ...


# IPA (length and stress marks stripped) onto OVR visemes. "h" and the glottal stop have no mouth
# shape of their own: they take the next phone's (``None`` here).
IPA_TO_VISEME: dict[str, str | None] = {
    "p": "PP", "b": "PP", "m": "PP", "m̩": "PP",
    "f": "FF", "v": "FF",
    "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "ɾ": "DD", "ɾ̃": "DD",
    "k": "kk", "ɡ": "kk", "g": "kk", "ŋ": "kk", "x": "kk",
    "tʃ": "CH", "dʒ": "CH", "ʃ": "CH", "ʒ": "CH",
    "s": "SS", "z": "SS",
    "n": "nn", "n̩": "nn", "l": "nn", "l̩": "nn", "əl": "nn", "ɫ": "nn",
    "ɹ": "RR", "r": "RR", "ɚ": "RR", "ɝ": "RR", "ɜ": "RR",
    "a": "aa", "ɑ": "aa", "æ": "aa", "ʌ": "aa", "ɐ": "aa", "ə": "aa", "aɪ": "aa", "aʊ": "aa", "ɒ": "oh",
    "ɛ": "E", "e": "E", "eɪ": "E", "ɛə": "E",
    "ɪ": "ih", "i": "ih", "ᵻ": "ih", "j": "ih", "iə": "ih",
    "ɔ": "oh", "o": "oh", "oʊ": "oh", "əʊ": "oh", "ɔɪ": "oh",
    "u": "ou", "ʊ": "ou", "w": "ou", "ʍ": "ou",
    "h": None, "ʔ": None,
}  # fmt: skip
_MARKS = str.maketrans("", "", "ːˑˈˌ'ˌ,")


def ipa_to_viseme(phoneme: str) -> tuple[str | None, bool]:
    """``(viseme, rhotic)`` for one engine phoneme; ``("sil", False)`` for a pause.

    Unknown symbols fall back to their longest known prefix (``ɑːɹ`` -> ``ɑ``); ``rhotic`` tells
    the caller the vowel ends in r-colouring, which closes into RR.
    """
    symbol = phoneme.translate(_MARKS).strip()
    if not symbol or symbol in ("_", "||", "|"):
        return "sil", False
    rhotic = len(symbol) > 1 and symbol.endswith(("ɹ", "r")) and symbol not in IPA_TO_VISEME
    if rhotic:
        symbol = symbol[:-1]
    for length in range(len(symbol), 0, -1):
        if symbol[:length] in IPA_TO_VISEME:
            return IPA_TO_VISEME[symbol[:length]], rhotic
    return "sil", False


def track_from_onsets(onsets: Sequence[tuple[float, str | None]], duration_s: float) -> Track:
    """A contiguous viseme track from ``(onset_s, viseme)`` events lasting until the next one.

    ``None`` takes the next event's viseme (an /h/ shapes the mouth for what follows). The track
    is ``sil`` before the first event, ends at ``duration_s`` and merges repeats.
    """
    # Stable by time: events at the same instant keep the engine's order (a pause, then a vowel).
    events = sorted(((max(0.0, t), v) for t, v in onsets if t < duration_s), key=lambda event: event[0])
    resolved: list[tuple[float, str]] = []
    for index, (onset, viseme) in enumerate(events):
        if viseme is None:
            viseme = next((v for _t, v in events[index + 1 :] if v is not None), "sil")
        if viseme not in OVR_VISEMES:
            raise ValueError(f"not an OVR viseme: {viseme!r}")
        resolved.append((onset, viseme))
    track: Track = []
    edges = [(0.0, "sil"), *resolved, (duration_s, "sil")]
    for (start, viseme), (end, _next) in itertools.pairwise(edges):
        if end <= start:
            continue
        if track and track[-1][0] == viseme:
            track[-1] = (viseme, track[-1][1], end)
        else:
            track.append((viseme, start, end))
    if track[-1][0] != "sil":
        # The last sound runs to the end: close with a frame-short rest so the clip ends at rest.
        viseme, start, end = track[-1]
        cut = max(start, end - 0.04)
        track[-1:] = [(viseme, start, cut), ("sil", cut, end)] if cut > start else [("sil", start, end)]
    return track


def phoneme_onsets(phonemes: Sequence[tuple[float, str]], end_s: float) -> list[tuple[float, str | None]]:
    """Engine phonemes (onset, IPA) onto viseme onsets; r-coloured vowels get an RR tail."""
    onsets: list[tuple[float, str | None]] = []
    for index, (onset, phoneme) in enumerate(phonemes):
        viseme, rhotic = ipa_to_viseme(phoneme)
        onsets.append((onset, viseme))
        if rhotic:
            following = phonemes[index + 1][0] if index + 1 < len(phonemes) else end_s
            onsets.append((following - RHOTIC_TAIL_SHARE * (following - onset), "RR"))
    return onsets


def azure_track(events: Sequence[tuple[int, int]], duration_s: float) -> Track:
    """Azure Speech ``VisemeReceived`` events ``(audio_offset in 100 ns ticks, viseme_id)``."""
    return track_from_onsets([(ticks / 1e7, AZURE_VISEME_TO_OVR[vid]) for ticks, vid in events], duration_s)


def polly_track(marks: Sequence[tuple[int, str]], duration_s: float) -> Track:
    """Amazon Polly ``viseme`` speech marks ``(time in ms, value)``."""
    return track_from_onsets([(ms / 1000.0, POLLY_VISEME_TO_OVR[value]) for ms, value in marks], duration_s)


def pad_speech(speech: Speech, lead_s: float, total_s: float) -> Speech:
    """The same speech with ``lead_s`` of silence before it and silence up to ``total_s``."""
    lead = round(lead_s * speech.sample_rate)
    total = max(round(total_s * speech.sample_rate), lead + len(speech.samples))
    samples = np.zeros(total, dtype=np.int16)
    samples[lead : lead + len(speech.samples)] = speech.samples
    end = total / speech.sample_rate
    shifted = [(v, s + lead_s if s > 0 else 0.0, e + lead_s) for v, s, e in speech.track]
    if shifted[0][0] == "sil":
        shifted[0] = ("sil", 0.0, shifted[0][2])
    else:
        shifted.insert(0, ("sil", 0.0, lead_s))
    if shifted[-1][0] == "sil":
        shifted[-1] = ("sil", shifted[-1][1], end)
    else:
        shifted.append(("sil", shifted[-1][2], end))
    onsets = tuple((t + lead_s, unit) for t, unit in speech.onsets)
    return Speech(samples, speech.sample_rate, shifted, onsets, speech.engine, speech.voice)
