"""Festival as an optional speech backend (Debian: festival festvox-kallpc16k).

Festival writes its segment and word relations with end times (xlabel format); its US phone set is
ARPAbet/TIMIT-like (`pau` for pauses), so the labels go through the same folding as any corpus.
Speakers differ by speaking rate only (Duration_Stretch): the installed diphone voice is one voice.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment

VOICE = "voice_kal_diphone"


class FestivalError(RuntimeError):
    pass


def read_xlabel(path: Path) -> list[tuple[float, str]]:
    """(end time, label) rows after the '#' header line."""
    rows, body = [], False
    for line in path.read_text().splitlines():
        if body and line.strip():
            end, _, label = line.split(maxsplit=2)
            rows.append((float(end), label.strip()))
        body = body or line.strip() == "#"
    return rows


def festival_speak(text: str, rate_wpm: int) -> tuple[np.ndarray, int, list[Segment], list[Segment]]:
    """Audio (float32), its rate, phones tiling [0, duration] (pauses as sil) and words."""
    import soundfile

    if shutil.which("festival") is None:
        raise FestivalError("festival is not installed (apt-get install festival festvox-kallpc16k)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        quoted = text.replace("\\", " ").replace('"', " ")
        (tmp / "run.scm").write_text(
            f"({VOICE})\n(set! Duration_Stretch {170.0 / rate_wpm:.3f})\n"
            f"(set! utt (utt.synth (eval (list 'Utterance 'Text \"{quoted}\"))))\n"
            f"(utt.save.wave utt \"{tmp / 'a.wav'}\" 'riff)\n(utt.save.segs utt \"{tmp / 'a.segs'}\")\n"
            f"(utt.save.words utt \"{tmp / 'a.words'}\")\n"
        )
        done = subprocess.run(["festival", "--batch", str(tmp / "run.scm")], capture_output=True, text=True)
        if done.returncode != 0 or not (tmp / "a.wav").is_file():
            raise FestivalError(f"festival failed for {text!r}: {done.stderr.strip()[-500:]}")
        audio, rate = soundfile.read(tmp / "a.wav", dtype="float32")
        segs, word_ends = read_xlabel(tmp / "a.segs"), read_xlabel(tmp / "a.words")
    duration = len(audio) / rate
    phones, start = [], 0.0
    for end, label in segs:
        end = min(end, duration)
        if end > start:
            phones.append(Segment(SIL if label in ("pau", "h#") else label, start, end))
            start = end
    if start < duration:
        phones.append(Segment(SIL, start, duration))
    words, previous = [], 0.0
    for end, label in word_ends:
        pauses = [p.end for p in phones if p.label == SIL and previous <= p.end <= end]
        words.append(Segment(label.strip(".,;:!?\"").lower(), max([previous, *pauses]), end))
        previous = end
    return audio, rate, phones, words


@dataclass
class FestivalSpeech:
    """`data/tts=festival`: Festival's diphone voice (optional; one voice, speakers differ by rate only)."""

    name = "festival"

    def speak(self, text: str, speaker) -> tuple[np.ndarray, int, list[Segment], list[Segment]]:
        return festival_speak(text, speaker.rate_wpm)
