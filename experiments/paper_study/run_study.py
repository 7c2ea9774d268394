"""The paper study: every fusion head with its controls, several seeds, clean and in noise, then the
averages and their ensemble controls, then one report (dev and test tables, intervals, plots).

    python experiments/paper_study/run_study.py            # the full study (data=synthetic_study) -> outputs/paper_study
    python experiments/paper_study/run_study.py --quick    # the quick variant (default corpus) -> outputs/paper_study_quick
    python experiments/paper_study/run_study.py --variant claims  # the claimed comparisons, 5 seeds, pooled tuning
    python experiments/paper_study/run_study.py --quick --seeds 0 1 --output outputs/mine data.root=...  # overrides
    python experiments/paper_study/run_study.py --variant third_control   # the third edition's parts (issue #40):
    python experiments/paper_study/run_study.py --variant third --grids 3 4   # third_control, third_cd_state, third

Each grid is an `avfusion-train -m` sweep into the same folder (training.resume=true: rerunning continues where a
killed study stopped); pre-trained encoders are shared through the stage cache, so each encoder is
pre-trained once per seed, architecture and training condition. Posterior combinations are
`avfusion-evaluate` runs with equal weights (so their dev numbers are not tuned on dev), or for fixed_weight /
oracle_weight with stream weights per condition (chosen on dev there, or on the frames scored as a bound),
each as soon as its runs are finished. Every step's wall time and peak memory go to <output>/timing.tsv.

A study longer than one sitting: run the same command again (finished runs are neither trained nor
evaluated again), and keep the finished reports with `--export experiments/paper_study/results/full`;
`avfusion-report experiments/paper_study/results/full` reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from avfusion.utils.atomic import write_text_atomic

SEEDS = [0, 1, 2]
# the frame heads first, so that a study stopped part way has the paper's comparisons for every seed
FRAME_HEADS = ("audio_only,video_only,concat,concat_deep,concat_joint,bilinear,bilinear_unshared,bilinear_frozen,"
               "bilinear_random,feature_concat")
POOLED_HEADS = "fisher,fisher_learnable,vlad,netvlad"
STUDIES = {
    "full": {
        "output": "outputs/paper_study",
        "common": ["data=synthetic_study", "evaluation.noises=[white,babble]", "evaluation.snrs_db=[20,10,5,0,-5]",
                   # 80 decoder points instead of the default 240: the dev tuning of 57 runs on 160 utterances
                   "decoding.acoustic_scales=[0.3,0.5,0.75,1.0,1.5]",
                   "decoding.lm_weights=[0.5,1.0,2.0,4.0]",
                   "decoding.insertion_penalties=[-4.0,-2.0,0.0,2.0]"],
        "grids": [
            [f"fusion={FRAME_HEADS}"],
            ["fusion=bilinear", "encoder=paper_600", "fusion.rank=100", "name=bilinear_600_f100"],  # the paper's
            ["fusion=bilinear", "encoder=paper_500x5", "name=bilinear_500x5_f200"],  # other two architectures
            [f"fusion={POOLED_HEADS}"],
            ["fusion=audio_only,concat,bilinear", "train_noise=multi"],  # multi-condition training
            # another concat head on the same pre-trained encoders: the control of average(concat+bilinear)
            ["fusion=concat", "training.head_seed=1000", "name=concat_head2"],
        ],
        "combinations": [
            ("average", ["concat", "bilinear"]),  # the paper's gain
            ("product", ["concat", "bilinear"]),
            ("average", ["concat", "concat_head2"]),  # its control: two heads on one pre-training
            ("average", ["concat", "concat@next"]),  # ensemble controls: two seeds, two heads
            ("average", ["concat", "concat_deep"]),
            ("average", ["bilinear", "bilinear_600_f100", "bilinear_500x5_f200"]),  # the three architectures
            ("average", ["bilinear", "bilinear@next", "bilinear@next2"]),  # its control: three runs of one
        ],
        "baselines": ["audio_only", "concat", "bilinear"],  # bilinear: sharing, architectures, their average
    },
    "claims": {  # what the full variant's README claims, again over 5 seeds, decoders tuned pooled (issue #33)
        "output": "outputs/paper_study_claims",
        "seeds": [0, 1, 2, 3, 4],
        "common": None,  # the full variant's (below): the same corpus, conditions and decoder grid
        "grids": [
            ["fusion=audio_only,video_only,concat,bilinear"],
            ["fusion=concat", "training.head_seed=1000", "name=concat_head2"],
            ["fusion=fisher"],  # one pooled head
            ["fusion=concat", "train_noise=multi"],
            ["fusion=bilinear", "encoder=paper_600", "fusion.rank=100", "name=bilinear_600_f100"],  # the paper's
            ["fusion=bilinear", "encoder=paper_500x5", "name=bilinear_500x5_f200"],  # other two architectures
        ],
        "combinations": [
            ("average", ["concat", "bilinear"]),
            ("average", ["concat", "concat_head2"]),  # its control: two heads on one pre-training
            ("average", ["concat", "concat@next"]),  # and two seeds
            ("average", ["bilinear", "bilinear_600_f100", "bilinear_500x5_f200"]),  # the three architectures
            ("average", ["bilinear", "bilinear@next", "bilinear@next2"]),  # its control: three runs of one
        ],
        "baselines": ["audio_only", "concat"],
    },
    "quick": {  # the default corpus (4 test speakers), 2 SNRs, a coarser decoder grid: under 30 minutes
        "output": "outputs/paper_study_quick",
        # early stopping 2 epochs past the best one instead of 3 (the fusion stages were mostly best at epoch 0-2)
        "common": ["data=synthetic", "training.patience=2", "evaluation.noises=[white,babble]", "evaluation.snrs_db=[10,0]",
                   "decoding.acoustic_scales=[0.3,0.5,1.0]", "decoding.lm_weights=[1.0,2.0,4.0]",
                   "decoding.insertion_penalties=[-4.0,0.0,4.0]"],
        "grids": [
            ["fusion=audio_only,video_only,concat,concat_joint,bilinear"],
            ["fusion=audio_only", "train_noise=multi"],
        ],
        "combinations": [  # product of posteriors: in the full variant
            ("average", ["concat", "bilinear"]),
            ("average", ["concat", "concat@next"]),
        ],
        "baselines": ["audio_only", "concat"],
    },
}

STUDIES["claims"]["common"] = [*STUDIES["full"]["common"], "decoding.tune=pooled"]
# the reliability-weighted heads learn where the clean-trained streams fail: one copy of each training (and dev)
# utterance beside it, its audio noisy (white, pink or babble at -5 to 20 dB) or, for 30% of copies, its video
# degraded at 0.3 to 1.0; the encoders stay clean-trained (issue #34, experiments/stream_weights)
RELIABILITY_TRAINING = ["train_noise=multi", "train_noise.head_only=true",
                        "train_noise.video_degradations=[occlusion,blur,pixel_noise,low_light,frozen_frames]",
                        "train_noise.video_share=0.3", "train_noise.video_severity=[0.3,1.0]"]
# The third edition (issue #40), in parts with their own sweep folders. The study corpus under the whole protocol:
# 5 seeds, decoders tuned pooled, every run reading frontend=reliability (one set of prepared frames for all);
# conditions: clean, white, babble and music (a kind multi-condition training never hears) at 20 to -10 dB, two
# video degradations on clean audio, babble 0 dB with occlusion
STUDIES["third"] = {
    "output": "outputs/paper_study_third",
    "seeds": [0, 1, 2, 3, 4],
    "common": ["data=synthetic_study", "frontend=reliability", "decoding.tune=pooled",
               "evaluation.noises=[white,babble,music]", "evaluation.snrs_db=[20,10,5,0,-5,-10]",
               "evaluation.video_degradations=[occlusion,pixel_noise]", "evaluation.video_severities=[1.0]",
               "evaluation.pairs=[[babble,0,occlusion,1.0]]",
               *(o for o in STUDIES["full"]["common"] if o.startswith("decoding."))],
    "grids": [
        ["fusion=audio_only,video_only,concat,bilinear,bilinear_unshared"],
        ["fusion=concat", "training.head_seed=1000", "name=concat_head2"],  # the average's control
        ["fusion=stream_weighted", "name=stream_weighted", *RELIABILITY_TRAINING],  # named as in experiments/stream_weights
        ["fusion=gated_concat", "name=gated_concat", *RELIABILITY_TRAINING],
        ["fusion=audio_only,concat,bilinear,bilinear_unshared", "train_noise=multi"],
        ["fusion=fisher"],  # one pooled head
        ["fusion=fisher", "train_noise=multi"],
        # the multi-condition average's control (a name given replaces the +multi a run is otherwise reported with)
        ["fusion=concat", "training.head_seed=1000", "name=concat_head2+multi", "train_noise=multi"],
        # the reliability heads with encoders pre-trained on the same noisy and degraded copies as their heads
        ["fusion=stream_weighted", "name=stream_weighted+multi", *RELIABILITY_TRAINING, "train_noise.head_only=false"],
        ["fusion=gated_concat", "name=gated_concat+multi", *RELIABILITY_TRAINING, "train_noise.head_only=false"],
    ],
    "combinations": [
        ("average", ["concat", "bilinear"]),
        ("average", ["concat", "concat_head2"]),  # its control: two heads on one pre-training
        ("fixed_weight", ["audio_only", "video_only"]),  # a weight per condition, chosen on dev there
        ("oracle_weight", ["audio_only", "video_only"]),  # chosen on the frames scored: a bound, never a model
        ("average", ["concat/multi", "bilinear/multi"]),
        ("average", ["concat/multi", "concat_head2+multi/multi"]),
        ("fixed_weight", ["audio_only/multi", "video_only"]),
        ("oracle_weight", ["audio_only/multi", "video_only"]),
    ],
    "baselines": ["audio_only", "concat"],
}
STUDIES["third_control"] = {  # does a head find a class-specific audio-visual interaction where the corpus has one?
    "output": "outputs/paper_study_third_control",
    "seeds": [0, 1, 2, 3, 4],
    # the quick variant's settings on the control corpus, its interaction-carried pairs scored (contrast_error)
    "common": ["data=synthetic_interaction", "evaluation.contrasts=[[ih,eh],[ah,ae]]", "decoding.tune=pooled",
               *(o for o in STUDIES["quick"]["common"] if not o.startswith("data="))],
    "grids": [["fusion=concat,concat_joint,bilinear,bilinear_unshared"]],
    "combinations": [],
    "baselines": ["concat"],
}
STUDIES["third_cd_state"] = {  # the paper's targets: frame error over tied context-dependent states
    "output": "outputs/paper_study_third_cd_state",
    "seeds": [0, 1, 2],
    "common": ["data=synthetic_study", "label_scheme=cd_state", "decoding.tune=pooled", "evaluation.noises=[white,babble]",
               "evaluation.snrs_db=[0]", *(o for o in STUDIES["full"]["common"] if o.startswith("decoding."))],
    "grids": [["fusion=audio_only,concat,bilinear"],
              ["fusion=concat", "training.head_seed=1000", "name=concat_head2"]],
    "combinations": [("average", ["concat", "bilinear"]), ("average", ["concat", "concat_head2"])],
    "baselines": ["audio_only", "concat"],
}

# combination -> avfusion-evaluate's rule and weights (fixed_weight, oracle_weight: the classic stream weighting of
# the uni-modal posteriors, a weight per condition chosen on dev there, or on the frames scored as a bound)
RULES = {"average": ("mean", "equal"), "product": ("product", "equal"), "fixed_weight": ("product", "per_condition"),
         "oracle_weight": ("product", "oracle")}
TIMING = "timing.tsv"  # in the sweep folder, one line per step: start, seconds, command, peak RSS in MB (since #40)


def folder(fusion: str, seed: int, noise: str = "clean", encoder: str = "paper_500") -> str:
    """A run's folder name in the sweep (hydra.sweep.subdir below)."""
    return f"{fusion}-{encoder}-{noise}-s{seed}"


