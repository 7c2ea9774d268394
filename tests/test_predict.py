"""avfusion-predict / api.predict: a trained run on one recording, as the evaluation path sees it."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from avfusion import api
from avfusion.configs import compose_config, configured
from avfusion.corpus.alignments import normalise_phones, read_alignment, read_kaldi_ctm
from avfusion.corpus.labels import get_scheme
from avfusion.decoding.framewise import FramewiseDecoder
from avfusion.errors import UserError
from avfusion.frames.clock import num_frames
from avfusion.frames.data import frames_of
from avfusion.frames.labelling import FrameLabeller, frame_segments
from avfusion.frontends.cmvn import Cmvn
from avfusion.frontends.context import Splice
from avfusion.frontends.video import AtFrameRate, to_frame_rate
from avfusion.inference import chunks
from avfusion.inference.outputs import write_prediction
from avfusion.inference.posteriors import posteriors
from avfusion.inference.units import timed_units
from avfusion.media import load_audio, mux_audio
from avfusion.models.encoders import MlpEncoder
from avfusion.training.module import FusionModule
from conftest import tiny_overrides


def _train(root: Path, fusion: str) -> Path:
    run_dir = root / f"predict_{fusion}"
    if not (run_dir / "run.json").is_file():
        cfg = compose_config("train", [*tiny_overrides(root), f"fusion={fusion}", "trainer.max_epochs=1",
                                       "evaluation.noises=[]"])
        api.train(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def concat_run(tiny_root):
    return api.load_run(_train(tiny_root, "concat"))


@pytest.fixture(scope="module")
def test_utterance(concat_run):
    corpus, _ = api.load_corpus(concat_run.config)
    return max(corpus.split("test"), key=lambda u: Path(u.audio).stat().st_size)  # the longest


def test_predict_reproduces_the_evaluation_paths_posteriors_in_pieces_or_whole(concat_run, test_utterance):
    u = test_utterance
    expected = concat_run.model.posteriors(frames_of(concat_run.frontend, [u], FrameLabeller(concat_run.scheme)))
    whole = api.predict(concat_run, u.video, u.audio, chunk_seconds=None)
    pieces = api.predict(concat_run, u.video, u.audio, chunk_seconds=0.3)  # 30 frames: several pieces
    assert len(expected) > 3 * 30
    np.testing.assert_allclose(whole.posteriors, expected, atol=1e-5)
    np.testing.assert_allclose(pieces.posteriors, whole.posteriors, atol=1e-6)
    assert [x.label for x in pieces.units] == [x.label for x in whole.units]
    assert whole.decoder == "viterbi" and whole.modalities == ["audio", "video"]
    # the run's own decoder, as evaluation decodes
    assert [d.unit for d in concat_run.decoder.decode(expected)] == \
           [concat_run.scheme.units.index(x.label) for x in whole.units]


def test_the_audio_track_of_the_container_is_used(concat_run, test_utterance, tmp_path):
    u = test_utterance
    clip = mux_audio(Path(u.video), Path(u.audio), tmp_path / "clip.mkv")
    from_track = api.predict(concat_run, clip)
    separate = api.predict(concat_run, u.video, u.audio)
    assert from_track.audio == clip
    np.testing.assert_allclose(from_track.posteriors, separate.posteriors, atol=1e-6)


def test_textgrid_and_ctm_read_back_with_the_projects_readers(concat_run, test_utterance, tmp_path):
    u = test_utterance
    prediction = api.predict(concat_run, u.video, u.audio, u.alignment)
    paths = write_prediction(prediction, tmp_path, "clip", figure=False)
    segments = normalise_phones(read_alignment(paths["textgrid"], tier="phones"))
    assert [s.label for s in segments] == [x.label for x in prediction.units]
    # the written times label every frame as decoded (boundaries half a frame before the first frame)
    seg_of_frame, _ = frame_segments(segments, len(prediction.posteriors))
    decoded = np.concatenate([[i] * (x.end_frame - x.first_frame) for i, x in enumerate(prediction.units)])
    np.testing.assert_array_equal(seg_of_frame, decoded)
    ctm = read_kaldi_ctm(paths["ctm"])["clip"]
    assert [s.label for s in ctm] == [x.label for x in prediction.units]
    np.testing.assert_allclose([s.start for s in ctm], [x.start for x in prediction.units], atol=1e-3)
    reference_tier = read_alignment(paths["textgrid"], tier="reference")
    assert [s.label for s in reference_tier] == [s.label for s in prediction.reference]
    assert np.load(paths["posteriors"]).shape == (len(prediction.posteriors), concat_run.scheme.num_classes)
    np.testing.assert_array_equal(np.load(paths["posteriors"]), prediction.posteriors)  # copied from its file


def test_the_error_rate_against_the_alignment_is_the_evaluation_metric(concat_run, test_utterance):
    from avfusion.evaluation.evaluate import sequence_errors
    from avfusion.frames.labelling import split_references

    u = test_utterance
    prediction = api.predict(concat_run, u.video, u.audio, u.alignment)
    data = frames_of(concat_run.frontend, [u], FrameLabeller(concat_run.scheme))
    refs = split_references(FrameLabeller(concat_run.scheme), [u], data)
    expected = sequence_errors(prediction.posteriors, data, refs, concat_run.scheme, concat_run.decoder)
    assert prediction.edits == expected


def test_the_figure_is_written(concat_run, test_utterance, tmp_path):
    import matplotlib.image

    u = test_utterance
    prediction = api.predict(concat_run, u.video, u.audio, u.alignment)
    assert len(prediction.media.rois) == len(np.unique(prediction.media.roi_frames)) > 10
    path = write_prediction(prediction, tmp_path, "clip", figure_seconds=1.0)["figure"]
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 400 and image.shape[1] > 800
    assert image[..., :3].std() > 0.1  # drawn, not blank


def test_a_video_only_model_runs_on_a_silent_clip_and_an_audio_model_says_what_is_missing(tiny_root, concat_run,
                                                                                            test_utterance):
    u = test_utterance  # the synthetic mp4 has no audio track
    video_only = api.load_run(_train(tiny_root, "video_only"))
    prediction = api.predict(video_only, u.video)
    assert prediction.media.waveform is None and prediction.modalities == ["video"]
    # no audio to count frames on: the video's duration gives them (within a frame or two of the audio's)
    assert len(prediction.posteriors) == num_frames(prediction.media.video_frames / prediction.media.fps)
    assert abs(len(prediction.posteriors) - len(api.predict(video_only, u.video, u.audio).posteriors)) <= 2
    with pytest.raises(UserError, match="reads audio.*no audio stream"):
        api.predict(concat_run, u.video)
    with pytest.raises(UserError, match="reads video"):
        api.predict(concat_run, audio=u.audio)
    with pytest.raises(UserError, match="no such file"):
        api.predict(concat_run, "missing.mp4")


def test_the_cli_writes_every_file(concat_run, test_utterance, tmp_path, capsys):
    u = test_utterance
    cfg = compose_config("predict", [f"run_dir={concat_run.directory}", f"video={u.video}", f"audio={u.audio}",
                                     f"output_dir={tmp_path}"])
    prediction, paths = api.predict_files(cfg)
    stem = Path(u.video).stem
    assert {p.name for p in tmp_path.iterdir()} == {f"{stem}.{s}" for s in ("TextGrid", "ctm", "posteriors.npy",
                                                                            "json", "png")}
    assert set(paths) == {"textgrid", "ctm", "posteriors", "summary", "figure"}


def test_many_clips_in_one_call_write_what_one_clip_calls_write(concat_run, tmp_path, capsys):
    """clips= (a manifest here, a glob below): one model load, each clip's files in <output_dir>/<stem>/ equal to a
    one-clip call's, a summary table; a clip that fails is named while the others are still written."""
    corpus, _ = api.load_corpus(concat_run.config)
    clips = [mux_audio(Path(u.video), Path(u.audio), tmp_path / f"{u.id}.mkv") for u in corpus.split("test")[:2]]
    run = [f"run_dir={concat_run.directory}", "figure=false"]
    for clip in clips:
        api.predict_files(compose_config("predict", [*run, f"video={clip}", f"output_dir={tmp_path / 'one'}"]))
    manifest = tmp_path / "clips.txt"
    manifest.write_text(f"# two test clips\n{clips[0].name}\n\n{clips[1]}\n")  # relative to the manifest, absolute
    results, table = api.predict_clips(compose_config("predict", [*run, f"clips={manifest}",
                                                                  f"output_dir={tmp_path / 'many'}"]))
    assert [r.clip for r in results] == clips and all(r.error is None and r.units > 0 for r in results)
    for clip in clips:
        one, many = tmp_path / "one", tmp_path / "many" / clip.stem
        assert {p.name for p in many.iterdir()} == {f"{clip.stem}.{s}" for s in ("TextGrid", "ctm", "posteriors.npy", "json")}
        for suffix in ("TextGrid", "ctm", "json"):
            assert (many / f"{clip.stem}.{suffix}").read_text() == (one / f"{clip.stem}.{suffix}").read_text()
        np.testing.assert_array_equal(np.load(many / f"{clip.stem}.posteriors.npy"),
                                      np.load(one / f"{clip.stem}.posteriors.npy"))
    rows = (tmp_path / "many" / "summary.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["clip", "seconds", "units", "error_rate", "output"] and len(rows) == 3
    assert str(clips[1]) in table
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"not a video")
    cfg = compose_config("predict", [*run, f"clips=[{tmp_path}/*.mkv]", f"output_dir={tmp_path / 'glob'}"])
    with pytest.raises(UserError, match=r"1 of 3 clips failed \(.*broken.mkv\); the others' files are written"):
        api.predict_clips(cfg)
    rows = (tmp_path / "glob" / "summary.tsv").read_text().splitlines()
    assert rows[1].startswith(str(broken)) and "FAILED: " in rows[1] and "FAILED" not in rows[2] + rows[3]
    assert (tmp_path / "glob" / clips[0].stem / f"{clips[0].stem}.json").is_file()


