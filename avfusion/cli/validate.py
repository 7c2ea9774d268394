"""`avfusion-validate`: check every utterance of a corpus and list every problem, with its file.

    avfusion-validate                                   # the default synthetic corpus
    avfusion-validate data=tcd_timit data.root=/corpora/TCD-TIMIT
    avfusion-validate data=manifest data.manifest=/corpora/mine/manifest.jsonl max_duration_mismatch_s=0.2

Exit status 0 when the corpus is valid, 1 when it has problems (the summary lists them all).
"""

from __future__ import annotations

import sys

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors
from avfusion.config_check import check_config
from avfusion.corpus.labels import corpus_scheme
from avfusion.frames.stats import corpus_stats, format_stats
from avfusion.corpus.types import CorpusError
from avfusion.corpus.validation import validate_corpus
from avfusion.synth.generator import SyntheticCorpus


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="validate")
@user_errors("validate")
def main(cfg: DictConfig) -> None:
    check_config(cfg)
    source = instantiate(cfg.data, _convert_="all")
    if isinstance(source, SyntheticCorpus) and not source.is_built():  # validate what is there, build nothing
        what = "was built with other settings" if source.manifest_path.is_file() else "holds no synthetic corpus"
        raise CorpusError(f"{source.root} {what}: build it first (avfusion-synth data.root={source.root} and the same "
                          "data.* settings), or point data.root at it")
    corpus = source.load()
    report = validate_corpus(corpus, cfg.max_duration_mismatch_s, cfg.validation_jobs,
                             progress=sys.stderr.isatty())
    print(report.summary())
    if not report.ok:
        sys.exit(1)
    if cfg.stats:
        scheme = corpus_scheme("auto", corpus)  # one class per phone (or word)
        print(format_stats(corpus_stats(corpus, scheme), scheme))


if __name__ == "__main__":
    main()
