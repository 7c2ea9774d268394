"""Finished single-encoder stages shared across runs: an encoder is pre-trained once per sweep.

A stage that trains one encoder with its own softmax (the pre-training of every fusion head, and the
audio-only, video-only and feature-fusion runs themselves) gives the same weights in every run with the
same data, front-end, labels, encoder config, seed, optimiser, trainer and callbacks: its initial weights
are drawn per encoder (`avfusion.training.rng.seeded`), its data order from the seed. Its result is kept
under `<encoder_cache_dir>/<key>/` (`best.pt`, `rng.pt`: what the stage folder holds), keyed by those
settings and a hash of the stage's initial weights, and later runs copy it instead of training. Entries
are written atomically and marked complete last; deleting the folder only costs retraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch

from avfusion.utils.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

FILES = ("best.pt", "rng.pt")


class StageCache:
    def __init__(self, directory: str | Path, settings: dict) -> None:
        self.directory = Path(directory)
        self.settings = settings  # what shapes a stage besides its initial weights (JSON-able)

    def key(self, module: torch.nn.Module, batching: str) -> str:
        digest = hashlib.sha1(json.dumps({"settings": self.settings, "batching": batching}, sort_keys=True,
                                         default=str).encode())
        for name, tensor in sorted(module.state_dict().items()):  # the initial weights and buffers
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def fetch(self, key: str, stage_dir: Path) -> bool:
        """Copy a finished entry's files into `stage_dir`; False when there is none."""
        entry = self.directory / key
        if not (entry / "complete").is_file():
            return False
        for name in FILES:
            with atomic_path(stage_dir / name) as tmp:
                shutil.copyfile(entry / name, tmp)
        write_text_atomic(stage_dir / "from_cache.txt", f"{entry}\n")
        return True

    def store(self, key: str, stage_dir: Path) -> None:
        entry = self.directory / key
        for name in FILES:
            with atomic_path(entry / name) as tmp:
                shutil.copyfile(stage_dir / name, tmp)
        write_text_atomic(entry / "settings.json", json.dumps(self.settings, indent=1, sort_keys=True, default=str))
        write_text_atomic(entry / "complete", "")
        log.info("stage cached in %s", entry)
