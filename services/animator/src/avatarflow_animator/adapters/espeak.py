"""espeak-ng adapter for the speech port: offline audio plus each phoneme's onset (IPA).

Drives Debian's ``libespeak-ng.so.1`` (package ``espeak-ng``) through ctypes in synchronous mode
(``espeak_worker.py``): the synth callback receives the audio in blocks together with events,
and with ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA`` a ``PHONEME`` event
carries the phoneme's IPA and its position in the audio (in samples).

Each utterance runs in a fresh, standard-library-only Python process (about 30 ms): the library
keeps state between utterances (the same text came out different on a second call), is not
thread-safe, and a crash in it must not take the service down. A missing library, data or voice
is a :class:`SpeechUnavailable` saying what to install: the service then renders a silent preview
(dictionary timing) instead of failing packs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..core.speech import Speech, SpeechUnavailable, phoneme_onsets, track_from_onsets

LIBRARY = "libespeak-ng.so.1"
WORKER = Path(__file__).with_name("espeak_worker.py")
MAX_TEXT_CHARS = 2000
TIMEOUT_S = 30.0


class EspeakNg:
    """The offline default synthesizer (``AVATARFLOW_ANIMATOR_TTS=espeak-ng``)."""

    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", rate_wpm: int = 165) -> None:
        self.voice = voice
        self.rate_wpm = rate_wpm
        self._run("")  # fail at start-up, with the reason, when the engine or voice is missing

    def _run(self, text: str) -> tuple[int, list[tuple[int, str]], np.ndarray]:
        command = [sys.executable, "-I", str(WORKER), LIBRARY, self.voice, str(self.rate_wpm)]
        try:
            done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpeechUnavailable(f"espeak-ng did not run: {exc}") from exc
        reason = done.stderr.decode(errors="replace").strip()
        if done.returncode == 3:
            raise SpeechUnavailable(
                f"espeak-ng is not installed ({reason}); install Debian's espeak-ng, "
                "or set AVATARFLOW_ANIMATOR_TTS=none for a silent preview"
            )
        if done.returncode != 0:
            raise SpeechUnavailable(reason or f"espeak-ng exited with {done.returncode}")
        header, _, audio = done.stdout.partition(b"\n")
        meta = json.loads(header)
        samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.int16)
        return int(meta["sample_rate"]), [(int(s), str(p)) for s, p in meta["phonemes"]], samples

    def synthesize(self, text: str) -> Speech:
        rate, phonemes, samples = self._run(" ".join(text.split())[:MAX_TEXT_CHARS])
        duration = len(samples) / rate
        if duration == 0:
            raise SpeechUnavailable("espeak-ng produced no audio for the text")
        timed = [(sample / rate, ipa) for sample, ipa in phonemes]
        track = track_from_onsets(phoneme_onsets(timed, duration), duration)
        return Speech(samples, rate, track, tuple(timed), engine="espeak-ng", voice=self.voice)
