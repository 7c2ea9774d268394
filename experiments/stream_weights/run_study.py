"""Reliability-aware fusion (issue #34): audio_only, video_only, concat and bilinear trained clean; the
reliability-weighted heads (stream_weighted, gated_concat) trained on noisy and video-degraded copies over the
same clean-trained encoders (`train_noise.head_only`); and the two controls from the uni-modal runs' posteriors,
fixed_weight (a weight per condition chosen on dev) and oracle_weight (chosen on the frames scored: an upper
bound, never a model). Every run reads `frontend=reliability`, so all share one set of prepared frames and
one stage cache. The quick paper study's settings otherwise (default corpus, 3 seeds, its 27-point decoder grid).

    python experiments/stream_weights/run_study.py                   # -> outputs/stream_weights_study
    python experiments/stream_weights/run_study.py --grids 1 3 &     # two processes, one core each
    python experiments/stream_weights/run_study.py --grids 2 4 5 6 7
    python experiments/stream_weights/run_study.py --controls        # fixed_weight, oracle_weight and the report
    python experiments/stream_weights/run_study.py --export experiments/stream_weights/results

Resumable: a finished run is not trained again, a killed one resumes from its last epoch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "paper_study"))
from run_study import RELIABILITY_TRAINING, STUDIES, export, grid_study_parser, run  # noqa: E402  the quick study's settings, its runner and exporter

CONDITIONS = ["evaluation.noises=[white,babble]", "evaluation.snrs_db=[10,0,-5]",
              "evaluation.video_degradations=[occlusion,pixel_noise]", "evaluation.video_severities=[1.0]",
              "evaluation.pairs=[[babble,0,occlusion,1.0]]"]
COMMON = [o for o in STUDIES["quick"]["common"] if not o.startswith("evaluation.")] + CONDITIONS + \
    ["frontend=reliability"]
# (name prefix, fusions, overrides): grids 1 and 2 first (they pre-train the encoders the others take from the
# stage cache); grids 5 and 7, modality dropout (0.3, 0.1): one concat head for audio-only, video-only and both;
# grid 6, concat's head trained on the reliability heads' copies without any reliability input
GRIDS = [
    ("", ["audio_only", "concat"], []),
    ("", ["video_only", "bilinear"], []),
    ("", ["stream_weighted"], RELIABILITY_TRAINING),
    ("", ["gated_concat"], RELIABILITY_TRAINING),
    ("dropout_", ["concat"], ["training.modality_dropout=0.3", "evaluation.missing_streams=[audio,video]"]),
    ("noisy_head_", ["concat"], RELIABILITY_TRAINING),  # the control for gated_concat: the same head, no gates
    ("dropout10_", ["concat"], ["training.modality_dropout=0.1", "evaluation.missing_streams=[audio,video]"]),
]
CONTROLS = {"fixed_weight": "per_condition", "oracle_weight": "oracle"}  # name -> avfusion-evaluate weights=
BASELINES = ["audio_only", "video_only", "concat", "fixed_weight"]


def trained(output: Path, fusion: str, seed: int) -> Path:
    return output / f"{fusion}-s{seed}"


def controls(output: Path, seeds: list[int], log: Path) -> None:
    """fixed_weight and oracle_weight from each seed's audio_only and video_only runs (a weighted product)."""
    for name, weights in CONTROLS.items():
        for seed in seeds:
            out = output / f"{name}-s{seed}"
            members = [trained(output, f, seed) for f in ("audio_only", "video_only")]
            if (out / "report.json").is_file() or not all((d / "report.json").is_file() for d in members):
                continue
            run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{','.join(map(str, members))}]",
                 "rule=product", f"weights={weights}", f"name={name}", f"output_dir={out}",
                 *[o for o in COMMON if o.startswith(("evaluation.", "decoding."))]], log)


def main() -> None:
    parser = grid_study_parser(__doc__, "outputs/stream_weights_study", [p + "+".join(g) for p, g, _ in GRIDS])
    parser.add_argument("--controls", action="store_true", help="only the controls and the report (runs trained)")
    args = parser.parse_args()
    if args.export:
        return export(args.output, args.export)
    started, log = time.time(), args.output / "timing.tsv"
    if not args.controls:
        seeds = "seed=" + ",".join(map(str, args.seeds))
        for prefix, fusions, overrides in [GRIDS[n - 1] for n in sorted(set(args.grids or range(1, len(GRIDS) + 1)))]:
            for fusion in fusions:
                run([sys.executable, "-m", "avfusion.cli.train", "-m", *COMMON, *overrides, f"fusion={fusion}",
                     f"name={prefix}{fusion}", seeds, "training.resume=true", f"hydra.sweep.dir={args.output}",
                     f"hydra.sweep.subdir={prefix}{fusion}-s" + "${seed}"], log)
        print(f"trained in {(time.time() - started) / 60:.1f} min", flush=True)
        if args.grids:
            return  # a part of the study: the controls and the report once every part is done
    controls(args.output, args.seeds, log)
    present = {json.loads(path.read_text())["name"] for path in args.output.rglob("report.json")}
    run([sys.executable, "-m", "avfusion.cli.report", str(args.output),
         *[f"--baseline={b}" for b in BASELINES if b in present]])


if __name__ == "__main__":
    main()
