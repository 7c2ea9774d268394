"""Preparation in shards of utterances: array jobs on a cluster, then one finishing step.

    avfusion-prepare shards=8 shard=3       # extract shard 3 of 8 into the feature cache, then stop
    avfusion-prepare -m shards=8 'shard=range(8)' hydra/launcher=slurm        # all 8 as SLURM jobs
    avfusion-prepare shards=8               # finish: fit the front-end on train, write the frame matrices

A shard is a fixed part of the corpus: its utterances in (speaker, id) order cut into `shards` contiguous
parts of near-equal size, the same on every machine and in every job, so most speakers fall in one shard.
The feature cache is the record of what is done: it keeps each utterance's features as soon as they are
extracted, written atomically (`FeatureStore`), so a killed shard leaves nothing half-written and runs
again from where it stopped, a finished shard finds everything cached and does nothing, and a failed
utterance stops its shard with the utterance named while the others keep their features. The finishing
step extracts nothing: it names the shards that still have utterances without features and stops.

With `frontend.fit_batch_utterances` set (the front-end fitted from sufficient statistics), each shard's job also
gathers the statistics of its training utterances (`FrontEnd.gather`: the first fitted step of each modality, e.g.
the LDA's per-class moments) into `<cache_dir>/statistics/<key>.npz`, keyed by the front-end settings, the fit
labels and the shard's utterances as they are; the finishing step adds them up in shard order and fits from the
sum (gathering itself any shard's that is missing) instead of reading every training frame again.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from avfusion.corpus.labels import corpus_scheme
from avfusion.corpus.types import Corpus, Utterance
from avfusion.errors import UserError
from avfusion.frames.cache import fit_labeller, settings_key
from avfusion.frames.labelling import Alignments
from avfusion.frontends.statistics import from_arrays
from avfusion.frontends.store import FeatureStore
from avfusion.utils.atomic import atomic_path

log = logging.getLogger(__name__)


def check_shard_settings(shards: int | None, shard: int | None) -> None:
    """`shard` names one of `shards`: refused before any work otherwise."""
    if shard is not None and shards is None:
        raise UserError(f"shard={shard} needs shards=<how many shards the corpus is cut into>")
    if shard is not None and not 0 <= shard < shards:
        raise UserError(f"shard={shard}: must be 0 to {shards - 1} (shards={shards})")


def shard_parts(utterances: list[Utterance], shards: int) -> list[list[Utterance]]:
    """Every shard's utterances, shard 0 first (one sort)."""
    ordered = sorted(utterances, key=lambda u: (u.speaker, u.id))
    return [ordered[len(ordered) * k // shards:len(ordered) * (k + 1) // shards] for k in range(shards)]


def shard_utterances(utterances: list[Utterance], shards: int, shard: int) -> list[Utterance]:
    """The utterances of shard `shard` (0-based) of `shards`."""
    check_shard_settings(shards, shard)
    return shard_parts(utterances, shards)[shard]


def unfinished_shards(frontend, parts: list[list[Utterance]]) -> dict[int, int]:
    """Shard -> how many of its utterances (`parts`: each shard's) lack cached features of some modality or
    stream (none: all done)."""
    stores = [FeatureStore(frontend.cache_dir, extractor) for _, extractor in frontend.extracted.values()]
    left = {}
    for shard, part in enumerate(parts):
        missing = sum(1 for u in part if not all(s.has(u) for s in stores))
        if missing:
            left[shard] = missing
    return left


def require_finished(frontend, parts: list[list[Utterance]]) -> None:
    """Refuse to finish while a shard (`parts`: each shard's utterances) has utterances without features,
    naming the shards and how to run them."""
    shards = len(parts)
    left = unfinished_shards(frontend, parts)
    if left:
        listed = ", ".join(f"{s} ({n} utterances)" for s, n in left.items())
        raise UserError(f"shards={shards}: {len(left)} shard(s) not extracted yet: {listed}; run them first "
                        f"(avfusion-prepare -m shards={shards} shard={','.join(map(str, left))}), then this again")


# front-end settings that change how the frames are kept or how many utterances are read at once, not the statistics
NOT_IN_STATISTICS = ("fit_batch_utterances", "store_dtype")


def statistics_path(frontend, frontend_config: dict, corpus: Corpus, part: list[Utterance]) -> Path:
    """Where the statistics of shard `part`'s training utterances are kept."""
    train = [u for u in part if u.split == "train"]
    settings = {k: v for k, v in frontend_config.items() if k not in NOT_IN_STATISTICS}
    key = settings_key(settings, corpus_scheme(frontend.fit_labels, corpus), train)
    return Path(frontend.cache_dir) / "statistics" / f"{key}.npz"


def shard_statistics(frontend, frontend_config: dict, corpus: Corpus, part: list[Utterance],
                     alignments: Alignments | None = None) -> dict[str, object]:
    """`FrontEnd.gather` over shard `part`'s training utterances: read when kept, else gathered and kept (atomically);
    {} for a front-end fitted at once (`fit_batch_utterances` null), which fits from the frames themselves."""
    if not frontend.fit_batch_utterances:
        return {}
    path = statistics_path(frontend, frontend_config, corpus, part)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as saved:
                arrays = dict(saved)
            names = {k.split(".", 1)[0] for k in arrays}
            return {name: from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{name}.")})
                    for name in names}
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as e:  # written atomically: only a damaged or foreign file lands here
            log.warning("%s: unreadable shard statistics (%s); gathering them again", path, e)
    train = [u for u in part if u.split == "train"]
    gathered = frontend.gather(train, fit_labeller(frontend, corpus, alignments).labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{f"{name}.{k}": v for name, stats in gathered.items() for k, v in stats.arrays().items()})
    return gathered


def merged_statistics(frontend, frontend_config: dict, corpus: Corpus, parts: list[list[Utterance]],
                      alignments: Alignments | None = None) -> dict[str, object]:
    """Every shard's statistics (`shard_statistics`, `parts`: each shard's utterances) added up in shard order: what
    `FrontEnd.fit` takes as `gathered` for the whole training split."""
    total: dict[str, object] = {}
    for part in parts:
        for name, stats in shard_statistics(frontend, frontend_config, corpus, part, alignments).items():
            if name in total:
                total[name] += stats  # in place: memory of one class's moments at a time
            else:
                total[name] = stats
    return total
