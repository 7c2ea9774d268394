"""Peak memory and time of fitting the front-end (CMVN, LDA) on the training split: all frames at once (the
default) against batches of utterances from sufficient statistics (`frontend.fit_batch_utterances=N`), each in
a fresh process on the default corpus (its raw features extracted first, so only the fit is measured).

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
    from avfusion.frames.cache import fit_on_train

    cfg = compose_config("train", overrides)
    corpus, _ = api.load_corpus(cfg)
    frontend = instantiate(cfg.frontend, _convert_="all")
    frontend.prepare(list(corpus), progress=False)  # cached raw features: nothing to extract after the first run
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    fit_on_train(frontend, corpus)
    return {"seconds": time.perf_counter() - start, "rss_before_mb": before / 1024,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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
        print(f"{name}: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB ({r['peak_mb'] - r['rss_before_mb']:.0f} MB "
              f"over the {r['rss_before_mb']:.0f} MB before the fit; {r['train_utterances']} train utterances)", flush=True)
    whole, parts = rows.values()
    print(f"in parts / at once: memory added by the fit {(parts['peak_mb'] - parts['rss_before_mb']) / max(1e-9, whole['peak_mb'] - whole['rss_before_mb']):.3f}, "
          f"time {parts['seconds'] / whole['seconds']:.3f}")


if __name__ == "__main__":
    main()
