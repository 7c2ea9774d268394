"""Tiny corpora in the real corpora's layouts, re-laid out from the synthetic corpus's files: the
adapters, readers and validation are tested on files shaped like TCD-TIMIT, GRID, LRS3 and TIMIT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from avfusion.corpus.alignments import read_textgrid, utterance_labels
from avfusion.corpus.adapters.grid import VOCABULARY
from avfusion.corpus.types import Corpus
from avfusion.media import load_audio
from avfusion.media import read_video


def write_av(path: Path, video: Path, audio: Path, vcodec: str, acodec: str, sample_rate: int = 16000) -> None:
    """A container with the video's frames and the audio's samples (PyAV), as GRID/LRS3 ship them."""
    import av

    frames, fps = read_video(video)
    wave = load_audio(audio, sample_rate)
    with av.open(str(path), "w") as out:
        v = out.add_stream(vcodec, rate=int(round(fps)))
        v.height, v.width = frames.shape[1:3]
        v.pix_fmt = "yuv420p"
        a = out.add_stream(acodec, rate=sample_rate, layout="mono")
        for frame in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")))
        out.mux(v.encode())
        step = a.codec_context.frame_size or 1152
        fmt = a.codec_context.format.name
        for start in range(0, len(wave), step):
            data = wave[None, start:start + step]  # mono: one plane, packed or planar alike
            if fmt.startswith("s16"):
                data = (np.clip(data, -1, 1) * 32767).astype(np.int16)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="mono")
            af.sample_rate, af.pts = sample_rate, start
            out.mux(a.encode(af))
        out.mux(a.encode())


TCD_FPS = 30000 / 1001  # 29.97


def write_at_rate(src: Path, dst: Path, fps: float) -> None:
    """The video re-timed to another frame rate (nearest earlier frame), as a camera at that rate gives."""
    from avfusion.synth.builder import write_video

    frames, src_fps = read_video(src)
    n = int(round(len(frames) / src_fps * fps))
    write_video(dst, frames[np.minimum((np.arange(n) / fps * src_fps).astype(int), len(frames) - 1)], fps)


def rename_speakers(corpus: Corpus, names: dict[str, list[str]]) -> dict[str, str]:
    """Synthetic speaker -> a corpus's speaker name, by split (names[split] in order)."""
    mapping = {}
    for split, candidates in names.items():
        for speaker, name in zip(corpus.speakers(split), candidates):
            mapping[speaker] = name
    return mapping


def utt_name(utt) -> str:
    return utt.id.rsplit("_", 1)[-1]


def tcd_timit(corpus: Corpus, root: Path) -> dict[str, str]:
    """volunteers/<spk>/Clips/straightcam/<utt>.mp4 at 29.97 fps + 48 kHz .wav, and one MLF with the
    corpus's own kind of entry path ("Q:/Videos/TCD-TIMIT/volunteers/01M/Clips/straightcam/sa1.rec")."""
    speakers = rename_speakers(corpus, {"train": ["01M", "02F", "03F"], "dev": ["05M", "06F"], "test": ["08F", "15F"]})
    mlf = ["#!MLF!#"]
    for utt in corpus:
        spk, name = speakers[utt.speaker], utt_name(utt)
        clips = root / "volunteers" / spk / "Clips" / "straightcam"
        clips.mkdir(parents=True, exist_ok=True)
        write_at_rate(utt.video, clips / f"{name}.mp4", TCD_FPS)
        soundfile.write(clips / f"{name}.wav", load_audio(utt.audio, 48000), 48000, subtype="PCM_16")
        mlf.append(f'"Q:/Videos/TCD-TIMIT/volunteers/{spk}/Clips/straightcam/{name}.rec"')
        mlf += [f"{round(s.start * 1e7)} {round(s.end * 1e7)} {s.label}" for s in utterance_labels(utt)]
        mlf.append(".")
    (root / "volunteer_labelfiles.mlf").write_text("\n".join(mlf) + "\n")
    return speakers


def grid(corpus: Corpus, root: Path) -> dict[str, str]:
    """s<N>/<utt>.mpg (video + audio track) and alignments/s<N>/<utt>.align. The synthetic words are
    replaced by GRID words, position by position (the layout is under test here, not the language)."""
    speakers = rename_speakers(corpus, {"train": ["s3", "s4", "s5"], "dev": ["s6", "s7"], "test": ["s1", "s2"]})
    for utt in corpus:
        spk, name = speakers[utt.speaker], utt_name(utt)
        (root / spk).mkdir(parents=True, exist_ok=True)
        (root / "alignments" / spk).mkdir(parents=True, exist_ok=True)
        write_av(root / spk / f"{name}.mpg", utt.video, utt.audio, "mpeg1video", "mp2")
        words = read_textgrid(utt.alignment, "words")
        lines = [f"{round(w.start * 25000)} {round(w.end * 25000)} {VOCABULARY[i % len(VOCABULARY)] if w.label else 'sil'}"
                 for i, w in enumerate(words)]
        (root / "alignments" / spk / f"{name}.align").write_text("\n".join(lines) + "\n")
    return speakers


def lrs3(corpus: Corpus, root: Path) -> dict[str, str]:
    """{trainval,test}/<video id>/<n>.mp4 (video + AAC audio) and <n>.txt with word timings."""
    ids = {"train": ["0af00UcTOSc", "0akiEFwtkyA", "0d6iSvF1UmA"], "dev": ["1BHOflzxPjI", "1H5ZcY3BqYo"],
           "test": ["0Fi83BHQsMA", "0L4pW9Vu5HE"]}
    speakers = rename_speakers(corpus, ids)
    for utt in corpus:
        subset = "test" if utt.split == "test" else "trainval"
        folder = root / subset / speakers[utt.speaker]
        folder.mkdir(parents=True, exist_ok=True)
        n = f"{int(utt_name(utt)[1:]):05d}"
        write_av(folder / f"{n}.mp4", utt.video, utt.audio, "mpeg4", "aac")
        words = [w for w in read_textgrid(utt.alignment, "words") if w.label]
        text = " ".join(w.label.upper() for w in words)
        body = [f"Text:  {text}", "Conf:  4", "", "WORD START END ASDSCORE"]
        body += [f"{w.label.upper()} {w.start:.2f} {w.end:.2f} 5.1" for w in words]
        (folder / f"{n}.txt").write_text("\n".join(body) + "\n")
    return speakers


def timit(corpus: Corpus, root: Path) -> dict[str, str]:
    """{TRAIN,TEST}/DR1/<SPK>/<UTT>.WAV (NIST SPHERE, as TIMIT ships) + .PHN (sample offsets)."""
    speakers = rename_speakers(corpus, {"train": ["FCJF0", "MDAC0", "MKLS0"], "dev": ["FAKS0", "MGWT0"],
                                        "test": ["MDAB0", "FELC0"]})
    for utt in corpus:
        spk = speakers[utt.speaker]
        part = "TRAIN" if utt.split == "train" else "TEST"
        folder = root / part / "DR1" / spk
        folder.mkdir(parents=True, exist_ok=True)
        name = f"SX{int(utt_name(utt)[1:]) + 10}"
        wave = load_audio(utt.audio, 16000)
        soundfile.write(folder / f"{name}.WAV", wave, 16000, format="NIST", subtype="PCM_16")
        rows = [f"{round(s.start * 16000)} {min(round(s.end * 16000), len(wave))} {s.label}"
                for s in utterance_labels(utt)]
        (folder / f"{name}.PHN").write_text("\n".join(rows) + "\n")
    return speakers
