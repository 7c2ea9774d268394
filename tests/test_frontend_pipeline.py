"""The front-end over a corpus: cache, train-only fitting, frame matrices."""

import dataclasses
import os

import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.frames.cache import fit_on_train, load_frontend, save_frontend
from avfusion.frames.clock import num_frames
from avfusion.frames.data import FrameData, frames_of
from avfusion.frames.labelling import FrameLabeller
from avfusion.frontends.pipeline import AvMismatchError
from avfusion.frontends.store import FeatureError, FeatureStore

from conftest import small_frontend, small_synthetic

PHONE = get_scheme("phone")


def phone_frames(frontend, utterances):
    return frames_of(frontend, utterances, FrameLabeller(PHONE))


@pytest.fixture(scope="module")
def prepared(small_corpus, tmp_path_factory):
    _, corpus = small_corpus
    frontend = small_frontend(tmp_path_factory.mktemp("features"))
    frontend.prepare(list(corpus), progress=False)
    return corpus, frontend


def test_cached_rerun_extracts_nothing(prepared, monkeypatch):
    corpus, frontend = prepared
    for modality in frontend.modalities.values():
        monkeypatch.setattr(type(modality.extractor), "extract", lambda *a: pytest.fail("extracted again"))
    reports = frontend.prepare(list(corpus), progress=False)
    for report in reports.values():
        assert report.extracted == [] and len(report.cached) == len(corpus)