SUBDIR = "${hydra:runtime.choices.fusion}-${hydra:runtime.choices.encoder}-${hydra:runtime.choices.train_noise}-s${seed}"


def run(cmd: list[str], log: Path | None = None) -> None:
    """Run a step; with `log`, append its wall time and the peak resident memory of its largest process (a study's
    time summed over the sessions it took, and the memory it needs; the peak counts this small process's own
    memory at the fork)."""
    print("+", " ".join(cmd), flush=True)
    started = time.time()
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)  # the step's own resource use (ru_maxrss: KiB on Linux)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}\t{time.time() - started:.0f}"
                    f"\t{' '.join(cmd[2:])}\t{usage.ru_maxrss / 1024:.0f}\n")


def run_dir(output: Path, name: str, seed: int) -> Path:
    """The folder of the run reported as `name` (a fusion config, or a name= given in a grid; `name/multi`: its
    multi-condition run)."""
    name, _, noise = name.partition("/")
    aliases = {"bilinear_600_f100": folder("bilinear", seed, encoder="paper_600"),
               "bilinear_500x5_f200": folder("bilinear", seed, encoder="paper_500x5")}
    return output / aliases.get(name, folder(name, seed, noise or "clean"))


def subdir(grid: list[str]) -> str:
    """A grid's run folders: by fusion, encoder, noise and seed, or by its name= where it names its runs
    (a head_seed control has the fusion and encoder of the run it controls)."""
    name = next((o.split("=", 1)[1] for o in grid if o.startswith("name=")), None)
    return SUBDIR if name is None or name in ("bilinear_600_f100", "bilinear_500x5_f200") else \
        f"{name}-paper_500-" + "${hydra:runtime.choices.train_noise}-s${seed}"