@pytest.mark.parametrize("clips,message", [
    ("[]", "clips=\\[\\]: give the recordings"),
    ("[nowhere/*.mp4]", "the pattern 'nowhere/\\*.mp4' matches no file"),
    ("missing.txt", "clips=missing.txt: no such manifest file"),
    ("[a/x.mp4,b/x.mp4]", "no such file"),
])
def test_a_clip_list_naming_nothing_usable_is_refused_before_the_model_loads(clips, message, monkeypatch):
    monkeypatch.setattr(api, "load_run", lambda *a: pytest.fail("the run is loaded only for clips that exist"))
    with pytest.raises(UserError, match=message):
        api.predict_clips(compose_config("predict", ["run_dir=somewhere", f"clips={clips}"]))


def test_two_clips_of_one_name_are_refused(tmp_path):
    from avfusion.inference.clips import clip_list

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.mp4").write_bytes(b"")
    with pytest.raises(UserError, match=r"share the name 'x', so their output folders would be one"):
        clip_list([str(tmp_path / "a" / "x.mp4"), str(tmp_path / "b" / "x.mp4")])
    with pytest.raises(UserError, match="share the name 'x'"):
        clip_list([str(tmp_path / "*" / "x.mp4")])
    assert clip_list([str(tmp_path / "a" / "x.mp4")] * 2) == [tmp_path / "a" / "x.mp4"]  # listed twice: once