def test_changed_source_is_extracted_again(small_corpus, tmp_path):
    _, corpus = small_corpus
    frontend = small_frontend(tmp_path / "f")
    store = frontend.store(frontend.audio)
    utt = corpus.utterances[0]
    store.build([utt], progress=False)
    assert store.has(utt)
    st = os.stat(utt.audio)
    os.utime(utt.audio, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert not store.has(utt)
        assert store.build([utt], progress=False).extracted == [utt.id]
    finally:
        os.utime(utt.audio, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_interrupted_write_leaves_no_entry(small_corpus, tmp_path, monkeypatch):
    _, corpus = small_corpus
    store = FeatureStore(tmp_path, small_frontend(tmp_path).audio.extractor)
    utt = corpus.utterances[0]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write(utt, np.zeros((3, 24)), {})
    assert not store.has(utt)
    assert not list(store.dir.glob("*.npy")) and not list(store.dir.glob("*.tmp*"))


def test_a_failed_utterance_does_not_stop_the_others(small_corpus, tmp_path):
    from dataclasses import replace

    _, corpus = small_corpus
    frontend = small_frontend(tmp_path / "f")
    broken = replace(corpus.utterances[1], audio=tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav file at all")
    corrupt = replace(corpus.utterances[2], id="corrupt", audio=garbage)
    utts = [corpus.utterances[0], broken, corrupt]
    with pytest.raises(FeatureError) as err:
        frontend.prepare(utts, progress=False)
    assert "missing.wav" in str(err.value) and "garbage.wav: cannot decode audio" in str(err.value)
    assert frontend.store(frontend.audio).has(corpus.utterances[0])


def test_frame_matrices_shapes_and_alignment(prepared):
    corpus, frontend = prepared
    fit_on_train(frontend, corpus)
    data = phone_frames(frontend, corpus.split("test"))
    assert data.features["audio"].shape[1] == 9 * 12 and data.features["video"].shape[1] == 9 * 12
    assert len(data.features["audio"]) == len(data.features["video"]) == len(data.labels)
    import soundfile

    for u, utt_id in enumerate(data.ids):
        utt = next(x for x in corpus if x.id == utt_id)
        n = soundfile.info(utt.audio).frames
        assert data.offsets[u + 1] - data.offsets[u] == num_frames(n / 16000) == 1 + n // 160


# slow: builds the whole default corpus and its front-end (about 2.5 minutes); make test-slow runs it
@pytest.mark.slow
def test_paper_dimensions_360_and_540(default_corpus, tmp_path_factory):
    _, corpus = default_corpus
    from hydra.utils import instantiate

    from conftest import compose_prepare

    cfg = compose_prepare([f"frontend.cache_dir={tmp_path_factory.mktemp('paper')}"])
    frontend = instantiate(cfg.frontend, _convert_="all")
    frontend.prepare(list(corpus), progress=False)
    fit_on_train(frontend, corpus)
    train, dev = phone_frames(frontend, corpus.split("train")), phone_frames(frontend, corpus.split("dev"))
    assert train.features["audio"].shape[1] == 360 and train.features["video"].shape[1] == 540

    from avfusion.corpus.labels import get_scheme
    from avfusion.frontends.probe import linear_probe

    viseme = get_scheme("phone").group_index("viseme")
    audio = linear_probe(train.features["audio"], train.labels, dev.features["audio"], dev.labels, max_frames=8000)
    video = linear_probe(train.features["video"], viseme[train.labels], dev.features["video"],
                         viseme[dev.labels], max_frames=8000)
    assert audio.accuracy > 2.5 * audio.chance  # phones from audio
    # visemes from the lips: about 1.6x chance on the default corpus, whose lips run ahead of the acoustic
    # labels and whose video has transient nuisances (2.2x before those; a corpus without them is easier)
    assert video.accuracy > 1.35 * video.chance


def test_fitting_reads_training_utterances_only(prepared, monkeypatch):
    corpus, frontend = prepared
    read = []
    original = FeatureStore.read

    def spy(self, utt):
        read.append(utt.id)
        return original(self, utt)

    monkeypatch.setattr(FeatureStore, "read", spy)
    frontend = small_frontend(frontend.cache_dir, "frontend.audio.steps.0.scope=global")
    fit_on_train(frontend, corpus)
    train_ids = {u.id for u in corpus.split("train")}
    assert read and set(read) <= train_ids
    # the global CMVN statistics are those of the training frames
    raw = np.concatenate([u.x for u in frontend.raw_frames(corpus.split("train"))["audio"]])
    np.testing.assert_allclose(frontend.audio.steps[0].mean_, raw.mean(0), rtol=1e-4, atol=1e-4)


def test_saved_frontend_and_frames_round_trip(prepared, tmp_path):
    corpus, _ = prepared
    global_cmvn = "frontend.audio.steps.0.scope=global"
    frontend = fit_on_train(small_frontend(prepared[1].cache_dir, global_cmvn), corpus)
    save_frontend(frontend, tmp_path / "frontend.npz")
    with np.load(tmp_path / "frontend.npz", allow_pickle=False) as arrays:  # plain arrays, no pickle
        assert {"audio.steps.0.mean", "audio.steps.2.scalings_", "video.steps.1.scalings_"} <= set(arrays)
    again = load_frontend(small_frontend(frontend.cache_dir, global_cmvn), tmp_path / "frontend.npz")
    a, b = phone_frames(frontend, corpus.split("dev")), phone_frames(again, corpus.split("dev"))
    for m in ("audio", "video"):
        np.testing.assert_array_equal(a.features[m], b.features[m])
    a.save(tmp_path / "dev")
    loaded = FrameData.load(tmp_path / "dev")
    assert isinstance(loaded.features["audio"], np.memmap)
    np.testing.assert_array_equal(loaded.features["audio"], a.features["audio"])
    assert loaded.ids == a.ids and list(loaded.offsets) == list(a.offsets)


def test_av_duration_mismatch_is_an_error_naming_the_file(prepared, tmp_path):
    from dataclasses import replace

    from avfusion.synth.builder import write_video
    from avfusion.media import read_video

    corpus, frontend = prepared
    utt = corpus.split("train")[0]
    frames, fps = read_video(utt.video)
    short = tmp_path / "short.mp4"
    write_video(short, frames[: len(frames) // 2], fps)
    bad = replace(utt, video=short)
    frontend.prepare([bad], progress=False)
    with pytest.raises(AvMismatchError, match="short.mp4: video lasts"):
        frontend.raw_frames([bad])
    # within the tolerance, the video is held to the audio's length
    nearly = tmp_path / "nearly.mp4"
    write_video(nearly, frames[:-2], fps)
    ok = replace(utt, video=nearly)
    frontend.prepare([ok], progress=False)
    raw = frontend.raw_frames([ok])
    assert len(raw["video"][0].x) == len(raw["audio"][0].x)


def test_settings_key_ignores_where_and_how_fast(small_corpus):
    from avfusion.frames.cache import settings_key

    _, corpus = small_corpus
    base = {"cache_dir": "data/features", "n_jobs": 2, "fit_labels": "phone_state"}
    moved = {**base, "cache_dir": "/elsewhere", "n_jobs": 8}
    states = get_scheme("phone_state")
    assert settings_key(base, PHONE, corpus) == settings_key(moved, PHONE, corpus)
    assert settings_key(base, PHONE, corpus) != settings_key(base, states, corpus)
    assert settings_key(base, PHONE, corpus) != settings_key({**base, "fit_labels": "phone"}, PHONE, corpus)
    # an utterance left out (on_error=skip) is another corpus
    fewer = dataclasses.replace(corpus, utterances=corpus.utterances[1:])
    assert settings_key(base, PHONE, corpus) != settings_key(base, PHONE, fewer)


def test_a_corpus_regenerated_in_place_is_another_corpus(tmp_path):
    """Same ids and paths, new files (a synthetic corpus rebuilt with other settings): the cached train/dev
    frames of the old files must not be served."""
    import os

    from avfusion.frames.cache import settings_key

    corpus = small_synthetic(tmp_path / "c", n_speakers=3, utterances_per_speaker=1).load(progress=False)
    base = {"fit_labels": "phone_state"}
    before = settings_key(base, PHONE, corpus)
    wav = corpus.utterances[0].audio
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))  # rewritten: a new mtime
    assert settings_key(base, PHONE, corpus) != before


def test_frames_kept_as_float16_train_as_float32_under_their_own_key(tiny_root):
    """frontend.store_dtype=float16: the prepared matrices at half the bytes, read by the models as float32; null is
    the key frames always had; a value outside the choices names the key."""
    from avfusion import api
    from avfusion.configs import compose_config, configured
    from avfusion.errors import ConfigError
    from avfusion.frames.cache import settings_key
    from conftest import tiny_overrides

    cfg = compose_config("train", [*tiny_overrides(tiny_root), "frontend.store_dtype=float16", "fusion=audio_only",
                                   "trainer.max_epochs=1", "evaluation.noises=[]", "decoding=framewise"])
    report = api.train(cfg, tiny_root / "float16_frames")
    corpus, _ = api.load_corpus(cfg)
    frontend_config = {k: v for k, v in dict(cfg.frontend).items() if k != "audio" and k != "video"}
    scheme = get_scheme("phone")
    assert settings_key({**frontend_config, "store_dtype": None}, scheme, corpus) == \
        settings_key({k: v for k, v in frontend_config.items() if k != "store_dtype"}, scheme, corpus)
    assert settings_key(frontend_config, scheme, corpus) != settings_key({**frontend_config, "store_dtype": None}, scheme, corpus)
    half = sorted((tiny_root / "features").glob("frames-*/train/x_audio.npy"))
    assert any(np.load(p, mmap_mode="r").dtype == np.float16 for p in half)
    assert report["test"][0]["frame_error"] < 1.0
    with pytest.raises(ConfigError, match=r"frontend.store_dtype='int8': choose \('float16', 'float32'\) or null"):
        configured("frontend", "frontend.store_dtype=int8", config="prepare")
