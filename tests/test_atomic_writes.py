"""Writes that lose nothing: a full disk is a one-line error naming the file and leaves no partial file;
temporaries a killed writer left behind are cleaned, and only those."""

import errno
import os
import shutil
import time
from collections import namedtuple

import numpy as np
import pytest

from avfusion.utils.atomic import DiskFullError, atomic_path, remove_stale_temporaries


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "feats" / "u1.abc.npy"
    with pytest.raises(DiskFullError, match=r"u1.abc.npy: the disk is full \([\d.]+ MiB free on the device of .*feats\)"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(target.parent.iterdir()) == []


def test_a_short_write_without_errno_is_a_full_disk_only_when_the_device_is_nearly_full(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    short_write = OSError("1048576 requested and 4096 written")  # what numpy's tofile raises
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    with pytest.raises(DiskFullError):
        with atomic_path(tmp_path / "x.npy"):
            raise short_write
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, 10**9))
    with pytest.raises(OSError) as raised:
        with atomic_path(tmp_path / "x.npy"):
            raise short_write
    assert not isinstance(raised.value, DiskFullError)  # with space left it is some other fault: kept as is
    assert list(tmp_path.iterdir()) == []


def test_the_feature_cache_reports_a_full_disk_per_utterance(small_corpus, tmp_path, monkeypatch):
    from avfusion.configs import configured
    from avfusion.frontends.store import FeatureStore

    _, corpus = small_corpus
    store = FeatureStore(tmp_path, configured("frontend.audio.extractor"))
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    report = store.build(corpus.utterances[:2], progress=False)
    assert len(report.failed) == 2
    assert all("DiskFullError" in why and "the disk is full" in why for why in report.failed.values())
    assert not [p for p in store.dir.iterdir() if p.suffix == ".npy"]


def test_stale_temporaries_are_removed_and_live_ones_and_entries_kept(tmp_path):
    stale, live, entry = tmp_path / ".u1.x7k2.tmp.json", tmp_path / ".u2.q9z1.tmp.npy", tmp_path / "u3.abc.npy"
    for path in (stale, live, entry):
        path.write_bytes(b"")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(entry, (old, old))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and live.exists() and entry.exists()
