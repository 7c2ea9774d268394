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


def shard_utterances(utterances: list[Utterance], shards: int, shard: int) -> list[Utterance]:
    """The utterances of shard `shard` (0-based) of `shards`."""
    check_shard_settings(shards, shard)
    ordered = sorted(utterances, key=lambda u: (u.speaker, u.id))
    lo, hi = len(ordered) * shard // shards, len(ordered) * (shard + 1) // shards
    return ordered[lo:hi]


def unfinished_shards(frontend, utterances: list[Utterance], shards: int) -> dict[int, int]:
    """Shard -> how many of its utterances lack cached features of some modality or stream (none: all done)."""
    stores = [FeatureStore(frontend.cache_dir, extractor) for _, extractor in frontend.extracted.values()]
    left = {}
    for shard in range(shards):
        missing = sum(1 for u in shard_utterances(utterances, shards, shard) if not all(s.has(u) for s in stores))
        if missing:
            left[shard] = missing
    return left


def require_finished(frontend, utterances: list[Utterance], shards: int) -> None:
    """Refuse to finish while a shard has utterances without features, naming the shards and how to run them."""
    left = unfinished_shards(frontend, utterances, shards)
    if left:
        listed = ", ".join(f"{s} ({n} utterances)" for s, n in left.items())
        raise UserError(f"shards={shards}: {len(left)} shard(s) not extracted yet: {listed}; run them first "
                        f"(avfusion-prepare -m shards={shards} shard={','.join(map(str, left))}), then this again")
