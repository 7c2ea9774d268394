"""Feature extraction in shards of utterances: array jobs on a cluster, then one finishing step.

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
"""

from __future__ import annotations

from avfusion.corpus.types import Utterance
from avfusion.errors import UserError
from avfusion.frontends.store import FeatureStore


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
