"""The predict figure of a reliability-weighted run on a clip whose audio turns noisy half-way: a test utterance's
video with its own audio, white noise added from the middle on at -5 dB (against the utterance's speech power),
so the audio weight λ_t can be seen to fall where the noise starts.

    python experiments/stream_weights/noisy_half_figure.py outputs/stream_weights_study/stream_weighted-s0 \
        --out docs/figures/predict_stream_weighted_noisy_half.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from avfusion import api
from avfusion.inference.outputs import write_prediction
from avfusion.media import load_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png); the other outputs are not kept")
    parser.add_argument("--snr-db", type=float, default=-5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = api.load_run(args.run_dir)
    corpus, _ = api.load_corpus(run.config)
    utt = max(corpus.split("test"), key=lambda u: Path(u.audio).stat().st_size)  # the longest test utterance
    rate = run.frontend.audio.extractor.sample_rate
    speech = load_audio(utt.audio, rate)
    half = len(speech) // 2
    noise = np.random.default_rng(args.seed).standard_normal(len(speech) - half)
    level = np.sqrt(np.mean(speech ** 2)) * 10 ** (-args.snr_db / 20)
    noisy = speech.copy()
    noisy[half:] += (level * noise).astype(noisy.dtype)
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / f"{utt.id}.wav"
        sf.write(wav, noisy, rate)
        prediction = api.predict(run, utt.video, wav, utt.alignment)
        paths = write_prediction(prediction, scratch, utt.id)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths["figure"], args.out)
    w = prediction.stream_weights[:, 0]
    middle = len(w) // 2
    print(json.dumps({"utterance": utt.id, "figure": str(args.out), "snr_db": args.snr_db,
                      "audio_weight_first_half": round(float(w[:middle].mean()), 3),
                      "audio_weight_second_half": round(float(w[middle:].mean()), 3),
                      "error_rate": None if prediction.edits is None else round(prediction.edits.rate, 3)}))


if __name__ == "__main__":
    main()
