"""Figures of a sweep (PNG): error rate against SNR with 95% interval bands, and viseme confusions."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avfusion.corpus.phones import VISEMES  # noqa: E402
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


METRIC_NAMES = {"per": "phone error rate (PER, decoded)", "per_framewise": "PER, frame-wise decoding",
                "frame_error": "frame error rate", "frame_error_phone": "frame error rate (phones)",
                "segment_error": "segment error rate"}


def metric_name(metric: str) -> str:
    """What a figure calls a report's metric key."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def plot_error_vs_snr(ranges: dict[str, dict[str, Interval]], metric: str, path: Path, title: str) -> Path | None:
    """One panel per noise: each model's error rate over SNR with its 95% interval as a band, and its clean
    rate as a marker with its interval at a "clean" position left of the highest SNR, the models side by side
    there so that equal clean rates stay apart."""
    curves = noise_curves(ranges)
    if not curves:
        return None
    clean = ranges.get("clean", {})
    models = sorted({m for by_model in curves.values() for m in by_model} | set(clean))
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.4), squeeze=False, sharey=True)
    handles: dict[str, object] = {}
    for ax, (kind, by_model) in zip(axes[0], sorted(curves.items())):
        snrs = sorted({snr for points in by_model.values() for snr, _ in points})
        step = (snrs[-1] - snrs[0]) / (len(snrs) - 1) if len(snrs) > 1 else 5.0  # one SNR: an axis of 5 dB steps
        at_clean = snrs[-1] + 1.5 * step
        for i, model in enumerate(models):
            # ten colours, then the next marker and line style: a full study has more models than a palette
            colour, marker, line = f"C{i % 10}", "os^Dv"[i // 10 % 5], ("-", "--", ":")[i // 10 % 3]
            points = by_model.get(model, [])
            if points:
                snr = [p[0] for p in points]
                handles.setdefault(model, ax.plot(snr, [p[1].value for p in points], marker=marker, ls=line,
                                                  color=colour, lw=1.5, ms=4)[0])
                ax.fill_between(snr, [p[1].low for p in points], [p[1].high for p in points], color=colour, alpha=0.12)
            if model in clean:
                iv = clean[model]
                x = at_clean + (i / max(len(models) - 1, 1) - 0.5) * 0.8 * step
                bars = ax.errorbar(x, iv.value, yerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt=marker,
                                   color=colour, ms=5, capsize=2, lw=1)
                handles.setdefault(model, bars)
        ax.axvline(snrs[-1] + 0.75 * step, color="0.6", lw=0.8)
        ax.set_xticks([*snrs, at_clean], [*(f"{s:g}" for s in snrs), "clean"])
        ax.set_xlim(at_clean + step, snrs[0] - 0.5 * step)  # falling SNR to the right, clean on the left
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("SNR (dB, active speech)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric_name(metric))
    fig.legend(list(handles.values()), list(handles), fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 0.92),
               title="band, bars: 95% interval", title_fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
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
    axes[0][0].text(-0.15, -0.25, viseme_key(found[0][1][0]), transform=axes[0][0].transAxes, fontsize=8,
                    va="top", family="monospace")  # under the first matrix's axis label
    return _save(fig, path)


def viseme_key(labels: list[str], per_line: int = 4) -> str:
    """The phones of each viseme class named in `labels` (Neti et al.'s map, avfusion.corpus.phones), a few
    classes a line: the key under a confusion plot."""
    entries = [f"{v}: {' '.join(VISEMES[v])}" for v in labels if v in VISEMES]
    rows = [entries[i:i + per_line] for i in range(0, len(entries), per_line)]
    widths = [max(len(row[c]) for row in rows if c < len(row)) for c in range(min(per_line, len(entries)))]
    return "\n".join("   ".join(e.ljust(w) for e, w in zip(row, widths)).rstrip() for row in rows)
