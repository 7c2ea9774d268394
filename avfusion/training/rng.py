"""Random-number state carried across a kill: what makes `resume=true` give an uninterrupted run's numbers.

A resumed stage continues from `last.ckpt`, which holds (through `RngStateCallback`) the global torch,
NumPy and Python generator states of the moment it was written; a finished stage loaded from `best.pt`
restores the states its fit ended with (`<stage>/rng.pt`), so whatever is drawn next (the next head's
initial weights) is what an uninterrupted run draws. Stored as tensors and plain numbers only, so
checkpoints still load with `weights_only=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import random

import numpy as np
import pytorch_lightning as pl
import torch


def rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))


class RngStateCallback(pl.Callback):
    """Saves the generators' states in every checkpoint and restores them when a fit resumes from one."""

    def state_dict(self) -> dict:
        return rng_state()

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict)


def derived_seed(seed: int, label: str) -> int:
    """A seed of its own for (seed, label): stable across processes and machines."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "little") >> 1


@contextlib.contextmanager
def seeded(seed: int, label: str):
    """Torch draws inside depend on (seed, label) alone, and the global generator is left as it was.

    Initial weights are drawn this way, per encoder and per softmax: the audio encoder (and its softmax)
    starts from the same weights in every run with this seed, whatever head it is built for, so an
    audio-only run is exactly the audio pre-training stage of a fusion run and a sweep shares it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, label))
        yield
