"""What a report's numbers depend on besides its config and seed: the CPU's vector instruction set picks
the numeric kernels (ATen's, MKL's), so the same run gives other numbers on a machine with another one
(experiments/paper_study, part 3). Reports record it so that a comparison across machines shows."""

from __future__ import annotations

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
