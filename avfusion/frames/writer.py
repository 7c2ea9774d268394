"""A split's frame matrices written to disk: whole, a batch of utterances at a time, or in shards.

`frames_of` builds a whole split in memory (about twice its final matrices, with the transform's
temporaries); for a large corpus `save_in_batches` builds and saves `batch_utterances` utterances at a
time into `<directory>.parts/<k>/`, then joins the parts into the files `FrameData.save` writes, each
array's parts appended to its .npy one at a time (offsets rebased), and removes the parts. The files
are the same bytes as saving the whole split at once (tested).

With `frontend.frame_shard_utterances` the split is stored in shards of that many utterances, each its own
folder of matrices (`shard-00000/`, ...) as `FrameData.save` writes them, with an index (`shards.tsv`: folder,
utterances, frames) written last; `FrameData.load` reads the shards as one split (`RowParts`), the same rows in
the same order. No joining copy is made, and a shard's matrices can be read, copied or dropped on their own.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.frames.data import SHARD_INDEX, FrameData, frames_of
from avfusion.frames.labelling import FrameLabeller
from avfusion.utils.atomic import atomic_path

log = logging.getLogger(__name__)


def save_split(frontend, utterances: list[Utterance], labeller: FrameLabeller, directory: Path) -> None:
    """A split's frame matrices through the fitted front-end into `directory`: in shards of
    `frontend.frame_shard_utterances` utterances (or whole), each built `fit_batch_utterances` at a time (bounded
    memory) or whole in memory."""
    size = getattr(frontend, "frame_shard_utterances", None)
    if not size:
        save_part(frontend, utterances, labeller, directory)
        return
    directory = Path(directory)
    names = []
    for k, first in enumerate(range(0, len(utterances), size)):
        names.append(f"shard-{k:05d}")
        save_part(frontend, utterances[first:first + size], labeller, directory / names[-1])
        log.info("%s frames: shard %d of %d written", directory.name, k + 1, -(-len(utterances) // size))
    index_shards(directory, names)


def index_shards(directory: Path, names: list[str]) -> None:
    """The index of a split saved in shards (`directory/<name>/`, each a saved FrameData), in order: written last,
    atomically, so a split whose index is there has every shard."""
    lines = [f"{name}\t{len(np.load(directory / name / 'offsets.npy')) - 1}\t"
             f"{len(np.load(directory / name / 'labels.npy', mmap_mode='r'))}\n" for name in names]
    with atomic_path(directory / SHARD_INDEX) as tmp:
        tmp.write_text("".join(lines))


def save_part(frontend, utterances: list[Utterance], labeller: FrameLabeller, directory: Path) -> None:
    """`utterances`' frame matrices as one saved FrameData in `directory`."""
    if frontend.fit_batch_utterances:
        save_in_batches(frontend, utterances, labeller, directory, frontend.store_dtype, frontend.fit_batch_utterances)
    else:
        frames_of(frontend, utterances, labeller).save(directory, frontend.store_dtype)


def save_in_batches(frontend, utterances: list[Utterance], labeller: FrameLabeller, directory: str | Path,
                    dtype: str | None, batch_utterances: int) -> None:
    """`frames_of(frontend, utterances, labeller).save(directory, dtype)`, `batch_utterances` at a time."""
    save_built(lambda rows: frames_of(frontend, utterances[rows], labeller), len(utterances), directory, dtype,
               batch_utterances)


def save_built(build: Callable[[slice], FrameData], n_utterances: int, directory: str | Path, dtype: str | None,
               batch_utterances: int | None) -> None:
    """`build(slice(0, n_utterances)).save(directory, dtype)`, built and saved `batch_utterances` utterances at
    a time (None: at once), the parts then joined into the same files."""
    directory = Path(directory)
    if not batch_utterances or batch_utterances >= n_utterances:
        build(slice(0, n_utterances)).save(directory, dtype)
        return
    parts_root = directory.with_name(directory.name + ".parts")
    shutil.rmtree(parts_root, ignore_errors=True)  # a killed run's parts: built again
    parts = []
    starts = range(0, n_utterances, batch_utterances)
    for k, first in enumerate(starts):
        part = parts_root / str(k)
        build(slice(first, min(first + batch_utterances, n_utterances))).save(part, dtype)
        parts.append(part)
        log.info("%s frames: batch %d of %d (%d utterances each)", directory.name, k + 1, len(starts),
                 batch_utterances)
    join_saved(parts, directory)
    shutil.rmtree(parts_root)


def join_saved(parts: list[Path], directory: Path) -> None:
    """The saved FrameData folders `parts` (consecutive utterances) as one saved FrameData in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in sorted(p.name for p in parts[0].glob("*.npy")):
        if name == "offsets.npy" or name.startswith("voffsets_"):  # (U + 1,) positions: rebased, small
            arrays = [np.load(p / name) for p in parts]
            lengths = np.concatenate([np.diff(a) for a in arrays])
            joined = np.concatenate([[0], np.cumsum(lengths)]).astype(arrays[0].dtype)
            with atomic_path(directory / name) as tmp:
                np.save(tmp, joined)
            continue
        # shapes from the headers only; then np.save's header and each part's bytes appended, one part in memory
        # at a time (plain reads and writes: mapped pages of the parts or of the whole file would count
        # against the process while the maps live)
        headers = [np.load(p / name, mmap_mode="r") for p in parts]
        shape = (sum(len(a) for a in headers), *headers[0].shape[1:])
        header = {"descr": np.lib.format.dtype_to_descr(headers[0].dtype), "fortran_order": False, "shape": shape}
        del headers
        with atomic_path(directory / name) as tmp, open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for p in parts:
                np.load(p / name).tofile(f)
    with atomic_path(directory / "utterances.tsv") as tmp:
        tmp.write_text("".join((p / "utterances.tsv").read_text() for p in parts))
