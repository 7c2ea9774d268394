"""`avfusion-align`: phone alignments for a corpus whose utterances have text only (avfusion/aligner/).

    avfusion-align data=manifest data.manifest=/corpora/mine/manifest.jsonl hydra.run.dir=/corpora/mine/aligned
    avfusion-align ... aligner.passes=4 aligner.lexicon=my_words.dict
    avfusion-align ... resume=true                     # keep the passes a killed run finished
    avfusion-train data=manifest data.manifest=/corpora/mine/aligned/manifest.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avfusion import api
from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="align")
@user_errors("align")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = api.align(cfg, out_dir)
    for stats in summary["passes"]:
        print(json.dumps(stats))
    print(f"aligned {summary['aligned']} of {summary['utterances']} utterances into {out_dir}")
    for utt, why in list(summary["unaligned"].items())[:20]:
        print(f"  not aligned: {utt}: {why}")
    if summary["guessed_pronunciations"]:
        print(f"  {len(summary['guessed_pronunciations'])} word(s) pronounced by espeak-ng (check them in "
              f"{out_dir / 'alignment.json'})")
    print(f"train on it: avfusion-train data=manifest data.manifest={out_dir / summary['manifest']}")


if __name__ == "__main__":
    main()
