"""A run's saved decoder, read back by the kind its `decoder.json` names."""

from __future__ import annotations

import json
from pathlib import Path

from avfusion.corpus.labels import LabelScheme
from avfusion.decoding.framewise import FramewiseDecoder
from avfusion.decoding.hybrid import HybridDecoder
from avfusion.errors import UserError

SAVED = {cls.name: cls for cls in (FramewiseDecoder, HybridDecoder)}


def load_decoder(directory: str | Path, scheme: LabelScheme):
    """The decoder saved in a run folder, or None for a folder that has none (made before every run saved
    its decoder)."""
    path = Path(directory) / "decoder.json"
    if not path.is_file():
        return None
    try:
        kind = json.loads(path.read_text()).get("decoder")
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if kind not in SAVED:
        raise UserError(f"{path}: decoder {kind!r} is not one this avfusion reads ({sorted(SAVED)})")
    return SAVED[kind].load(directory, scheme)
