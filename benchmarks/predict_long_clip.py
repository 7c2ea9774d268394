"""avfusion-predict on long recordings: peak memory and speed against a short one, in the same run.

    python benchmarks/predict_long_clip.py --run outputs/default_study/concat --minutes 1 10 30

Builds clips of the given lengths from the default corpus's test utterances (their mouth videos and
wavs concatenated: an mp4 and a wav), runs `api.predict` on each in a fresh process and prints, per
clip: wall time, real-time factor, peak RSS, the peak RSS growth per minute of recording against
the shortest clip (bounded memory: near 0), and the scratch files the prediction keeps on disk. Each
clip runs `--repeats` times and the smallest peak is kept: the same clip's peak varies by some 50 MB
from run to run (allocator and thread pools), more than a long clip adds. For
scale, it also prints what the clip's decoded video frames alone would take held in memory at once
(what reading the whole video first costs), which streaming avoids.
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, pathlib, sys, time
from avfusion import api
t = time.perf_counter()
p = api.predict(sys.argv[1], video=sys.argv[2], audio=sys.argv[3], chunk_seconds=float(sys.argv[4]),
                scratch_dir=sys.argv[5])
wall = time.perf_counter() - t
disk = sum(f.stat().st_size for f in pathlib.Path(sys.argv[5]).rglob("*") if f.is_file())
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a parent
# holding a long clip's samples would report the parent's size
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"wall_s": wall, "duration_s": p.duration, "frames": len(p.posteriors), "units": len(p.units),
                  "peak_rss_mb": peak / 1024, "scratch_mb": disk / 2**20}))
"""


def build_clip(run_dir: str, minutes: float, out: Path) -> tuple[Path, Path, int, tuple[int, ...]]:
    """An mp4 and a wav of about `minutes`, the test utterances one after another (repeated as needed)."""
    import cv2
    import soundfile as sf

    from avfusion import api
    from avfusion.media import iter_video, video_rate

    run = api.load_run(run_dir)
    corpus, _ = api.load_corpus(run.config)
    test = corpus.split("test")
    fps = video_rate(test[0].video)
    video_path, audio_path = out / f"clip_{minutes:g}min.mp4", out / f"clip_{minutes:g}min.wav"
    writer, shape, samples, n_video = None, None, [], 0
    target = minutes * 60 * 16000
    i = 0
    while sum(len(s) for s in samples) < target:
        u = test[i % len(test)]
        wav, rate = sf.read(u.audio, dtype="float32")
        frames = list(iter_video(u.video))
        keep = int(round(len(wav) / rate * fps))  # video and audio of each piece the same length
        frames = (frames + frames[-1:] * keep)[:keep]
        n = int(round(keep / fps * rate))
        samples.append(np.pad(wav, (0, max(0, n - len(wav))))[:n])
        for frame in frames:
            if writer is None:
                shape = frame.shape
                writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (shape[1], shape[0]))
            writer.write(frame)
        n_video += len(frames)
        i += 1
    writer.release()
    sf.write(audio_path, np.concatenate(samples), 16000)
    return video_path, audio_path, n_video, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="outputs/default_study/concat")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 30.0])
    parser.add_argument("--chunk-seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in sorted(args.minutes):
            video, audio, n_video, shape = build_clip(args.run, minutes, Path(tmp))
            runs = []
            for repeat in range(args.repeats):
                scratch = Path(tmp) / f"scratch_{minutes:g}_{repeat}"
                scratch.mkdir()
                out = subprocess.run([sys.executable, "-c", CHILD, args.run, str(video), str(audio),
                                      str(args.chunk_seconds), str(scratch)], capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"predict on the {minutes:g}-minute clip failed:\n{out.stderr[-3000:]}")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            row = min(runs, key=lambda r: r["peak_rss_mb"])
            row["wall_s"] = min(r["wall_s"] for r in runs)
            row["held_frames_mb"] = n_video * int(np.prod(shape)) / 2**20
            rows.append(row)
            video.unlink()
            audio.unlink()
    base = rows[0]
    print(f"run {args.run}, pieces of {args.chunk_seconds:g} s")
    print("| clip | frames | wall | x real time | peak RSS | RSS growth / min vs shortest | scratch on disk | "
          "decoded video held whole |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        minutes = r["duration_s"] / 60
        growth = (r["peak_rss_mb"] - base["peak_rss_mb"]) / max(minutes - base["duration_s"] / 60, 1e-9)
        print(f"| {minutes:.1f} min | {r['frames']} | {r['wall_s']:.1f} s | {r['duration_s'] / r['wall_s']:.1f}x | "
              f"{r['peak_rss_mb']:.0f} MB | {'-' if r is base else f'{growth:.2f} MB'} | {r['scratch_mb']:.0f} MB | "
              f"{r['held_frames_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