def test_a_predictions_per_frame_arrays_live_on_disk_until_it_is_dropped(concat_run, test_utterance, tmp_path):
    import gc

    u, scratch = test_utterance, tmp_path / "scratch"
    scratch.mkdir()
    prediction = api.predict(concat_run, u.video, u.audio, chunk_seconds=0.3, scratch_dir=scratch)
    assert isinstance(prediction.posteriors, np.memmap) and isinstance(prediction.media.waveform, np.memmap)
    assert not prediction.posteriors.flags.writeable
    (folder,) = scratch.iterdir()
    assert {"posteriors.bin", "waveform.bin", "audio_features.bin", "video_features.bin"} <= \
        {p.name for p in folder.iterdir()}
    np.testing.assert_array_equal(prediction.media.waveform, load_audio(u.audio, 16000))
    del prediction
    gc.collect()
    assert not list(scratch.iterdir())
    bad = tmp_path / "nan.wav"  # a failure half-way leaves nothing behind either
    samples = load_audio(u.audio, 16000)
    samples[-10] = np.nan
    sf.write(bad, samples, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match="nan.wav: 1 of .* not finite"):
        api.predict(concat_run, u.video, bad, scratch_dir=scratch)
    assert not list(scratch.iterdir())


def test_decoding_confidences_and_video_rows_a_block_at_a_time_equal_whole(concat_run, test_utterance, rng):
    u = test_utterance
    p = api.predict(concat_run, u.video, u.audio)
    framewise = FramewiseDecoder(concat_run.scheme, 2)
    stream = framewise.stream()
    for lo in range(0, len(p.posteriors), 17):
        stream.push(p.posteriors[lo:lo + 17])
    assert stream.finish() == framewise.decode(p.posteriors)
    whole = timed_units(concat_run.scheme, p.decoded, p.posteriors, p.duration)
    assert timed_units(concat_run.scheme, p.decoded, p.posteriors, p.duration, block=7) == pytest.approx(whole)
    assert whole == p.units and all(0 < x.confidence <= 1 for x in whole)
    unit_post = concat_run.scheme.unit_posteriors(np.asarray(p.posteriors))
    first = whole[1]  # by hand: the mean of its unit's posterior over its frames
    assert first.confidence == pytest.approx(unit_post[first.first_frame:first.end_frame,
                                                       concat_run.scheme.units.index(first.label)].mean())
    video = rng.standard_normal((57, 5)).astype(np.float32)  # 25 fps -> 100 frames/s, rows on demand
    view = AtFrameRate(video, 25.0, 230)
    whole_rate = to_frame_rate(video, 25.0, 230)
    np.testing.assert_array_equal(np.concatenate([view[lo:lo + 33] for lo in range(0, 230, 33)]), whole_rate)
    assert len(view) == 230 and view[5:5].shape == (0, 5)


