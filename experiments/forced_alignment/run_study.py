"""The built-in aligner against exact boundaries (issue #36), on the embedded corpus (its alignments exact by
construction: espeak-ng's phoneme events).

1. The default corpus's manifest with its alignments dropped (text kept), aligned by `avfusion-align`'s
   defaults: the share of phone boundaries within 10, 20 and 40 ms of the truth after each pass (0: the flat
   start), for train and test speakers, stop onsets apart.
2. The ceiling of the method: the same Viterbi realignment with a model trained on the exact alignments.
3. concat trained on the aligned train and dev splits against concat trained on the exact ones, seeds 0-2,
   both scored on the exact test split: what a user loses by having text only.

    python experiments/forced_alignment/run_study.py              # -> outputs/forced_alignment_study
    python experiments/forced_alignment/run_study.py --export experiments/forced_alignment/results

Resumable: finished passes and runs are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from hydra.utils import instantiate

from avfusion import api
from avfusion.aligner import passes
from avfusion.aligner.boundaries import boundary_accuracy
from avfusion.aligner.transcripts import transcripts_of
from avfusion.configs import compose_config, configured
from avfusion.corpus.alignments import read_textgrid, utterance_labels
from avfusion.corpus.labels import get_scheme
from avfusion.corpus.lexicon import Lexicon
from avfusion.corpus.manifest import read_manifest, write_manifest
from avfusion.decoding.align import flat_start

SOURCE = Path("data/synthetic/default/manifest.jsonl")
SEEDS = [0, 1, 2]
TRAIN = ["evaluation.noises=[white,babble]", "evaluation.snrs_db=[0]", "training.patience=2"]


def text_only(output: Path) -> Path:
    """The default corpus (built if absent) without its alignments, its babble pool beside it."""
    if not SOURCE.is_file():
        configured("data", config="synth").build()
    corpus = read_manifest(SOURCE)
    path = output / "text_only" / "manifest.jsonl"
    write_manifest(dataclasses.replace(corpus, utterances=[dataclasses.replace(u, alignment=None) for u in corpus]),
                   path)
    return path


def align_config(manifest: Path, *overrides: str):
    return compose_config("align", ["data=manifest", f"data.manifest={manifest}", *overrides])


def per_pass(output: Path, manifest: Path, cfg) -> list[dict]:
    """Boundary accuracy of the flat start and of every pass, by split."""
    truth = {u.id: u for u in read_manifest(SOURCE)}
    corpus = read_manifest(manifest)
    scheme = get_scheme("phone_state")
    planned, _ = transcripts_of(list(corpus), scheme, Lexicon())
    frontend = instantiate(cfg.frontend, _convert_="all")
    store = frontend.store(frontend.audio)
    n_frames = {u.id: len(store.read(u)[0]) for u in corpus if u.id in planned}
    results = [passes.PassResult({u: flat_start(n_frames[u], p.transcript, 3) for u, p in planned.items()}, {}, {})]
    results += [passes.PassResult.load(output / "aligned" / "passes" / str(k) / "alignment.json")
                for k in range(1, cfg.aligner.passes + 1)]
    rows = []
    for k, result in enumerate(results):
        for split in ("train", "test"):
            pairs = [(planned[u.id].tiers(scheme, result.segments[u.id], n_frames[u.id])["phones"],
                      utterance_labels(truth[u.id])) for u in corpus if u.split == split and u.id in result.segments]
            rows.append({"pass": k, "split": split, **boundary_accuracy(pairs)})
    return rows


def ceiling(output: Path, manifest: Path) -> list[dict]:
    """One realignment with a model trained on the exact alignments: what the Viterbi realignment reaches when
    its model is as good as the truth can make it."""
    truth = {u.id: u for u in read_manifest(SOURCE)}

    class ExactlyTrained(passes.Aligner):
        def phone_segments(self, utt, positions):
            return utterance_labels(truth[utt.id])

    original = passes.Aligner
    passes.Aligner = ExactlyTrained  # api.align builds its aligner from this name
    try:
        api.align(align_config(manifest, "aligner.passes=1"), output / "ceiling")
    finally:
        passes.Aligner = original
    aligned = read_manifest(output / "ceiling" / "manifest.jsonl")
    return [{"split": split, **boundary_accuracy([(read_textgrid(u.alignment, "phones"), utterance_labels(truth[u.id]))
                                                  for u in aligned if u.split == split])}
            for split in ("train", "test")]


def aligned_with_exact_test(output: Path) -> Path:
    """The aligned train and dev splits with the exact test split: both runs are scored against the truth."""
    aligned = read_manifest(output / "aligned" / "manifest.jsonl")
    exact = {u.id: u for u in read_manifest(SOURCE)}
    utterances = [exact[u.id] if u.split == "test" else u for u in aligned]
    path = output / "aligned_train" / "manifest.jsonl"
    write_manifest(dataclasses.replace(aligned, utterances=utterances), path)
    return path


def trained(output: Path, name: str, data: list[str], seed: int) -> dict:
    cfg = compose_config("train", [*data, *TRAIN, f"seed={seed}", "training.resume=true"])
    report = api.train(cfg, output / f"concat_{name}-s{seed}", name=f"concat_{name}")
    test = {row["condition"]: row for row in report["all"][f"concat_{name}"]}
    return {"alignments": name, "seed": seed, **{f"per_{c}": round(r["per"], 4) for c, r in test.items()},
            "frame_error_clean": round(test["clean"]["frame_error"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/forced_alignment_study"))
    parser.add_argument("--export", type=Path, help="copy the results (JSON) here")
    args = parser.parse_args()
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    manifest = text_only(output)
    cfg = align_config(manifest, "resume=true")
    times = {}
    t = time.time()
    summary = api.align(cfg, output / "aligned")
    times["align"] = round(time.time() - t)
    results = {"passes": per_pass(output, manifest, cfg), "align_summary": summary["passes"],
               "unaligned": summary["unaligned"], "guessed": summary["guessed_pronunciations"]}
    t = time.time()
    results["ceiling"] = ceiling(output, manifest)
    times["ceiling"] = round(time.time() - t)
    hybrid = aligned_with_exact_test(output)
    t = time.time()
    results["concat"] = [trained(output, name, data, seed) for seed in SEEDS
                         for name, data in (("exact", ["data=synthetic"]),
                                            ("aligned", ["data=manifest", f"data.manifest={hybrid}"]))]
    times["concat"] = round(time.time() - t)
    results["wall_seconds"] = {**times, "total": round(time.time() - started)}
    (output / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: results[k] for k in ("ceiling", "concat", "wall_seconds")}, indent=1))
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        shutil.copy(output / "results.json", args.export / "results.json")


if __name__ == "__main__":
    main()
