"""Temporal encoders against the per-frame MLPs (issue #41): audio_only and concat with the MLP, TDNN and BLSTM
audio encoders (`encoder=tdnn`, `encoder=blstm`; the video MLP unchanged, so concat isolates the audio encoder),
and video_only with the mouth-pixel CNN's bidirectional GRU or LSTM (`experiment=video_cnn`), 3 seeds under the
quick paper study's settings (default corpus; clean, white and babble at 10 and 0 dB; its 27-point decoder grid).

    python experiments/temporal_encoders/run_study.py                  # -> outputs/temporal_encoders_study
    python experiments/temporal_encoders/run_study.py --export experiments/temporal_encoders/results

Resumable: a finished run is not trained again, a killed one resumes from its last epoch. Runs are named
<encoder>_<fusion> (the MLP runs by their fusion), so `avfusion-report` pairs each with its MLP baseline.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "paper_study"))
from run_study import STUDIES, export, grid_study_parser, run  # noqa: E402  the quick study's settings, its runner and exporter

# (name prefix, fusions, overrides): the audio encoders first (audio_only's pre-training is concat's, through
# the stage cache)
GRIDS = [
    ("", ["audio_only", "concat"], []),
    ("tdnn_", ["audio_only", "concat"], ["encoder=tdnn"]),
    ("blstm_", ["audio_only", "concat"], ["encoder=blstm"]),
    ("cnn_gru_", ["video_only"], ["experiment=video_cnn"]),
    ("cnn_lstm_", ["video_only"], ["experiment=video_cnn", "encoder.modules.video.temporal=lstm"]),
]
BASELINES = ["audio_only", "concat", "cnn_gru_video_only"]


def main() -> None:
    args = grid_study_parser(__doc__, "outputs/temporal_encoders_study", [p or "mlp" for p, _, _ in GRIDS]).parse_args()
    if args.export:
        return export(args.output, args.export)
    grids = [GRIDS[n - 1] for n in sorted(set(args.grids or range(1, len(GRIDS) + 1)))]
    started, log = time.time(), args.output / "timing.tsv"
    seeds = "seed=" + ",".join(map(str, args.seeds))
    for prefix, fusions, overrides in grids:
        for fusion in fusions:
            run([sys.executable, "-m", "avfusion.cli.train", "-m", *STUDIES["quick"]["common"], *overrides,
                 f"fusion={fusion}", *([f"name={prefix}{fusion}"] if prefix else []), seeds, "training.resume=true",
                 f"hydra.sweep.dir={args.output}", f"hydra.sweep.subdir={prefix}{fusion}-s" + "${seed}"], log)
    print(f"trained in {(time.time() - started) / 60:.1f} min", flush=True)
    present = {json.loads(path.read_text())["name"] for path in args.output.rglob("report.json")}
    baselines = [b for b in BASELINES if b in present]  # --grids may have left some out so far
    run([sys.executable, "-m", "avfusion.cli.report", str(args.output), *[f"--baseline={b}" for b in baselines]])


if __name__ == "__main__":
    main()
