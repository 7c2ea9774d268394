"""Where concat trained on aligned alignments loses PER (experiments/forced_alignment/README.md): each seed-0 run's
clean test posteriors decoded by a hybrid decoder fitted (priors, durations, phone bigram) on the exact or on the
aligned training alignments, tuned on clean dev against the exact dev references, scored on the exact test split.

    python experiments/forced_alignment/decoder_swap.py     # after run_study.py
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate

from avfusion import api
from avfusion.configs import compose_config
from avfusion.corpus.manifest import read_manifest
from avfusion.frames.data import frames_of
from avfusion.frames.labelling import FrameLabeller, split_references
from avfusion.metrics.per import per

STUDY = Path("outputs/forced_alignment_study")


def main() -> None:
    exact = read_manifest("data/synthetic/default/manifest.jsonl")
    corpora = {"exact": exact, "aligned": read_manifest(STUDY / "aligned_train" / "manifest.jsonl")}
    decoding = instantiate(compose_config("train", []).decoding, _convert_="all")
    rows = []
    for model in ("exact", "aligned"):
        run = api.load_run(STUDY / f"concat_{model}-s0")
        labeller = FrameLabeller(run.scheme)
        data = {s: frames_of(run.frontend, exact.split(s), labeller) for s in ("dev", "test")}
        pieces = {s: [p[d.utterance(u)] for u in range(len(d.ids))]
                  for s, d in data.items() for p in [run.model.posteriors(d)]}
        references = {s: [r.units for r in split_references(labeller, exact.split(s), d)] for s, d in data.items()}
        for fitted_on, corpus in corpora.items():
            train = frames_of(run.frontend, corpus.split("train"), labeller)
            decoder = decoding.fit(run.scheme, corpus.split("train"), train)
            decoder.tune(pieces["dev"], references["dev"])
            edits = per(zip(references["test"], (decoder.scored_units(decoder.decode(p)) for p in pieces["test"])))
            rows.append({"model trained on": model, "decoder fitted on": fitted_on, "test_per": round(edits.rate, 4),
                         "S": edits.substitutions, "D": edits.deletions, "I": edits.insertions,
                         "tuned": vars(decoder.params)})
            print(json.dumps(rows[-1]), flush=True)
    (STUDY / "decoder_swap.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
