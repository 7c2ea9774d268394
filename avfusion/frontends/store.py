"""Per-utterance feature cache.

Layout: `<root>/<extractor name>-<hash of its config>/<utterance id>.<hash of the source file>.npy`
with a `.json` of metadata beside it. The source hash covers the file's resolved path, size and
modification time, so an edited or replaced recording is extracted again while an unchanged one
never is. Both files are written atomically (metadata first, the array last, so the array's
presence means the entry is complete); arrays are read memory-mapped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avfusion.errors import UserError
from avfusion.corpus.types import Utterance
from avfusion.utils.stamp import file_stamp
from avfusion.utils.atomic import atomic_path, remove_stale_temporaries, write_text_atomic
from avfusion.utils.progress import parallel_map

log = logging.getLogger(__name__)


class FeatureError(UserError):
    pass


def config_hash(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class BuildReport:
    extracted: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _extract_one(store: "FeatureStore", utt: Utterance) -> tuple[str, str | None]:
    """Worker: extract and write one entry; an error is returned, not raised, so others go on."""
    try:
        x, meta = store.extractor.extract(utt)
        store.write(utt, x, meta)
        return utt.id, None
    except Exception as err:  # noqa: BLE001 - reported per utterance by build()
        return utt.id, f"{type(err).__name__}: {err}"


class FeatureStore:
    def __init__(self, root: str | os.PathLike, extractor) -> None:
        self.extractor = extractor
        self.dir = Path(root) / f"{extractor.name}-{config_hash(extractor.config())}"

    def _paths(self, utt: Utterance) -> tuple[Path, Path]:
        stem = f"{utt.id}.{file_stamp(self.extractor.source(utt))}"
        return self.dir / f"{stem}.npy", self.dir / f"{stem}.json"

    def has(self, utt: Utterance) -> bool:
        try:
            return self._paths(utt)[0].is_file()
        except (OSError, ValueError):  # missing source: not cached, and extraction will say why
            return False

    def write(self, utt: Utterance, x: np.ndarray, meta: dict) -> None:
        array_path, meta_path = self._paths(utt)
        write_text_atomic(meta_path, json.dumps(meta))
        with atomic_path(array_path) as tmp:
            np.save(tmp, np.ascontiguousarray(x, dtype=self.extractor.dtype))

    def read(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        """Memory-mapped features and their metadata."""
        array_path, meta_path = self._paths(utt)
        if not array_path.is_file():
            raise FeatureError(f"{utt.id}: no cached {self.extractor.name} features (run avfusion-prepare)")
        return np.load(array_path, mmap_mode="r"), json.loads(meta_path.read_text())

    def build(self, utterances: list[Utterance], n_jobs: int = 1, progress: bool = True) -> BuildReport:
        """Extract what is not cached yet, in parallel; failures are collected with their reasons."""
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.dir)
        write_text_atomic(self.dir / "config.json", json.dumps(self.extractor.config(), indent=2))
        report = BuildReport()
        todo = []
        for utt in utterances:
            if self.has(utt):
                report.cached.append(utt.id)
            else:
                todo.append(utt)
        results = parallel_map(functools.partial(_extract_one, self), todo, n_jobs=n_jobs,
                               desc=f"extracting {self.extractor.name}", progress=progress)
        for utt_id, error in results:
            if error is None:
                report.extracted.append(utt_id)
            else:
                report.failed[utt_id] = error
        return report
