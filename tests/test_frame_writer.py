"""Frame matrices written a batch of utterances at a time (avfusion.frames.writer): the same files as the
whole split saved at once."""

import numpy as np

from avfusion.frames.data import FrameData, VideoStream, concatenated
from avfusion.frames.writer import join_saved, save_in_batches


def part(rng, lengths, video_lengths):
    """A FrameData of utterances with these frame counts, and a video stream with these frame counts."""
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    video = VideoStream(rng.integers(0, 255, (sum(video_lengths), 4, 4), dtype=np.uint8),
                        np.concatenate([[0], np.cumsum(video_lengths)]), rng.uniform(25, 30, len(video_lengths)))
    n = int(offsets[-1])
    return FrameData({"audio": rng.normal(size=(n, 5)).astype(np.float32), "video": rng.normal(size=(n, 3))},
                     rng.integers(0, 39, n), offsets, [f"u{rng.integers(1e6)}" for _ in lengths],
                     ["s1"] * len(lengths), {"roi": video})


def same_saved(a, b):
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and "utterances.tsv" in names
    for name in names:
        if name.endswith(".npy"):
            x, y = np.load(a / name), np.load(b / name)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert (a / name).read_text() == (b / name).read_text()


def test_parts_joined_are_the_whole_split_saved_at_once(rng, tmp_path):
    parts = [part(rng, [7, 3], [2, 1]), part(rng, [12], [5]), part(rng, [1, 4, 9], [1, 2, 3])]
    for dtype in (None, "float16"):
        whole = tmp_path / f"whole-{dtype}"
        concatenated(parts).save(whole, dtype)
        for k, p in enumerate(parts):
            p.save(tmp_path / f"parts-{dtype}" / str(k), dtype)
        joined = tmp_path / f"joined-{dtype}"
        join_saved([tmp_path / f"parts-{dtype}" / str(k) for k in range(len(parts))], joined)
        same_saved(whole, joined)
        loaded = FrameData.load(joined)
        assert loaded.ids == concatenated(parts).ids and len(loaded) == 36 and loaded.streams["roi"].offsets[-1] == 14


def test_a_split_built_in_batches_is_the_one_built_at_once(small_corpus, tmp_path, monkeypatch):
    from avfusion.corpus.labels import get_scheme
    from avfusion.frames import writer
    from avfusion.frames.cache import fit_on_train
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller
    from conftest import small_frontend

    _, corpus = small_corpus
    frontend = small_frontend(tmp_path)
    frontend.prepare(list(corpus), progress=False)
    fit_on_train(frontend, corpus)
    labeller, dev = FrameLabeller(get_scheme("phone")), corpus.split("dev")
    frames_of(frontend, dev, labeller).save(tmp_path / "whole" / "dev")
    sizes = []
    monkeypatch.setattr(writer, "frames_of", lambda f, utts, lab: sizes.append(len(utts)) or frames_of(f, utts, lab))
    save_in_batches(frontend, dev, labeller, tmp_path / "batched" / "dev", None, 2)
    assert max(sizes) == 2 and sum(sizes) == len(dev) and len(sizes) > 1
    same_saved(tmp_path / "whole" / "dev", tmp_path / "batched" / "dev")
    assert sorted(p.name for p in (tmp_path / "batched").iterdir()) == ["dev"]  # the parts are removed
