"""Peak memory and time of fitting the front-end (CMVN, LDA) on the training split, then writing the train and
dev frame matrices: all frames at once (the default) against batches of utterances (`frontend.fit_batch_utterances=N`:
the fit from sufficient statistics, the matrices a batch at a time), each in a fresh process on the default
corpus (its raw features extracted first, so only the fit and the frames are measured).

    python benchmarks/frontend_fit_memory.py [--batch 64] [--threads=N] [overrides ...]   # e.g. data=synthetic_study
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import json
import resource
import subprocess
import sys
import time


def fit_once(overrides: list[str]) -> dict:
    """In this process: the front-end fitted on the training split; peak RSS before and after, seconds."""
    from hydra.utils import instantiate

    from avfusion import api
    from avfusion.configs import compose_config
    import tempfile
    from pathlib import Path

    from avfusion.corpus.labels import get_scheme
    from avfusion.frames.cache import fit_on_train
    from avfusion.frames.writer import save_split
    from avfusion.frames.labelling import FrameLabeller

    cfg = compose_config("train", overrides)
    corpus, _ = api.load_corpus(cfg)
    frontend = instantiate(cfg.frontend, _convert_="all")
    frontend.prepare(list(corpus), progress=False)  # cached raw features: nothing to extract after the first run
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    fit_on_train(frontend, corpus)
    fitted, peak_fit = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as out:
        for split in ("train", "dev"):
            save_split(frontend, corpus.split(split), FrameLabeller(get_scheme("phone")), Path(out) / split)
    return {"seconds": fitted - start, "frames_seconds": time.perf_counter() - fitted, "rss_before_mb": before / 1024,
            "fit_peak_mb": peak_fit / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "train_utterances": len(corpus.split("train"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="utterances per batch of the fit in parts")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*")
    add_threads_argument(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_once(args.overrides)))
        return
    print(pinned())
    rows = {}
    for name, extra in (("all at once", []), (f"batches of {args.batch}", [f"frontend.fit_batch_utterances={args.batch}"])):
        out = subprocess.run([sys.executable, __file__, "--child", f"--threads={args.__dict__['threads']}",
                              *args.overrides, *extra], check=True, capture_output=True, text=True).stdout
        rows[name] = json.loads(out.strip().splitlines()[-1])
        r = rows[name]
        print(f"{name}: fit {r['seconds']:.1f} s, peak RSS {r['fit_peak_mb']:.0f} MB ({r['fit_peak_mb'] - r['rss_before_mb']:.0f} MB "
              f"over the {r['rss_before_mb']:.0f} MB before the fit); then train+dev frames {r['frames_seconds']:.1f} s, "
              f"peak RSS {r['peak_mb']:.0f} MB ({r['peak_mb'] - r['rss_before_mb']:.0f} MB over); "
              f"{r['train_utterances']} train utterances", flush=True)
    whole, parts = rows.values()

    def added(r, key):
        return r[key] - r["rss_before_mb"]

    print(f"in parts / at once: memory added by the fit {added(parts, 'fit_peak_mb') / max(1e-9, added(whole, 'fit_peak_mb')):.3f}, "
          f"by fit and frames {added(parts, 'peak_mb') / max(1e-9, added(whole, 'peak_mb')):.3f}; "
          f"time of the fit {parts['seconds'] / whole['seconds']:.3f}, of the frames "
          f"{parts['frames_seconds'] / whole['frames_seconds']:.3f}")


if __name__ == "__main__":
    main()