# --- pieces with context: the same frames as one pass ---------------------------------------------------

def test_front_end_steps_in_pieces_equal_one_pass(concat_run, rng):
    for modality in concat_run.frontend.modalities.values():
        raw = rng.standard_normal((437, modality.steps[0].mean_.shape[0] if modality.steps[0].mean_ is not None
                                   else (24 if modality.name == "audio" else 100))).astype(np.float32)
        steps = chunks.for_clip(modality.steps, raw, 50)
        whole = chunks.apply_steps(modality.steps, raw)  # utterance CMVN over all of it
        np.testing.assert_allclose(chunks.transformed(steps, raw, 50), whole, atol=1e-5)
    assert chunks.steps_context([Cmvn("utterance", variance=False), Splice(4), Splice(3)]) == 7
    assert chunks.steps_context([Cmvn("utterance", variance=False), object()]) is None  # a step that does not say: one piece


def test_a_window_pooling_head_in_pieces_equals_one_pass(rng):
    scheme = get_scheme("phone")
    head = configured("fusion", "fusion=vlad", n_clusters=4, half_width=3, pca_dim=8)
    encoders = {m: MlpEncoder(10, [16], inputs=[m]) for m in ("audio", "video")}  # 2 dims spliced +-2
    head.build({"audio": 16, "video": 16}, scheme)
    head.initialise({m: rng.standard_normal((500, 16)).astype(np.float32) for m in ("audio", "video")})
    model = FusionModule(encoders, head).eval()
    assert model.frame_context == 3
    run = SimpleNamespace(model=model, frontend=SimpleNamespace(modalities={
        m: SimpleNamespace(steps=[Splice(2)]) for m in ("audio", "video")}))
    raw = {m: rng.standard_normal((300, 2)).astype(np.float32) for m in ("audio", "video")}
    whole = posteriors(run, raw, None)
    np.testing.assert_allclose(posteriors(run, raw, 0.4), whole, atol=1e-5)  # 40-frame pieces


