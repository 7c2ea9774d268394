"""The built-in aligner against exact boundaries (issue #36), on the embedded corpus (its alignments exact by
construction: espeak-ng's phoneme events).

1. The default corpus's manifest with its alignments dropped (text kept), aligned by `avfusion-align`'s
   defaults: the share of phone boundaries within 10, 20 and 40 ms of the truth after each pass (0: the flat
   start), for train and test speakers, stop onsets apart.
2. The ceiling of the method: the same Viterbi realignment with a model trained on the exact alignments.
3. concat trained on the aligned train and dev splits against concat trained on the exact ones, seeds 0-2,
   both scored on the exact test split: what a user loses by having text only; and the lexicon control,
   aligned with each training word as the corpus's voice said it (CMUdict's pronunciations differ from
   espeak-ng's in 7% of phones), which separates the pronunciations' share of the loss from the boundaries'.

    python experiments/forced_alignment/run_study.py              # -> outputs/forced_alignment_study
    python experiments/forced_alignment/run_study.py --export experiments/forced_alignment/results

Resumable: finished passes and runs are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import time
from pathlib import Path

from hydra.utils import instantiate

from avfusion import api
from avfusion.aligner import passes
from avfusion.aligner.boundaries import boundary_accuracy, matched_phones
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


def per_pass(output: Path, manifest: Path, cfg, folder: str = "aligned") -> list[dict]:
    """Boundary accuracy of the flat start and of every pass of the alignment in `output / folder`, by split."""
    truth = {u.id: u for u in read_manifest(SOURCE)}
    corpus = read_manifest(manifest)
    scheme = get_scheme("phone_state")
    planned, _ = transcripts_of(list(corpus), scheme, Lexicon())
    frontend = instantiate(cfg.frontend, _convert_="all")
    store = frontend.store(frontend.audio)
    n_frames = {u.id: len(store.read(u)[0]) for u in corpus if u.id in planned}
    results = [passes.PassResult({u: flat_start(n_frames[u], p.transcript, 3) for u, p in planned.items()}, {}, {})]
    results += [passes.PassResult.load(output / folder / "passes" / str(k) / "alignment.json")
                for k in range(1, cfg.aligner.passes + 1)]
    rows = []
    for k, result in enumerate(results):
        for split in ("train", "test"):
            pairs = [(planned[u.id].tiers(scheme, result.segments[u.id], n_frames[u.id])["phones"],
                      utterance_labels(truth[u.id])) for u in corpus if u.split == split and u.id in result.segments]
            rows.append({"pass": k, "split": split, **boundary_accuracy(pairs)})
    return rows


@contextlib.contextmanager
def aligner_class(cls):
    """api.align builds its aligner from the name `passes.Aligner`: a variant of it for one alignment."""
    original = passes.Aligner
    passes.Aligner = cls
    try:
        yield
    finally:
        passes.Aligner = original


CLASSES = {"vowel": "aa ae ah aw ay eh er ey ih iy ow oy uh uw", "stop": "p t k b d g dx ch jh",
           "fricative": "f v th dh s z sh hh", "nasal": "m n ng", "liquid/glide": "l r w y"}
CLASS_OF = {p: name for name, phones in CLASSES.items() for p in phones.split()}


def by_boundary_class(output: Path) -> list[dict]:
    """The last pass's onset errors on test speakers by (previous phone's class > phone's class), matched
    phones only: where the boundaries that miss are."""
    import numpy as np

    truth = {u.id: u for u in read_manifest(SOURCE)}
    aligned = read_manifest(output / "aligned" / "manifest.jsonl")
    errors: dict[str, list[float]] = {}
    for u in aligned.split("test"):
        pairs, _ = matched_phones(read_textgrid(u.alignment, "phones"), utterance_labels(truth[u.id]))
        for hyp, ref, previous in pairs:
            if previous != "sil":
                kind = f"{CLASS_OF[previous]} > {CLASS_OF[ref.label]}"
                errors.setdefault(kind, []).append(1000 * (hyp.start - ref.start))
    return [{"boundary": kind, "n": len(e), "median_signed_ms": round(float(np.median(e)), 1),
             "within_20ms": round(float(np.mean(np.abs(e) <= 20)), 3)}
            for kind, e in sorted(errors.items(), key=lambda kv: -len(kv[1]))]


class FromTruth(passes.Aligner):
    """The passes with pass 1 trained on the exact alignments instead of the flat start; later passes train on
    their own alignments as usual."""

    def realigned(self, previous, pass_dir, k):
        self.exact = {u.id: utterance_labels(u) for u in read_manifest(SOURCE)} if k == 1 else None
        return super().realigned(previous, pass_dir, k)

    def phone_segments(self, utt, positions):
        return self.exact[utt.id] if self.exact else super().phone_segments(utt, positions)


def ceiling(output: Path, manifest: Path) -> list[dict]:
    """One realignment with a model trained on the exact alignments: what the Viterbi realignment reaches when
    its model is as good as the truth can make it."""
    with aligner_class(FromTruth):
        api.align(align_config(manifest, "aligner.passes=1", "resume=true"), output / "ceiling")
    return final_accuracy(output, "ceiling")


def final_accuracy(output: Path, folder: str) -> list[dict]:
    """Boundary accuracy of the TextGrids an alignment folder holds, by split."""
    truth = {u.id: u for u in read_manifest(SOURCE)}
    aligned = read_manifest(output / folder / "manifest.jsonl")
    return [{"split": split, **boundary_accuracy([(read_textgrid(u.alignment, "phones"), utterance_labels(truth[u.id]))
                                                  for u in aligned if u.split == split])}
            for split in ("train", "test")]


def corpus_lexicon(output: Path) -> Path:
    """Each training word as the corpus's voice said it most often (the phones whose middle falls in it, from
    the exact training alignments): the lexicon control, which separates what CMUdict's pronunciations cost
    from what the boundaries cost. Words it lacks fall back to CMUdict."""
    from collections import Counter

    said: dict[str, Counter] = {}
    for u in read_manifest(SOURCE).split("train"):
        phones = [p for p in utterance_labels(u) if p.label != "sil"]
        for w in read_textgrid(u.alignment, "words"):
            if w.label.strip() and w.label != "sil":
                inside = tuple(p.label for p in phones if w.start <= (p.start + p.end) / 2 < w.end)
                if inside:
                    said.setdefault(w.label.lower(), Counter())[inside] += 1
    path = output / "corpus.dict"
    path.write_text("".join(f"{w} {' '.join(c.most_common(1)[0][0])}\n" for w, c in sorted(said.items())))
    return path


def aligned_with_exact_test(output: Path, folder: str = "aligned") -> Path:
    """The aligned train and dev splits with the exact test split: both runs are scored against the truth."""
    aligned = read_manifest(output / folder / "manifest.jsonl")
    exact = {u.id: u for u in read_manifest(SOURCE)}
    utterances = [exact[u.id] if u.split == "test" else u for u in aligned]
    path = output / f"{folder}_train" / "manifest.jsonl"
    write_manifest(dataclasses.replace(aligned, utterances=utterances), path)
    return path


def trained(output: Path, name: str, data: list[str], seed: int) -> dict:
    cfg = compose_config("train", [*data, *TRAIN, f"seed={seed}", "training.resume=true"])
    report = api.train(cfg, output / f"concat_{name}-s{seed}", name=f"concat_{name}")
    test = {row["condition"]: row for row in report["all"][f"concat_{name}"]}
    return {"alignments": name, "seed": seed, **{f"per_{c}": round(r["per"], 4) for c, r in test.items()},
            "frame_error_clean": round(test["clean"]["frame_error"], 4)}


class Timed:
    """Each step's wall time appended to a file, summed over the sessions a resumed study took."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, step: str, work):
        started = time.time()
        result = work()
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\t{step}\t{time.time() - started:.0f}\n")
        return result

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for line in self.path.read_text().splitlines():
            _, step, seconds = line.split("\t")
            totals[step] = totals.get(step, 0) + int(seconds)
        return {**totals, "total": sum(totals.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/forced_alignment_study"))
    parser.add_argument("--export", type=Path, help="copy the results (JSON) here")
    args = parser.parse_args()
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    manifest = text_only(output)
    cfg = align_config(manifest, "resume=true")
    timed = Timed(output / "times.tsv")
    summary = timed("align", lambda: api.align(cfg, output / "aligned"))
    results = {"passes": per_pass(output, manifest, cfg), "align_summary": summary["passes"],
               "test_onsets_by_class": by_boundary_class(output),
               "unaligned": summary["unaligned"], "guessed": summary["guessed_pronunciations"]}
    results["ceiling"] = timed("ceiling", lambda: ceiling(output, manifest))
    lexicon = corpus_lexicon(output)
    timed("align_corpus_lexicon", lambda: api.align(align_config(manifest, "resume=true", f"aligner.lexicon={lexicon}"),
                                                     output / "aligned_lexicon"))
    results["corpus_lexicon"] = final_accuracy(output, "aligned_lexicon")
    runs = {"exact": ["data=synthetic"],
            "aligned": ["data=manifest", f"data.manifest={aligned_with_exact_test(output)}"],
            "aligned_lexicon": ["data=manifest", f"data.manifest={aligned_with_exact_test(output, 'aligned_lexicon')}"]}
    results["concat"] = timed("concat", lambda: [trained(output, name, data, seed) for seed in SEEDS
                                                 for name, data in runs.items()])
    results["wall_seconds"] = timed.totals()
    (output / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: results[k] for k in ("ceiling", "concat", "wall_seconds")}, indent=1))
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        shutil.copy(output / "results.json", args.export / "results.json")


if __name__ == "__main__":
    main()
