"""Every thread pool a benchmark touches, pinned to one count and printed, so that its ratios mean the same
from run to run (unpinned, numba's parallel kernels and BLAS under load moved ratios by a factor of 50).

Import it first, before numpy, numba or torch load (the environment variables are read when they do):

    from pinning import pinned    # noqa: E402 after it for the other imports
    ...
    parser.add_argument("--threads", ...)   # `add_threads_argument(parser)`
    print(pinned())                         # sets torch's and threadpoolctl's limits too; "threads: ..."

The count is `--threads=N` on the command line (default 1: a per-core figure).
"""

from __future__ import annotations

import os
import sys

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
THREADS = int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), "1"))
for _variable in VARIABLES:
    os.environ[_variable] = str(THREADS)


def add_threads_argument(parser) -> None:
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="threads of every pool: torch, numba, BLAS/OpenMP (give as --threads=N; default 1)")


def pinned() -> str:
    """Limit the pools that are set at run time too (torch, BLAS/OpenMP through threadpoolctl); the line to print."""
    import numba
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(THREADS)
    threadpool_limits(THREADS)
    pools = sorted({f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()})
    return (f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}, "
            f"{', '.join(pools) or 'no BLAS/OpenMP pool loaded'} (--threads={THREADS})")