def test_mfccs_of_a_long_waveform_in_blocks_equal_one_pass(rng):
    extractor = configured("frontend.audio.extractor")
    audio = (0.1 * rng.standard_normal(16000 * 3 + 77)).astype(np.float32)
    whole = extractor.from_waveform(audio)
    np.testing.assert_allclose(extractor.from_waveform(audio, block_frames=97), whole, atol=1e-4)
    assert len(whole) == 1 + len(audio) // 160
    # streamed as a decoder hands it over, in blocks that do not line up with the frames
    streamed = np.concatenate(list(extractor.stream((audio[i:i + 1234] for i in range(0, len(audio), 1234)), 97)))
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_a_reference_of_another_recording_is_refused_not_scored(concat_run):
    """An error rate against a reference longer than the clip is a wrong number: refused, as the corpus
    validator refuses an alignment that ends after its recording."""
    from avfusion.corpus.alignments import utterance_labels
    from avfusion.errors import UserError

    corpus, _ = api.load_corpus(concat_run.config)
    ends = {u: utterance_labels(u)[-1].end for u in corpus.split("test")}
    short, long = min(ends, key=ends.get), max(ends, key=ends.get)
    assert ends[long] - ends[short] > 0.3  # a reference that cannot be this clip's
    with pytest.raises(UserError, match=r"alignment=.*: ends at [\d.]+ s, after the clip \([\d.]+ s; tolerance"):
        api.predict(concat_run, short.video, short.audio, long.alignment)
    assert api.predict(concat_run, short.video, short.audio, short.alignment).edits is not None


def test_predict_help_lists_what_prediction_reads_not_the_training_groups():
    import subprocess
    import sys

    from avfusion.configs import CONFIG_DIR

    shown = subprocess.run([sys.executable, "-m", "avfusion.cli.predict", "--help"], capture_output=True, text=True,
                           check=True).stdout
    detectors = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / "detector").glob("*.yaml")))
    assert f"detector: {detectors}" in shown  # the help's list is the folder's (a new detector must be added)
    assert not any(f"\n{group}:" in shown for group in ("fusion", "encoder", "optimizer", "trainer", "data"))
    assert "clips: null" in shown and "run_dir: ???" in shown


