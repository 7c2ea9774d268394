import collections
import os

import cv2
import numpy as np
import pytest
import soundfile

from avfusion.corpus.alignments import normalise_phones, read_phones, read_textgrid
from avfusion.corpus.phones import PHONES, PHONE_TO_VISEME
from avfusion.corpus.types import CorpusError
from avfusion.corpus.labels import corpus_scheme
from avfusion.frames.stats import corpus_stats, format_stats
from avfusion.synth.espeak import Espeak, EspeakError
from avfusion.media import read_video
from avfusion.utils.atomic import atomic_path

from conftest import small_synthetic


def test_layout_and_speaker_independent_splits(small_corpus):
    builder, corpus = small_corpus
    assert len(corpus) == 9
    assert sorted({u.split for u in corpus}) == ["dev", "test", "train"]
    corpus.check_speaker_independent()
    for u in corpus:
        assert u.audio.suffix == ".wav" and u.video.suffix == ".mp4" and u.alignment.suffix == ".TextGrid"
        assert u.audio.is_file() and u.video.is_file() and u.alignment.is_file()
        assert u.text


def test_alignment_tiles_the_wav(small_corpus):
    _, corpus = small_corpus
    for u in corpus:
        info = soundfile.info(u.audio)
        assert info.samplerate == 16000 and info.channels == 1
        phones = read_phones(u.alignment)  # raises if boundaries are not monotonic
        assert phones[0].start == pytest.approx(0.0, abs=1e-9)
        assert abs(phones[-1].end - info.frames / info.samplerate) <= 0.010
        for a, b in zip(phones, phones[1:]):
            assert b.start == pytest.approx(a.end, abs=1e-6)
        folded = normalise_phones(phones)
        assert {p.label for p in folded} <= set(PHONES)
        words = [w for w in read_textgrid(u.alignment, "words") if w.label]
        assert [w.label for w in words] == [t.strip(".,").lower() for t in u.text.split()]


def test_video_frame_count_matches_duration(small_corpus):
    _, corpus = small_corpus
    for u in corpus:
        duration = soundfile.info(u.audio).duration
        cap = cv2.VideoCapture(str(u.video))
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
        n = len(read_video(u.video)[0])
        assert abs(n - duration * 25) <= 1


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = small_synthetic(tmp_path / "a", n_speakers=3, utterances_per_speaker=2)
    b = small_synthetic(tmp_path / "b", n_speakers=3, utterances_per_speaker=2)
    c = small_synthetic(tmp_path / "c", n_speakers=3, utterances_per_speaker=2, seed=8)
    ca, cb, cc = a.load(progress=False), b.load(progress=False), c.load(progress=False)
    for ua, ub in zip(ca, cb):
        assert ua.audio.read_bytes() == ub.audio.read_bytes()
        assert ua.alignment.read_bytes() == ub.alignment.read_bytes()
        assert ua.video.read_bytes() == ub.video.read_bytes()
        assert (ua.id, ua.split, ua.text) == (ub.id, ub.split, ub.text)
    assert [u.audio.read_bytes() for u in ca] != [u.audio.read_bytes() for u in cc]


def test_voices_with_breath_noise_do_not_depend_on_the_clock():
    """espeak-ng seeds its noise generator with time(NULL); two processes a second apart must agree."""
    import subprocess
    import sys
    import time

    code = ("import hashlib; from avfusion.synth.espeak import Espeak; "
            "a = Espeak.get().synthesize('She had your dark suit.', 'en-029+f2', 177, 76, 36).audio; "
            "print(hashlib.md5(a.tobytes()).hexdigest())")
    digests = []
    for _ in range(2):
        digests.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        time.sleep(1.1)
    assert digests[0] == digests[1]


