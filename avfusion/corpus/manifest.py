"""Manifest files: JSON lines, one utterance per line, paths relative to the manifest's folder.

A `babble.jsonl` beside a manifest, in the same format with split `babble`, lists recordings of talkers
who are in no split: the pool babble noise is mixed from (`avfusion.noise`). A corpus that declares which
of its babble talkers multi-condition training may hear and which are kept for testing gives them split
`babble_train` and `babble_test` instead (every record one of the two; without them the pool is halved by
talker name).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.types import LABEL_KINDS, Corpus, CorpusError, Utterance
from avfusion.utils.atomic import write_text_atomic

REQUIRED_FIELDS = ("id", "speaker", "split")
BABBLE = "babble"  # the split name of a babble pool's records
BABBLE_HALVES = ("babble_train", "babble_test")  # ... or its declared training and test talkers
PATH_FIELDS = ("audio", "video", "alignment")
# labels: phones (default) | words; alignment_format: the reader, when the suffix does not say (LRS3's .txt)
OPTIONAL_FIELDS = ("text", "alignment_key", "labels", "alignment_tier", "alignment_format")


def read_manifest(path: str | os.PathLike, name: str | None = None) -> Corpus:
    """Read a manifest (and the babble pool beside it, if any); every error names the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest {path} does not exist")
    babble_path = path.with_name(f"{BABBLE}.jsonl")
    babble = read_records(babble_path) if babble_path.is_file() else []
    splits = {u.split for u in babble}
    if not (splits <= {BABBLE} or splits <= set(BABBLE_HALVES)):
        wrong = sorted(splits - {BABBLE, *BABBLE_HALVES}) or [f"{BABBLE!r} mixed with {list(BABBLE_HALVES)}"]
        raise CorpusError(f"{babble_path}: records must all have split {BABBLE!r}, or each one of "
                          f"{list(BABBLE_HALVES)} (declared training and test talkers); found {wrong}")
    shared = {u.speaker for u in babble if u.split == BABBLE_HALVES[0]} & {
        u.speaker for u in babble if u.split == BABBLE_HALVES[1]}
    if shared:
        raise CorpusError(f"{babble_path}: talker(s) {sorted(shared)[:5]} declared in both {list(BABBLE_HALVES)}: "
                          "the halves must not share a talker")
    try:
        return Corpus(read_records(path), root=path.parent.resolve(), name=name or str(path), babble=babble)
    except CorpusError as err:
        raise CorpusError(f"{path}: {err}") from None


def read_records(path: Path) -> list[Utterance]:
    """The utterances of a JSON-lines file, paths resolved against its folder."""
    root = path.parent.resolve()
    utterances = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        missing = [f for f in REQUIRED_FIELDS if not record.get(f)]
        if missing:
            raise CorpusError(f"{path}:{lineno}: missing field(s) {missing}")
        paths = {f: Path(os.path.normpath(root / record[f])) if record.get(f) else None for f in PATH_FIELDS}
        optional = {f: str(record[f]) for f in OPTIONAL_FIELDS if record.get(f) is not None}
        if optional.get("labels", "phones") not in LABEL_KINDS:
            raise CorpusError(f"{path}:{lineno}: labels must be one of {LABEL_KINDS}, got {optional['labels']!r}")
        utterances.append(Utterance(id=str(record["id"]), speaker=str(record["speaker"]),
                                    split=str(record["split"]), **paths, **optional))
    return utterances


def write_manifest(corpus: Corpus, path: str | os.PathLike) -> None:
    """Write atomically, with paths relative to the manifest's folder (the babble pool beside it)."""
    if corpus.babble:
        write_records(corpus.babble, Path(path).with_name(f"{BABBLE}.jsonl"))
    write_records(corpus.utterances, path)


def write_records(utterances: list[Utterance], path: str | os.PathLike) -> None:
    path = Path(path)
    root = path.parent.resolve()
    lines = []
    for u in utterances:
        record = {"id": u.id, "speaker": u.speaker, "split": u.split}
        for f in PATH_FIELDS:
            p = getattr(u, f)
            if p is not None:
                record[f] = os.path.relpath(Path(p).resolve(), root)
        record["text"] = u.text
        if u.alignment_key is not None:
            record["alignment_key"] = u.alignment_key
        if u.labels != "phones":
            record["labels"] = u.labels
        if u.alignment_tier is not None:
            record["alignment_tier"] = u.alignment_tier
        if u.alignment_format is not None:
            record["alignment_format"] = u.alignment_format
        lines.append(json.dumps(record, ensure_ascii=False))
    write_text_atomic(path, "\n".join(lines) + "\n")


@dataclass
class ManifestCorpus(CorpusAdapter):
    """A corpus described by a manifest (`conf/data/manifest.yaml`)."""

    manifest: str
    name: str | None = None

    def load(self, progress: bool = True) -> Corpus:
        return read_manifest(self.manifest, name=self.name)