def member(m: str, seeds: list[int], i: int) -> tuple[str, int]:
    """A combination member `name`, `name@next` or `name@next<k>`: the run and the seed it is taken at."""
    name, _, ahead = m.partition("@next")
    return name, seeds[(i + (int(ahead or 1) if "@next" in m else 0)) % len(seeds)]


def combine(output: Path, combinations: list, seeds: list[int], evaluation: list[str], log: Path) -> None:
    """Every combination whose member runs are finished and which is not evaluated yet."""
    for rule, members in combinations:
        for i, seed in enumerate(seeds):
            taken = [member(m, seeds, i) for m in members]
            if len(set(taken)) < len(taken):
                continue  # a seed ensemble needs as many seeds as it has members
            dirs = [run_dir(output, m, s) for m, s in taken]
            shown = (m.split("/")[0] if m.split("/")[0].endswith("+multi") else
                     " ".join(reversed(m.replace("@next", " next seed ").strip().split("/"))) for m in members)
            name = f"{rule}({'+'.join(shown)})"  # e.g. average(concat+concat next seed), fixed_weight(multi audio_only+...)
            out = output / "combinations" / \
                f"{rule}-{'-'.join(m.replace('@next', '_next').replace('/', '_') for m in members)}-s{seed}"
            if (out / "report.json").is_file() or not all((d / "report.json").is_file() for d in dirs) \
                    or not claim(out):
                continue
            how, weights = RULES[rule]
            try:
                run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{','.join(map(str, dirs))}]",
                     f"weights={weights}", f"rule={how}", f"name='{name}'", f"output_dir={out}", *evaluation], log)
            finally:
                (out / CLAIM).unlink(missing_ok=True)


