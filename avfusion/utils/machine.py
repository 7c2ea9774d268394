"""What a report's numbers depend on besides its config and seed: the CPU's vector instruction set picks
the numeric kernels (ATen's, MKL's), so the same run gives other numbers on a machine with another one
(experiments/paper_study, part 3). Reports record it so that a comparison across machines shows."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

import torch

UNRECORDED = "not recorded"  # reports written before the machine was


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict:
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_model(), "torch": torch.__version__}


def capability(report: dict) -> str:
    return (report.get("machine") or {}).get("cpu_capability", UNRECORDED)


def peak_memory_mb() -> float | None:
    """This process's peak resident memory in MB (None where /proc is not there). VmHWM, not getrusage's
    ru_maxrss: Linux carries ru_maxrss over fork and exec, so a job started by a large parent reports the
    parent's size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to ask
        return None


def release_freed_memory() -> None:
    """Hand the memory this process has freed back to the system (glibc's malloc_trim; nothing elsewhere).
    glibc keeps freed heap pages for reuse, and a small block still in use pins the freed ones around it, so a
    pass over many blocks of frames grows by a few MB a block though it keeps only its small results (measured:
    190 MB over the 20x test split's 29 blocks, docs/scale.md). Cheap against a block's work; calling it on
    every allocation pattern (M_TRIM_THRESHOLD) cost training 20-30% of its speed."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