def test_warnings_on_degenerate_output_fire_on_their_cases_and_stay_quiet_on_a_good_decoding(rng):
    """Speech with nothing decoded, units decoded in silence, a whole face frame taken as the mouth: each named
    with the clip; a decoding whose units sit on the speech at a speech-like rate gets none."""
    from avfusion.inference.checks import degenerate_output, voice_activity
    from avfusion.inference.recording import ClipMedia
    from avfusion.inference.units import TimedUnit

    rate = 16000
    wave = np.zeros(3 * rate)
    wave[rate // 2:5 * rate // 2] = rng.standard_normal(2 * rate) * np.sin(np.linspace(0, 40 * np.pi, 2 * rate)) ** 2
    active = voice_activity(wave, rate)
    assert len(active) == 300 and active[60:240].all() and not active[:45].any() and not active[260:].any()

    def prediction(units, box=96.0):
        timed = [TimedUnit(label, start, end, 0.9, int(start * 100), int(end * 100)) for label, start, end in units]
        media = ClipMedia(waveform=wave, sample_rate=rate, detector="precropped", mouth_box_px=box)
        return SimpleNamespace(media=media, units=timed, unit_kind="phones")

    on_speech = [("sil", 0.0, 0.5)] + [("ah", 0.5 + i / 10, 0.6 + i / 10) for i in range(20)] + [("sil", 2.5, 3.0)]
    assert degenerate_output(prediction(on_speech), "clip.mp4") == []
    (nothing,) = degenerate_output(prediction([("sil", 0.0, 3.0)]), "clip.mp4")
    assert nothing.startswith("clip.mp4: 2.") and "s of speech (voice activity) but 0 phones decoded" in nothing
    in_silence = [("sil", 0.0, 2.5)] + [("t", 2.5 + i / 20, 2.55 + i / 20) for i in range(10)]
    (where,) = degenerate_output(prediction(on_speech[:11] + in_silence[1:]), "clip.mp4")
    assert "of the decoded phones' time is where voice activity finds no speech" in where
    (face,) = degenerate_output(prediction(on_speech, box=288.0), "face.mp4")
    assert face.startswith("face.mp4: the whole frame (288 px square) is taken as the mouth") and "detector=mediapipe" in face


def test_the_figure_draws_a_row_for_each_unit_decoded_or_reaching_a_fifth_and_no_more_than_fit():
    from avfusion.inference.figure import shown_units

    names = [f"u{i}" for i in range(39)]
    post = np.zeros((50, 39))
    post[:, 3] = 0.9  # reaches 0.2
    post[:, 7] = 0.1  # decoded though faint
    post[:, 30] = 0.19  # neither: no row
    assert shown_units(post, names, ["u7", "u3"]) == [3, 7]
    post[:, :] = np.linspace(0.2, 0.6, 39)  # every unit reaches 0.2: the 24 highest, in the scheme's order
    assert shown_units(post, names, []) == list(range(15, 39))


def test_a_clip_far_less_certain_than_the_runs_dev_utterances_is_called_out_of_domain(concat_run):
    """The run keeps its clean dev posteriors' statistics (run.json); a clip whose posteriors are less certain
    than 99% of them is warned about, one as certain as them is not."""
    from avfusion.inference.checks import out_of_domain, posterior_statistics

    uniform, sure = np.full((10, 4), 0.25), np.eye(4)[np.arange(10) % 4]
    stats = posterior_statistics(np.concatenate([uniform, sure]), np.array([0, 10, 20]))
    assert stats["utterances"] == 2 and stats["entropy"][1] == pytest.approx(np.log(4) / 2, abs=1e-4)
    assert stats["confidence"][1] == pytest.approx((0.25 + 1) / 2, abs=1e-4)
    confident = posterior_statistics(np.concatenate([sure * 0.9 + 0.025] * 3), np.array([0, 10, 20, 30]))
    (warning,) = out_of_domain(SimpleNamespace(posteriors=uniform), confident, "clip.mp4")
    assert warning.startswith("clip.mp4: its posteriors are far less certain than on the run's dev utterances")
    assert out_of_domain(SimpleNamespace(posteriors=sure * 0.9 + 0.025), confident, "clip.mp4") == []
    assert out_of_domain(SimpleNamespace(posteriors=uniform), None, "clip.mp4") == []  # an older run folder
    saved = concat_run.dev_statistics  # made by api.train from the run's clean dev posteriors
    assert saved["utterances"] == len(api.load_corpus(concat_run.config)[0].split("dev"))
    assert saved["entropy"][0] <= saved["entropy"][1] <= saved["entropy"][2]


def test_audio_visual_agreement_by_hand_and_its_dev_threshold():
    """Two streams sure of the same alternating visemes agree log 2 above chance; in opposite phase they do
    not; the dev threshold sits where matched and mismatched utterances are told apart."""
    from avfusion.corpus.labels import get_scheme
    from avfusion.inference.agreement import agreement, agreement_statistics

    scheme = get_scheme("phone")
    viseme = scheme.groups["viseme"]
    p, b = scheme.classes.index("p"), scheme.classes.index("iy")  # a bilabial and a vowel: two visemes
    assert viseme[p] != viseme[b]
    sequence = np.eye(scheme.num_classes)[[p, b] * 20]
    assert agreement(sequence, sequence, scheme) == pytest.approx(np.log(2), abs=1e-5)
    assert agreement(sequence, sequence[::-1], scheme) < np.log(1e-5)  # every frame contradicts the other stream
    blurred = 0.5 * sequence + 0.5 / scheme.num_classes
    assert 0 < agreement(blurred, blurred, scheme) < np.log(2)

    class Stream:  # a stand-in model: given (N, C) posteriors whatever the frames
        def __init__(self, post):
            self.post = post

        def posteriors(self, data):
            return self.post

    offsets = np.arange(0, 40 * 9, 40)  # 8 utterances of 40 frames, each its own viseme pattern
    rng = np.random.default_rng(0)
    frames = np.concatenate([np.eye(scheme.num_classes)[rng.choice([p, b], 40)] for _ in range(8)])
    dev = SimpleNamespace(ids=[f"u{i}" for i in range(8)], offsets=offsets)
    stats = agreement_statistics({"audio": Stream(frames), "video": Stream(frames)}, dev, scheme)
    assert stats["utterances"] == 8 and stats["matched_median"] > 0.5 > stats["mismatched_median"]
    assert stats["false_alarms"] == 0 and stats["misses"] == 0
    assert stats["mismatched_median"] < stats["threshold"] <= stats["matched_median"]


def test_a_clip_whose_audio_is_another_recordings_is_warned_about(concat_run, test_utterance, tiny_root):
    """The run keeps its dev threshold (run.json); predict scores a clip with the run's two pre-trained streams
    (the same score as their posteriors computed directly) and warns below the threshold only."""
    from avfusion.inference.agreement import agreement, run_streams

    saved = concat_run.dev_statistics["av_agreement"]
    assert set(saved) == {"utterances", "threshold", "matched_median", "mismatched_median", "false_alarms", "misses"}
    u = test_utterance
    streams = run_streams(concat_run)
    data = frames_of(concat_run.frontend, [u], FrameLabeller(concat_run.scheme))
    score = agreement(streams["audio"].posteriors(data), streams["video"].posteriors(data), concat_run.scheme)
    for threshold, warned in ((score + 0.01, True), (score - 0.01, False)):
        run = dataclasses.replace(concat_run, dev_statistics={"av_agreement": {**saved, "threshold": threshold}})
        prediction = api.predict(run, u.video, u.audio, chunk_seconds=0.3)  # in pieces: the same score
        assert any("its audio and video agree less than the run's own dev utterances do" in w
                   for w in prediction.warnings) == warned
    assert run_streams(api.load_run(_train(tiny_root, "video_only"))) is None  # one stream: nothing to compare


def test_scoring_against_a_transcript_equals_scoring_against_its_phone_alignment(concat_run, test_utterance, tmp_path):
    """text= with a lexicon of the words as this utterance says them: the same edit counts as its alignment."""
    u = test_utterance
    words = read_alignment(u.alignment, tier="words")
    phones = normalise_phones(read_alignment(u.alignment, tier="phones"))
    spoken = [w for w in words if w.label.strip()]
    lines = {}
    for w in spoken:  # each word's phones: those whose middle falls inside it
        inside = [p.label for p in phones if w.start <= (p.start + p.end) / 2 < w.end and p.label != "sil"]
        lines.setdefault(w.label.lower(), inside)
    lexicon_file = tmp_path / "utterance.lex"
    lexicon_file.write_text("".join(f"{w} {' '.join(p)}\n" for w, p in lines.items()))
    text = " ".join(w.label for w in spoken)
    by_alignment = api.predict(concat_run, u.video, u.audio, u.alignment)
    from avfusion.corpus.lexicon import Lexicon

    by_text = api.predict(concat_run, u.video, u.audio, text=text, lexicon=Lexicon(lexicon_file))
    assert by_text.edits == by_alignment.edits and by_text.edits.reference_length > 10
    with pytest.raises(UserError, match="text= and alignment= both given"):
        api.predict(concat_run, u.video, u.audio, u.alignment, text=text)
    default = api.predict(concat_run, u.video, u.audio, text=text)  # CMUdict's pronunciations: close, not equal
    assert abs(default.edits.reference_length - by_text.edits.reference_length) <= 0.2 * by_text.edits.reference_length


def test_a_word_reference_or_a_transcript_file_scores_a_phone_model_against_the_words_phones(concat_run, test_utterance,
                                                                                            tmp_path):
    """GRID word timings (.align) and a transcript file (an LRS .txt's Text: line) give the edits of text=."""
    u = test_utterance
    words = [w for w in read_alignment(u.alignment, tier="words") if w.label.strip()]
    text = " ".join(w.label for w in words)
    grid = tmp_path / f"{Path(u.video).stem}.align"
    grid.write_text("".join(f"{round(w.start * 25000)} {round(w.end * 25000)} {w.label}\n" for w in words))
    by_text = api.predict(concat_run, u.video, u.audio, text=text)
    by_words = api.predict(concat_run, u.video, u.audio, grid)
    assert by_words.edits == by_text.edits and by_text.edits.reference_length > 10
    assert [s.label for s in by_words.reference if s.label != "sil"] == [w.label for w in words]  # drawn as words
    transcript = tmp_path / "clip.txt"
    transcript.write_text(f"Text:  {text.upper()}\nConf:  4\n")
    cfg = compose_config("predict", [f"run_dir={concat_run.directory}", f"video={u.video}", f"audio={u.audio}",
                                     f"transcript={transcript}", f"output_dir={tmp_path / 'out'}", "figure=false"])
    by_file, _ = api.predict_files(cfg)
    assert by_file.edits == by_text.edits
    with pytest.raises(UserError, match="text= and transcript= both given"):
        api.predict_files(compose_config("predict", [f"run_dir={concat_run.directory}", f"video={u.video}",
                                                     f"transcript={transcript}", "text=hello"]))
