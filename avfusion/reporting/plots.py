"""Figures of a sweep (PNG): error rate against SNR with 95% interval bands, and viseme confusions."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avfusion.reporting.intervals import Interval  # noqa: E402
from avfusion.reporting.report import split_rows  # noqa: E402
from avfusion.utils.atomic import atomic_path  # noqa: E402

CONDITION = re.compile(r"^(?P<kind>\w+) (?P<snr>-?[\d.]+) dB$")


def noise_curves(ranges: dict[str, dict[str, Interval]]) -> dict[str, dict[str, list[tuple[float, Interval]]]]:
    """{noise kind: {model: [(snr, interval), ...] by falling SNR}} from {condition: {model: interval}}."""
    curves: dict[str, dict[str, list]] = {}
    for condition, by_model in ranges.items():
        match = CONDITION.match(condition)
        if not match:
            continue
        for model, iv in by_model.items():
            curves.setdefault(match["kind"], {}).setdefault(model, []).append((float(match["snr"]), iv))
    for by_model in curves.values():
        for points in by_model.values():
            points.sort(key=lambda p: -p[0])
    return curves


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_error_vs_snr(ranges: dict[str, dict[str, Interval]], metric: str, path: Path, title: str) -> Path | None:
    """One panel per noise: each model's error rate over SNR with its 95% interval as a band; its clean
    rate as a dotted line."""
    curves = noise_curves(ranges)
    if not curves:
        return None
    clean = ranges.get("clean", {})
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False, sharey=True)
    for ax, (kind, by_model) in zip(axes[0], sorted(curves.items())):
        for i, (model, points) in enumerate(sorted(by_model.items())):
            # ten colours, then the next style: a full study has more models than a palette has colours
            colour, style = f"C{i % 10}", ("o-", "s--", "^:")[i // 10 % 3]
            snr = [p[0] for p in points]
            ax.plot(snr, [p[1].value for p in points], style, color=colour, label=model, lw=1.5, ms=3)
            ax.fill_between(snr, [p[1].low for p in points], [p[1].high for p in points], color=colour, alpha=0.15)
            if model in clean:
                ax.axhline(clean[model].value, color=colour, ls=":", lw=1)
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("SNR (dB, active speech)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} (band: 95% interval; dotted: clean)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title)
    return _save(fig, path)


def confusion(reports: list[dict], model: str, condition: str, split: str) -> tuple[list[str], np.ndarray] | None:
    """The viseme confusion counts of `model` in `condition`, summed over its seeds (None if not recorded)."""
    total, labels = None, None
    for rep in reports:
        if rep["name"] != model:
            continue
        row = next((r for r in split_rows(rep, split) if r["condition"] == condition), None)
        if row is None or "viseme_confusion" not in row:
            continue
        counts = np.asarray(row["viseme_confusion"]["counts"], dtype=float)
        total = counts if total is None else total + counts
        labels = row["viseme_confusion"]["labels"]
    return None if total is None else (labels, total)


def plot_confusions(reports: list[dict], models: list[str], condition: str, split: str, path: Path) -> Path | None:
    """Row-normalised viseme confusion matrices (reference rows, predicted columns), one per model."""
    found = [(m, confusion(reports, m, condition, split)) for m in models]
    found = [(m, c) for m, c in found if c is not None]
    if not found:
        return None
    fig, axes = plt.subplots(1, len(found), figsize=(5.2 * len(found), 4.8), squeeze=False)
    for ax, (model, (labels, counts)) in zip(axes[0], found):
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        ax.set_title(f"{model}: {condition}, {split}\nviseme frame accuracy {accuracy:.3f}", fontsize=9)
        ax.set_xlabel("predicted viseme")
        ax.set_ylabel("reference viseme")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of the reference viseme's frames")
    return _save(fig, path)
