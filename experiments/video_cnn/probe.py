"""Linear-probe viseme (and phone) accuracy of video representations on the dev speakers: the DCT+LDA features,
and the 200-dim last hidden layer of the video encoder of finished video-only runs (an MLP on DCT+LDA, the CNN on
the pixels). The probe and its settings are `avfusion-prepare`'s (logistic regression on 20,000 train frames).

    python experiments/video_cnn/probe.py outputs/paper_study_quick/video_only-paper_500-clean-s0 \\
        outputs/video_cnn_study/cnn_video_only-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avfusion import api
from avfusion.errors import UserError
from avfusion.frontends.probe import linear_probe
from avfusion.training.stages import hidden_frames


def probe(name: str, train, dev, features: str, scheme) -> None:
    levels = {scheme.name: lambda y: y, **{g: (lambda y, idx=idx: idx[y]) for g, idx in scheme.groups.items()}}
    cells = []
    for level, to_label in levels.items():
        r = linear_probe(train.features[features], to_label(train.labels), dev.features[features],
                         to_label(dev.labels))
        cells.append(f"{level} {r.accuracy:.3f} (chance {r.chance:.3f})")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished video-only run folders")
    args = parser.parse_args()
    for i, directory in enumerate(args.runs):
        try:
            run = api.load_run(directory)
        except UserError as e:  # not a finished run folder
            raise SystemExit(f"error: {e}")
        _, frames, scheme = api.prepare(run.config)
        if i == 0 and "video" in frames["train"].features:
            probe("DCT+LDA features (540)", frames["train"], frames["dev"], "video", scheme)
        encoders = {"video": run.model.encoders["video"]}
        train, dev = (hidden_frames(encoders, frames[s]) for s in ("train", "dev"))
        kind = type(encoders["video"]).__name__
        probe(f"{kind} embedding ({train.features['video'].shape[1]}), {directory.name}", train, dev, "video", scheme)


if __name__ == "__main__":
    main()
