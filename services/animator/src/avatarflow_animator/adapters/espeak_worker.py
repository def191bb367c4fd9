"""Runs espeak-ng once, in its own short-lived process (standard library only; see espeak.py beside it).

stdin: the text (UTF-8). stdout: one JSON line ``{"sample_rate", "phonemes": [[sample, ipa]...]}``
followed by the audio as raw little-endian int16 mono. Exit 3: the library or its data is
missing; 4: no such voice; 5: synthesis failed (message on stderr).

libespeak-ng keeps state from one utterance to the next (the same text comes out a few samples
different the second time, pauses included), so each utterance gets a fresh process: the
same text always gives the same audio and timing.
"""

from __future__ import annotations

import ctypes
import json
import sys

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def main(argv: list[str]) -> int:
    library_name, voice, rate_wpm = argv[0], argv[1], int(argv[2])
    try:
        library = ctypes.CDLL(library_name)
    except OSError as exc:
        print(f"{library_name}: {exc}", file=sys.stderr)
        return 3
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetSynthCallback.argtypes = [_Callback]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    sample_rate = library.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
    )
    if sample_rate <= 0:
        print("espeak-ng failed to initialise (is espeak-ng-data installed?)", file=sys.stderr)
        return 3
    if library.espeak_SetVoiceByName(voice.encode()) != 0:
        print(f"espeak-ng has no voice {voice!r}", file=sys.stderr)
        return 4
    library.espeak_SetParameter(_RATE, rate_wpm, 0)
    audio = bytearray()
    phonemes: list[list[int | str]] = []

    def on_synth(wav, count, events) -> int:  # type: ignore[no-untyped-def]
        if wav and count > 0:
            audio.extend(ctypes.string_at(wav, count * 2))
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                phonemes.append([event.sample, event.id.string.decode("utf-8", "replace")])
            index += 1
        return 0

    callback = _Callback(on_synth)
    library.espeak_SetSynthCallback(callback)
    text = sys.stdin.buffer.read()
    status = library.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    library.espeak_Synchronize()
    if status != 0:
        print(f"espeak-ng could not synthesise the text (status {status})", file=sys.stderr)
        return 5
    header = json.dumps({"sample_rate": sample_rate, "phonemes": phonemes}, ensure_ascii=True)
    sys.stdout.buffer.write(header.encode() + b"\n" + bytes(audio))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
