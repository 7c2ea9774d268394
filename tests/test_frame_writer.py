"""Frame matrices written a batch of utterances at a time (avfusion.frames.writer): the same files as the
whole split saved at once."""

import itertools

import numpy as np

from avfusion.frames.data import FrameData, VideoStream, concatenated
from avfusion.frames.writer import index_shards, join_saved, save_in_batches


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


def numbered(rng, lengths, first_row):
    """`part` with audio column 0 the frame's row in the whole split: which frame a batch holds."""
    data = part(rng, lengths, [1] * len(lengths))
    data.features["audio"][:, 0] = np.arange(first_row, first_row + len(data))
    return data


def test_a_split_saved_in_shards_reads_as_the_whole_split(rng, tmp_path):
    """Every way a model reads a split (slices within and across shards, rows by index, a whole matrix) gives the
    whole split's values, and the streams and utterances come out rebased."""
    parts = [part(rng, [7, 3], [2, 1]), part(rng, [12], [5]), part(rng, [1, 4, 9], [1, 2, 3])]
    whole = concatenated(parts)
    for k, p in enumerate(parts):
        p.save(tmp_path / "split" / f"shard-{k}", "float16")
    index_shards(tmp_path / "split", [f"shard-{k}" for k in range(3)])
    assert (tmp_path / "split" / "shards.tsv").read_text().splitlines()[1] == "shard-1\t1\t12"
    loaded = FrameData.load(tmp_path / "split")
    assert loaded.ids == whole.ids and len(loaded) == 36
    np.testing.assert_array_equal(loaded.offsets, [0, 7, 10, 22, 23, 27, 36])
    np.testing.assert_array_equal(loaded.streams["roi"].offsets, [0, 2, 3, 8, 9, 11, 14])
    np.testing.assert_array_equal(loaded.labels, np.asarray(whole.labels))
    for m, x in loaded.features.items():
        reference = np.asarray(whole.features[m]).astype(np.float16)  # the round trip through float16
        assert x.dtype == np.float16 and x.shape == reference.shape
        for rows in (slice(None), slice(2, 9), slice(5, 30), slice(10, 22), np.array([35, 0, 10, 9, 22]), 23):
            np.testing.assert_array_equal(x[rows], reference[rows])
        np.testing.assert_array_equal(np.asarray(x), reference)
    roi = whole.streams["roi"]
    in_memory = VideoStream(np.asarray(roi.frames), roi.offsets, roi.fps)
    for u, stop in ((2, 12), (5, 9)):  # the second shard's utterance, the third's last
        for a, b in zip(loaded.streams["roi"].window(u, 0, stop), in_memory.window(u, 0, stop)):
            np.testing.assert_array_equal(a, b)


def test_a_frame_batch_sampler_over_shards_visits_every_frame_once_per_epoch(rng, tmp_path):
    """Random frame batches across the shards of a split: each frame once an epoch, another order the next; split
    across two distributed ranks (as Lightning wraps the sampler), each rank its own frames, together all of them."""
    import torch
    from torch.utils.data import DistributedSampler

    from avfusion.training.datamodule import FrameBatches, FrameBatchSampler, FrameDataModule

    parts = [numbered(rng, [7, 3], 0), numbered(rng, [12], 10), numbered(rng, [1, 4, 13], 22)]
    for k, p in enumerate(parts):
        p.save(tmp_path / "split" / f"shard-{k}")
    index_shards(tmp_path / "split", [f"shard-{k}" for k in range(3)])
    data = FrameData.load(tmp_path / "split")
    loader = FrameDataModule({"train": data, "dev": data}, ["audio"], batch_size=4, seed=0).train_dataloader()
    epochs = [torch.cat([features["audio"][:, 0] for features, _ in loader]).int().tolist() for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(40)) and epochs[0] != epochs[1]
    for features, labels in loader:  # each frame's label comes with it
        np.testing.assert_array_equal(labels.numpy(), np.asarray(data.labels)[features["audio"][:, 0].int().numpy()])
    dataset = FrameBatches(data, ["audio"])
    ranks = [[row for batch in FrameBatchSampler(DistributedSampler(dataset, num_replicas=2, rank=r, seed=0), 4, False)
              for row in dataset.__getitems__(batch)[0]["audio"][:, 0].int().tolist()] for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1]) and sorted(ranks[0] + ranks[1]) == list(range(40))


def test_frames_shuffled_within_windows_visit_every_frame_once_a_window_at_a_time(monkeypatch):
    """training.shuffle_block_frames: each epoch every frame once, a window at a time (reads that stay in a few
    places of the memory-mapped frames), a window made of pieces of consecutive frames from anywhere in the split,
    in a seeded random order."""
    import torch

    from avfusion.training import datamodule
    from avfusion.training.datamodule import BlockRandomSampler

    def epochs(seed: int) -> list[list[int]]:
        sampler = BlockRandomSampler(23, 5, torch.Generator().manual_seed(seed))
        return [list(sampler) for _ in range(2)]

    first, second = epochs(0)
    assert sorted(first) == sorted(second) == list(range(23)) and first != second
    blocks = [i // 5 for i in first]  # each block's frames one run: its 5 (the last block's 3) one after another
    runs = [(b, len(list(group))) for b, group in itertools.groupby(blocks)]
    assert sorted(runs) == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 3)] and [b for b, _ in runs] != [0, 1, 2, 3, 4]
    assert epochs(0) == [first, second] and epochs(1)[0] != first  # seeded

    monkeypatch.setattr(datamodule, "PIECE_FRAMES", 2)  # windows of 6 frames: 3 pieces of 2 from anywhere
    order = list(BlockRandomSampler(24, 6, torch.Generator().manual_seed(0)))
    windows = [order[i:i + 6] for i in range(0, 24, 6)]
    assert sorted(order) == list(range(24))
    for window in windows:  # whole pieces, 3 of them
        pieces = {i // 2 for i in window}
        assert len(pieces) == 3 and sorted(window) == sorted(i for p in pieces for i in (2 * p, 2 * p + 1))
    assert any(max(i // 2 for i in w) - min(i // 2 for i in w) > 2 for w in windows)  # not one stretch of the split

    # the epoch drawn whole when it starts (as RandomSampler draws it): a checkpoint taken part way through the epoch
    # saves the generator's state after the whole epoch, what a resumed run's next epoch must start from
    generator = torch.Generator().manual_seed(3)
    drawn = iter(BlockRandomSampler(24, 6, generator))
    next(drawn)
    started = generator.get_state().clone()
    list(drawn)
    assert torch.equal(generator.get_state(), started)
