"""Speech synthesis with timed phonemes through libespeak-ng (bundled by `espeakng-loader`).

The library is driven through ctypes in synchronous mode. With phoneme events enabled, the synthesis
callback receives, besides the audio, one event per phoneme whose `sample` field is the exact sample
index at which that phoneme starts: that is what makes the alignments exact.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import threading
import zlib
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment
from avfusion.synth.arpabet import PAUSE, split_interval, to_arpabet

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT in speak_lib.h
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


@dataclass(frozen=True)
class TimedPhoneme:
    symbol: str  # espeak mnemonic, stress marks included (e.g. "'aI", "t#", "_:")
    start: int  # sample index at the synthesiser's rate
    word: int  # index of the word it belongs to, -1 before the first word


@dataclass(frozen=True)
class Synthesis:
    audio: np.ndarray  # int16 mono
    sample_rate: int
    phonemes: list[TimedPhoneme]
    words: list[tuple[int, int]]  # (text_position, length) per word, 1-based positions as espeak gives


class EspeakError(RuntimeError):
    pass


class Espeak:
    """Synthesis through libespeak-ng, one freshly loaded library instance per utterance.

    libespeak-ng keeps static state between calls that neither espeak_Initialize nor the random
    seed resets (the same text twice gives slightly different durations), so each utterance loads
    the library anew and unloads it afterwards (about 10 ms per utterance). Initialising seeds its
    noise generator (breath noise of voice variants such as f2, f3, f5) with the clock, so it is
    reseeded from the arguments: the output then depends on the arguments alone.
    """

    _lock = threading.Lock()
    _instance: "Espeak | None" = None

    def __init__(self) -> None:
        import espeakng_loader

        self._library_path = espeakng_loader.get_library_path()
        self._data_path = espeakng_loader.get_data_path().encode()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _Callback(self._on_synth)  # keep a reference: ctypes must not free it
        with self._loaded() as lib:
            self.sample_rate = lib.sample_rate

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = Espeak()
            return cls._instance

    @contextlib.contextmanager
    def _loaded(self):
        lib = ctypes.CDLL(self._library_path)
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_Synth.argtypes = [
                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
            ]
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path, _INITIALIZE_PHONEME_EVENTS)
            if rate <= 0:
                raise EspeakError(f"espeak-ng failed to initialise with data at {self._data_path.decode()}")
            lib.sample_rate = rate
            lib.espeak_SetSynthCallback(self._callback)
            yield lib
            lib.espeak_Terminate()
        finally:
            _ctypes.dlclose(lib._handle)

    def _on_synth(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            name = e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else ""
            self._events.append((e.type, e.sample, e.text_position, e.length, name))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> Synthesis:
        """Speak `text` with an espeak voice name such as "en-us+f2"; returns audio and timed phonemes."""
        with self._lock, self._loaded() as lib:
            lib.espeak_ng_SetRandSeed(zlib.crc32(f"{voice}|{rate_wpm}|{pitch}|{pitch_range}|{text}".encode()))
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((_PARAM_RATE, rate_wpm), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            encoded = text.encode("utf-8")
            status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, 0, None, None)
            if status != 0:
                raise EspeakError(f"espeak-ng synthesis failed (status {status}) for text {text!r}")
            chunks, events = self._chunks, self._events
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        phonemes, words = [], []
        for kind, sample, text_pos, length, name in events:
            if kind == _EVENT_WORD:
                words.append((text_pos, length))
            elif kind == _EVENT_PHONEME and name:
                phonemes.append(TimedPhoneme(name, sample, len(words) - 1))
        return Synthesis(audio.astype(np.int16), self.sample_rate, phonemes, words)


@dataclass
class EspeakSpeech:
    """`data/tts=espeak` (the default): libespeak-ng, bundled; each speaker an espeak voice, rate and pitch."""

    name = "espeak"

    def speak(self, text: str, speaker) -> tuple[np.ndarray, int, list[Segment], list[Segment]]:
        """Audio (float32), its rate, phones tiling it (pauses as sil) and words."""
        syn = Espeak.get().synthesize(text, speaker.voice, speaker.rate_wpm, speaker.pitch, speaker.pitch_range)
        phones, words = timed_labels(syn, text)
        return syn.audio.astype(np.float32) / 32768.0, syn.sample_rate, phones, words


def timed_labels(syn: Synthesis, text: str) -> tuple[list[Segment], list[Segment]]:
    """Phone and word intervals in seconds from espeak's phoneme events.

    A phoneme lasts until the next one starts (the last until the synthesised audio ends); a
    mnemonic that maps to several ARPAbet phones has its interval split by their typical durations
    (`arpabet.split_interval`: the schwa of a syllabic l is shorter than the l); time before the
    first phoneme is silence, so the phones tile the synthesised audio exactly.
    """
    sr = syn.sample_rate
    bounds = [p.start for p in syn.phonemes] + [len(syn.audio)]
    phones: list[Segment] = []
    word_spans: dict[int, list[float]] = {}

    def add(label: str, start: float, end: float) -> None:
        if end - start <= 1e-9:
            return
        if phones and label == SIL and phones[-1].label == SIL:
            phones[-1] = Segment(SIL, phones[-1].start, end)
        else:
            phones.append(Segment(label, start, end))

    add(SIL, 0.0, bounds[0] / sr)
    for ph, b0, b1 in zip(syn.phonemes, bounds[:-1], bounds[1:]):
        t0, t1 = b0 / sr, b1 / sr
        arpa = to_arpabet(ph.symbol)
        if not arpa:  # absorbed into the previous phone
            if phones:
                phones[-1] = Segment(phones[-1].label, phones[-1].start, t1)
            continue
        edges = split_interval(arpa, t0, t1)
        for label, a, b in zip(arpa, edges[:-1], edges[1:]):
            add(SIL if label == PAUSE else label, float(a), float(b))
        if arpa != (PAUSE,) and ph.word >= 0:
            span = word_spans.setdefault(ph.word, [t0, t1])
            span[1] = t1
    words = []
    for w, (t0, t1) in sorted(word_spans.items()):
        pos, _ = syn.words[w]
        token = text[pos - 1:].split(maxsplit=1)[0]  # the whole written word ("Don't", not "Don")
        words.append(Segment(token.strip(".,;:!?\"").lower(), t0, t1))
    return phones, words
