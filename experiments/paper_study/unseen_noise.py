"""The claims study's concat runs, clean-trained and multi-condition, in noise the multi-condition runs never heard.

    python experiments/paper_study/unseen_noise.py outputs/paper_study_claims      # then the gain per group:
    python experiments/noise_generalisation/gain.py outputs/paper_study_claims_unseen --split dev

The claims variant trains `concat` clean and with `train_noise=multi` (white, pink and babble of every pool
talker at -5..20 dB). Each seed's pair is evaluated again (`avfusion-evaluate`, into
`<sweep>_unseen/<run>`) in white at 0 dB (matched), music (a kind training never used) at 0 dB, and both at
-10 dB (below the training range). Decoders as each run tuned them for clean dev (`decoding.tune=clean`: the
run's own kept point, no tuning, so the two runs' PER differ by their posteriors and not by a setting tuned
on conditions only one of them was evaluated in); frame error does not depend on the decoder. Runs already
evaluated are skipped, so it can run again as more seeds finish. Unseen voices are left out: these runs
heard every babble talker (see experiments/noise_generalisation for babble_unseen).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

SETTINGS = ["evaluation.noises=[white,music]", "evaluation.snrs_db=[0,-10]", "decoding.tune=clean",
            "evaluation.report_dev=true"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="the claims study's sweep folder")
    args = parser.parse_args()
    out_root = args.sweep.parent / f"{args.sweep.name}_unseen"
    pairs = 0
    for multi in sorted(args.sweep.glob("concat-*-multi-s*")):
        clean = multi.with_name(multi.name.replace("-multi-", "-clean-"))
        if not ((multi / "report.json").is_file() and (clean / "report.json").is_file()):
            continue  # a seed still training
        pairs += 1
        for run in (clean, multi):
            out = out_root / run.name
            if (out / "report.json").is_file():
                continue
            print(f"evaluating {run} in unseen noise -> {out}", flush=True)
            subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]", *SETTINGS,
                            f"output_dir={out}"], check=True)
            shutil.copy(run / "config.yaml", out / "config.yaml")  # what gain.py reads the training noise from
    if not pairs:
        raise SystemExit(f"{args.sweep}: no seed with both concat runs (clean and multi) finished")
    print(f"{pairs} seed(s) in {out_root}; the gain per group: python experiments/noise_generalisation/gain.py "
          f"{out_root} --split dev")


if __name__ == "__main__":
    main()
