"""avfusion-predict on many clips: one call with `clips=` against one call per clip, in the same run.

    python benchmarks/predict_many_clips.py --run outputs/default_study/concat --clips 10

Makes `--clips` clips from the run corpus's test utterances (each mouth video muxed with its wav into one
.mkv, as a user's recording holds both), then times, as a user runs them from a shell: one
`avfusion-predict run_dir=<run> video=<clip>` process per clip, and one `avfusion-predict clips=[...]`
process for all. Prints both wall times, their ratio, the start-up share, and checks that every clip's
TextGrid, CTM, JSON and posteriors are the same both ways. Thread pools pinned (`pinning.py`, --threads=N).
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools (the calls inherit them)

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished run folder that reads audio and video")
    parser.add_argument("--clips", type=int, default=10)
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())
    from avfusion import api
    from avfusion.media import mux_audio

    run = api.load_run(args.run)
    corpus, _ = api.load_corpus(run.config)
    utterances = corpus.split("test")[:args.clips]
    predict = [str(Path(sys.executable).with_name("avfusion-predict")), f"run_dir={args.run}", "figure=true"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        clips = [mux_audio(Path(u.video), Path(u.audio), tmp / "clips" / f"{u.id}.mkv") for u in utterances]
        start = time.perf_counter()
        for clip in clips:
            subprocess.run([*predict, f"video={clip}", f"output_dir={tmp / 'one' / clip.stem}"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        separate = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*predict, f"clips=[{tmp / 'clips'}/*.mkv]", f"output_dir={tmp / 'many'}"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        together = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*predict[:1], "--help"], check=True, stdout=subprocess.DEVNULL)
        startup = time.perf_counter() - start
        for clip in clips:
            one, many = tmp / "one" / clip.stem, tmp / "many" / clip.stem
            for suffix in ("TextGrid", "ctm", "json"):
                assert (one / f"{clip.stem}.{suffix}").read_text() == (many / f"{clip.stem}.{suffix}").read_text(), clip
            assert np.array_equal(np.load(one / f"{clip.stem}.posteriors.npy"), np.load(many / f"{clip.stem}.posteriors.npy"))
    print(f"{len(clips)} clips of the test split (concat run, figures on): {len(clips)} calls {separate:.1f} s, "
          f"one clips= call {together:.1f} s ({separate / together:.1f}x faster); avfusion-predict --help alone "
          f"{startup:.1f} s; the same files both ways")


if __name__ == "__main__":
    main()