def test_resume_regenerates_only_what_is_missing(tmp_path):
    builder = small_synthetic(tmp_path / "r", utterances_per_speaker=2)
    corpus = builder.load(progress=False)
    victim, kept = corpus.utterances[0], corpus.utterances[1]
    victim_bytes = victim.audio.read_bytes()
    os.remove(victim.audio)
    os.remove(builder.manifest_path)  # as if killed before the manifest was written
    kept_mtime = kept.video.stat().st_mtime_ns
    rebuilt = builder.load(progress=False)
    assert victim.audio.read_bytes() == victim_bytes
    assert kept.video.stat().st_mtime_ns == kept_mtime
    assert [u.id for u in rebuilt] == [u.id for u in corpus]
    assert not list(tmp_path.rglob("*.tmp*"))


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    small_synthetic(tmp_path / "x", utterances_per_speaker=1).load(progress=False)
    with pytest.raises(CorpusError, match="other settings.*utterances_per_speaker: 1 there, 2 asked"):
        small_synthetic(tmp_path / "x", utterances_per_speaker=2).load(progress=False)


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "u.wav"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert not target.exists() and not list((tmp_path / "out").iterdir())


def test_an_atomic_write_gets_the_permissions_of_an_ordinary_one(tmp_path):
    import os

    with atomic_path(tmp_path / "atomic.txt") as tmp:
        tmp.write_text("x")
    (tmp_path / "plain.txt").write_text("x")
    assert os.stat(tmp_path / "atomic.txt").st_mode == os.stat(tmp_path / "plain.txt").st_mode  # not owner-only


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(EspeakError, match="no voice 'xx-nowhere'"):
        Espeak.get().synthesize("hello", "xx-nowhere", 170, 50, 50)


