"""`avfusion-predict`: a finished run on a new recording: phones with times, posteriors and a figure.

    avfusion-predict run_dir=outputs/default_study/concat video=clip.mp4
    avfusion-predict run_dir=<run> video=clip.mp4 audio=clip.wav alignment=clip.TextGrid
    avfusion-predict run_dir=<video-only run> video=face.mp4 detector=mediapipe   # another mouth detector
    avfusion-predict run_dir=<run> 'clips=["clips/*.mp4"]' output_dir=outputs/clips  # many, one model load

Writes <output_dir>/<clip>.TextGrid, .ctm, .posteriors.npy, .json and .png (see avfusion.inference.outputs);
with clips=, each clip's into <output_dir>/<stem>/ and a table of all in <output_dir>/summary.tsv.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from avfusion import api
from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@user_errors("predict")
def main(cfg: DictConfig) -> None:
    if cfg.clips is not None:
        print(api.predict_clips(cfg)[1])
        return
    prediction, paths = api.predict_files(cfg)
    units = [u.label for u in prediction.units if u.label != "sil"]
    print(f"{len(units)} {prediction.unit_kind} ({prediction.decoder}, {'+'.join(prediction.modalities)}): {' '.join(units)}")
    if prediction.edits is not None:
        e = prediction.edits
        against = cfg.alignment or "the text's " + ("words" if prediction.scheme.unit == "word" else "phones")
        print(f"error rate against {against}: {e.rate:.3f} (S {e.substitutions}, D {e.deletions}, "
              f"I {e.insertions} of {e.reference_length})")
    for kind, path in paths.items():
        print(f"{kind:>10}: {path}")


if __name__ == "__main__":
    main()
