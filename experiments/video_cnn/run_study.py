"""The CNN visual front-end against DCT+LDA: video-only, concat and bilinear with `experiment=video_cnn`, 3 seeds,
under the quick paper study's settings (default corpus, white and babble at 10 and 0 dB, its decoder grid), next to
the quick study's DCT+LDA runs of the same seeds, then one report with paired differences.

    python experiments/paper_study/run_study.py --quick      # the DCT+LDA runs (if not there yet)
    python experiments/video_cnn/run_study.py               # -> outputs/video_cnn_study

The CNN runs are named cnn_<fusion>; the DCT runs' reports are copied in from the quick study's folder, so the
report pairs each CNN model with its DCT counterpart on the same test utterances and seeds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "paper_study"))
from run_study import STUDIES, folder, run  # noqa: E402  the quick study's settings, run folders and runner

FUSIONS = ("video_only", "concat", "bilinear")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=Path("outputs/video_cnn_study"))
    parser.add_argument("--dct-runs", type=Path, default=Path(STUDIES["quick"]["output"]),
                        help="the quick paper study's folder, holding the DCT+LDA runs")
    args = parser.parse_args()
    missing = [folder(f, s) for f in FUSIONS for s in args.seeds
               if not (args.dct_runs / folder(f, s) / "report.json").is_file()]
    if missing:
        sys.exit(f"{args.dct_runs}: no DCT+LDA runs {missing[:3]}...: run experiments/paper_study/run_study.py "
                 "--quick first, or give --dct-runs")
    started = time.time()
    seeds = "seed=" + ",".join(map(str, args.seeds))
    for fusion in FUSIONS:  # video_only first: its training is the others' video pre-training (stage cache)
        run([sys.executable, "-m", "avfusion.cli.train", "-m", *STUDIES["quick"]["common"], "experiment=video_cnn",
             f"fusion={fusion}", f"name=cnn_{fusion}", seeds, "training.resume=true", f"hydra.sweep.dir={args.output}",
             "hydra.sweep.subdir=cnn_${hydra:runtime.choices.fusion}-s${seed}"])
    for fusion in FUSIONS:  # the DCT runs' reports (report-finding does not follow links)
        for seed in args.seeds:
            copy = args.output / "dct" / folder(fusion, seed)
            copy.mkdir(parents=True, exist_ok=True)
            for name in ("report.json", "report.md"):
                shutil.copyfile(args.dct_runs / folder(fusion, seed) / name, copy / name)
    print(f"trained in {(time.time() - started) / 60:.1f} min", flush=True)
    run([sys.executable, "-m", "avfusion.cli.report", str(args.output),
         *[a for f in FUSIONS for a in ("--baseline", f)]])


if __name__ == "__main__":
    main()
