"""The paper study: every fusion head with its controls, several seeds, clean and in noise, then the
averages and their ensemble controls, then one report (dev and test tables, intervals, plots).

    python experiments/paper_study/run_study.py            # the full study -> outputs/paper_study
    python experiments/paper_study/run_study.py --quick    # the quick variant -> outputs/paper_study_quick

Each grid is an `avfusion-train -m` sweep into the same folder (resume=true: rerunning continues where a
killed study stopped); pre-trained encoders are shared through the stage cache, so each encoder is
pre-trained once per seed, architecture and training condition. Posterior combinations are
`avfusion-evaluate` runs with equal weights (so their dev numbers are not tuned on dev).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

SEEDS = [0, 1, 2]
HEADS = ("audio_only,video_only,feature_concat,concat,concat_deep,concat_joint,bilinear,bilinear_unshared,"
         "bilinear_frozen,bilinear_random,fisher,fisher_learnable,vlad,netvlad")
STUDIES = {
    "full": {
        "output": "outputs/paper_study",
        "common": ["data=synthetic_study", "evaluation.noises=[white,babble]", "evaluation.snrs_db=[20,10,5,0,-5]"],
        "grids": [
            [f"fusion={HEADS}"],
            ["fusion=audio_only,concat,bilinear", "train_noise=multi"],  # multi-condition training
            ["fusion=bilinear", "encoder=paper_600", "fusion.rank=100", "name=bilinear_600_f100"],  # the paper's
            ["fusion=bilinear", "encoder=paper_500x5", "name=bilinear_500x5_f200"],  # other two architectures
        ],
        "combinations": [
            ("average", ["concat", "bilinear"]),  # the paper's gain
            ("product", ["concat", "bilinear"]),
            ("average", ["concat", "concat@next"]),  # ensemble controls: two seeds, two heads
            ("average", ["concat", "concat_deep"]),
            ("average", ["bilinear", "bilinear_600_f100", "bilinear_500x5_f200"]),  # the three architectures
        ],
    },
    "quick": {
        "output": "outputs/paper_study_quick",
        "common": ["data=synthetic_study", "evaluation.noises=[white,babble]", "evaluation.snrs_db=[10,0]"],
        "grids": [
            ["fusion=audio_only,video_only,concat,concat_joint,bilinear"],
            ["fusion=audio_only", "train_noise=multi"],
        ],
        "combinations": [
            ("average", ["concat", "bilinear"]),
            ("product", ["concat", "bilinear"]),
            ("average", ["concat", "concat@next"]),
        ],
    },
}


def folder(fusion: str, seed: int, noise: str = "clean", encoder: str = "paper_500") -> str:
    """A run's folder name in the sweep (hydra.sweep.subdir below)."""
    return f"{fusion}-{encoder}-{noise}-s{seed}"


SUBDIR = "${hydra:runtime.choices.fusion}-${hydra:runtime.choices.encoder}-${hydra:runtime.choices.train_noise}-s${seed}"


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def run_dir(output: Path, name: str, seed: int) -> Path:
    """The folder of the run reported as `name` (a fusion config, or a name= given in a grid)."""
    aliases = {"bilinear_600_f100": folder("bilinear", seed, encoder="paper_600"),
               "bilinear_500x5_f200": folder("bilinear", seed, encoder="paper_500x5")}
    return output / aliases.get(name, folder(name, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick variant (under 30 minutes on 2 cores)")
    args = parser.parse_args()
    study = STUDIES["quick" if args.quick else "full"]
    output = Path(study["output"])
    started = time.time()
    seeds = "seed=" + ",".join(map(str, SEEDS))
    for grid in study["grids"]:
        run([sys.executable, "-m", "avfusion.cli.train", "-m", *study["common"], *grid, seeds, "resume=true",
             f"hydra.sweep.dir={output}", f"hydra.sweep.subdir={SUBDIR}"])
    for rule, members in study["combinations"]:
        for i, seed in enumerate(SEEDS):
            dirs = [run_dir(output, m.removesuffix("@next"), SEEDS[(i + 1) % len(SEEDS)] if m.endswith("@next") else seed)
                    for m in members]
            name = f"{rule}({'+'.join(m.replace('@next', ' next seed') for m in members)})"
            out = output / "combinations" / f"{rule}-{'-'.join(m.replace('@next', '_next') for m in members)}-s{seed}"
            if (out / "report.json").is_file():
                continue
            run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{','.join(map(str, dirs))}]",
                 "weights=equal", f"rule={rule}", f"name='{name}'", f"output_dir={out}",
                 *[o for o in study["common"] if o.startswith("evaluation.")]])
    run([sys.executable, "-m", "avfusion.cli.report", str(output), "--baseline", "audio_only", "--baseline", "concat"])
    print(f"study finished in {(time.time() - started) / 60:.1f} min ({output})")


if __name__ == "__main__":
    main()