def inner_mouth_height(bgr: np.ndarray) -> int:
    """Tallest run of oral-cavity (dark) or teeth (bright, unsaturated) pixels in the central columns."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(float)
    v, s = hsv[..., 2], hsv[..., 1]
    inside = (v < 0.5 * np.median(v)) | ((s < 60) & (v > 150))
    h, w = inside.shape
    return int(inside[h // 5:4 * h // 5, 2 * w // 5:3 * w // 5].sum(axis=0).max())


def frames_at_phone_centres(corpus, min_duration=0.06):
    """(phone, frame) pairs at the centre of phones long enough for the lips to reach their target."""
    for u in corpus:
        frames = read_video(u.video)[0]
        for seg in normalise_phones(read_phones(u.alignment)):
            k = int(round((seg.start + seg.end) / 2 * 25))
            if seg.duration >= min_duration and k < len(frames):
                yield seg.label, frames[k]


def test_rendered_mouth_carries_the_viseme(tmp_path):
    # the lips in step with the labels and no transient nuisances: the rendering alone (the timing is
    # tested in test_synth_realism)
    in_step = {"av_lead_ms": [0, 0], "av_jitter_ms": 0, "onset_lead_ms": [0, 0], "nuisance_share": 0}
    corpus = small_synthetic(tmp_path / "in_step", realism=in_step, n_babble_talkers=0).load(progress=False)
    opening = collections.defaultdict(list)
    for phone, frame in frames_at_phone_centres(corpus):
        opening[PHONE_TO_VISEME[phone]].append(inner_mouth_height(frame))
    mean = {v: np.mean(x) for v, x in opening.items()}
    assert min(mean, key=mean.get) == "E"  # p b m: lips closed
    assert max(mean, key=mean.get) in ("V1", "V3")  # open vowels
    assert mean["V1"] > 3 * mean["E"]


# slow: builds the whole default corpus (shared with test_paper_dimensions_360_and_540)
@pytest.mark.slow
def test_default_corpus_covers_every_phone_in_every_split(default_corpus):
    builder, corpus = default_corpus
    assert len(corpus.speakers()) == 24
    corpus.check_speaker_independent()
    scheme = corpus_scheme("auto", corpus)
    stats = corpus_stats(corpus, scheme)
    for split, st in stats.items():
        assert st.units_present == set(PHONES), (split, set(PHONES) - st.units_present)
    assert stats["train"].speakers == 16 and stats["dev"].speakers == 4 and stats["test"].speakers == 4
    assert "classes covered (of 39)" in format_stats(stats, scheme)


def test_phone_times_match_the_acoustics(small_corpus):
    """Speech starts where the first phone starts, and vowels are far louder than silences."""
    _, corpus = small_corpus
    vowel_db, silence_db = [], []
    for u in corpus:
        audio, sr = soundfile.read(u.audio)
        hop = sr // 200  # 5 ms
        frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
        level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        phones = normalise_phones(read_phones(u.alignment))
        first_speech = next(p for p in phones if p.label != "sil")
        noise_floor = np.median(level[: int(phones[0].end * 200) - 4])
        onset = np.argmax(level > noise_floor + 15) / 200
        assert abs(onset - first_speech.start) <= 0.010, u.id
        for p in phones:
            inner = level[int(p.start * 200) + 2:int(p.end * 200) - 2]
            if len(inner) and p.label == "sil":
                silence_db.append(inner.mean())
            elif len(inner) and p.label in ("aa", "ae", "iy", "ow", "uw", "eh"):
                vowel_db.append(inner.mean())
    assert np.mean(vowel_db) - np.mean(silence_db) > 25


@pytest.mark.skipif(__import__("shutil").which("festival") is None, reason="festival not installed (optional backend)")
def test_festival_backend_writes_the_same_layout(tmp_path):
    builder = small_synthetic(tmp_path / "fest", "data/tts=festival", utterances_per_speaker=2)
    corpus = builder.load(progress=False)
    for u in corpus:
        info = soundfile.info(u.audio)
        phones = read_phones(u.alignment)
        assert abs(phones[-1].end - info.frames / info.samplerate) <= 0.010
        folded = normalise_phones(phones)
        assert {p.label for p in folded} <= set(PHONES) and len(folded) > 5
        words = [w.label for w in read_textgrid(u.alignment, "words") if w.label]
        assert words == [t.strip(".,").lower() for t in u.text.split()]


def test_grouped_settings_keep_the_flat_names_older_corpora_carry(tmp_path):
    """synth_config.json stays flat under the names a corpus made before the settings were grouped carries,
    so such a corpus still loads without being generated again; from_settings reads it back."""
    from avfusion.synth.face import FaceRenderer
    from avfusion.synth.generator import SyntheticCorpus

    corpus = small_synthetic(tmp_path / "x", "data/renderer=face", realism={"coupling": 0.5})
    flat = corpus.settings()
    assert set(flat) == {"n_speakers", "n_dev_speakers", "n_test_speakers", "utterances_per_speaker", "video_mode",
                         "tts", "roi_size", "fps", "sample_rate", "seed", "room_snr_db", "video_motion",
                         "video_lighting", "video_noise_std", "pad_range_s", "av_lead_ms", "av_jitter_ms",
                         "onset_lead_ms", "nuisance_share", "coupling", "articulation_sd", "formant_sd",
                         "n_babble_talkers", "babble_utterances"}
    assert flat["video_mode"] == "face" and flat["tts"] == "espeak" and flat["coupling"] == 0.5
    again = SyntheticCorpus.from_settings(str(tmp_path / "x"), flat, n_jobs=1)
    assert again.settings() == flat and isinstance(again.renderer, FaceRenderer)


def test_a_relative_root_says_where_the_corpus_is_generated(tmp_path, monkeypatch, caplog):
    """A notebook started outside the project would silently make a second corpus: say where, and why."""
    import logging

    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="avfusion.synth.generator"):
        small_synthetic("relative_corpus", utterances_per_speaker=1, n_babble_talkers=0).load(progress=False)
    assert f"generating the synthetic corpus in {tmp_path / 'relative_corpus'} (data.root=relative_corpus is " \
           f"relative to the working folder {tmp_path}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="avfusion.synth.generator"):
        small_synthetic(tmp_path / "relative_corpus", utterances_per_speaker=1, n_babble_talkers=0).load(progress=False)
    assert "generating" not in caplog.text  # built: found where it is