CLAIM = ".evaluating"  # in a combination's folder while a study process evaluates it: its process id


def claim(out: Path) -> bool:
    """Whether this process may evaluate the combination in `out`: not while another live study process does (two
    study processes side by side, e.g. one per grid, share the combinations); a killed process's claim lapses."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / CLAIM
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = marker.read_text().strip()
            except FileNotFoundError:
                continue  # released meanwhile
            if not owner.isdigit() or alive(int(owner)):
                return False  # being evaluated (or the claim is being written)
            marker.unlink(missing_ok=True)  # its process is gone: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return True


def grid_study_parser(description: str, output: str, grids: list[str]) -> argparse.ArgumentParser:
    """The arguments of a study of numbered grids of runs (the temporal-encoder and stream-weight studies): seeds,
    sweep folder, which grids, and exporting the finished reports."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=Path(output))
    parser.add_argument("--grids", type=int, nargs="+", default=None, metavar="N",
                        help=f"only these grids, numbered from 1 (default: all): {grids}")
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="only copy the finished runs' report.json files (and timing.tsv) to DIR")
    return parser


def export(output: Path, destination: Path) -> None:
    """Copy every finished report (compact JSON: a third of the size) and the timing log under `destination`,
    keeping the sweep's layout: what a study stopped part way keeps in git, and what `avfusion-report` reads."""
    for path in output.rglob("report.json"):
        write_text_atomic(destination / path.relative_to(output),  # makes the folders
                          json.dumps(json.loads(path.read_text()), separators=(",", ":")))
    if (output / TIMING).is_file():  # appended: the destination may hold the steps of earlier sessions' sweeps
        kept = (destination / TIMING).read_text().splitlines(keepends=True) if (destination / TIMING).is_file() else []
        known = set(kept)
        new = [line for line in (output / TIMING).read_text().splitlines(keepends=True) if line not in known]
        write_text_atomic(destination / TIMING, "".join(kept + new))
    print(f"reports copied to {destination}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(STUDIES), default="full",
                        help="full (default), quick (under 30 minutes on 2 cores), claims (the full variant's claimed "
                             "comparisons over 5 seeds, pooled decoder tuning), third_*: the third edition's parts")
    parser.add_argument("--quick", action="store_true", help="= --variant quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help=f"default: {SEEDS} (claims: 0 to 4)")
    parser.add_argument("--output", type=Path, default=None, help="the sweep folder (default: the study's)")
    parser.add_argument("--combine-only", action="store_true", help="the runs are trained: combinations and report")
    parser.add_argument("--grids", type=int, nargs="+", default=None, metavar="N",
                        help="only these grids of the study, numbered from 1 (default: all), e.g. to run a study's "
                             "last part in a workspace that lost the first parts' runs (their exported reports remain)")
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="only copy the finished runs' report.json files (and timing.tsv) to DIR")
    parser.add_argument("overrides", nargs="*", help="avfusion-train overrides added to every run (e.g. data=...)")
    args = parser.parse_args()
    variant = "quick" if args.quick else args.variant
    study = STUDIES[variant]
    args.seeds = args.seeds or study.get("seeds", SEEDS)
    output = args.output or Path(study["output"])
    grids = study["grids"]
    if args.grids:
        if not set(args.grids) <= set(range(1, len(grids) + 1)):
            parser.error(f"--grids: the {variant} study has grids 1 to {len(grids)}")
        grids = [grids[n - 1] for n in sorted(set(args.grids))]
    if args.export:
        return export(output, args.export)
    started, log = time.time(), output / TIMING
    seeds = "seed=" + ",".join(map(str, args.seeds))
    # what avfusion-evaluate needs to score a combination as its runs were scored
    evaluation = [o for o in study["common"] + args.overrides
                  if o.startswith(("evaluation.", "decoding.", "decoding=", "noise.", "+noise="))]
    for grid in [] if args.combine_only else grids:
        run([sys.executable, "-m", "avfusion.cli.train", "-m", *study["common"], *args.overrides, *grid, seeds,
             "training.resume=true", f"hydra.sweep.dir={output}", f"hydra.sweep.subdir={subdir(grid)}"], log)
        combine(output, study["combinations"], args.seeds, evaluation, log)  # as soon as their runs are there
    if args.combine_only:
        combine(output, study["combinations"], args.seeds, evaluation, log)
    present = {json.loads(path.read_text())["name"] for path in output.rglob("report.json")}
    baselines = [b for b in study["baselines"] if b in present]  # --grids may have left some out of this sweep
    run([sys.executable, "-m", "avfusion.cli.report", str(output), *(f"--baseline={b}" for b in baselines)])
    print(f"study finished in {(time.time() - started) / 60:.1f} min ({output}; every step's time: {log})")


if __name__ == "__main__":
    main()
