import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.decoding.framewise import FramewiseDecoder
from avfusion.evaluation.evaluate import score
from avfusion.frames.labelling import Reference
from avfusion.frames.data import FrameData
from avfusion.reporting.report import sweep_table


def test_score_hand_case():
    s = get_scheme("phone")
    idx = {p: i for i, p in enumerate(s.classes)}
    ref_frames = ["sil", "sil", "aa", "aa", "aa", "b", "b", "sil"]
    hyp_frames = ["sil", "sil", "aa", "ae", "aa", "aa", "b", "sil"]  # one lone "ae" frame, one b frame lost
    data = FrameData({"audio": np.zeros((8, 1), np.float32)}, np.array([idx[p] for p in ref_frames]),
                     np.array([0, 8]), ["u"], ["s"])
    refs = [reference_of(["sil", "aa", "b", "sil"], [[2, 5], [5, 7]], [idx["aa"], idx["b"]])]
    out = score(one_hot([idx[p] for p in hyp_frames], s.num_classes), data, refs, s, FramewiseDecoder(s, min_frames=1))
    assert out["frame_error"] == pytest.approx(2 / 8)
    assert out["frame_error_phone"] == pytest.approx(2 / 8)
    # hypothesis (sil) aa ae aa b (sil) vs reference (sil) aa b (sil), silence left out: two insertions in 2
    assert out["per"] == pytest.approx(2 / 2) and out["insertions"] == 2 and out["reference_phones"] == 2
    # segments: aa (frames 2-4: aa, ae, aa) -> aa; b (frames 5-6: aa, b) -> a tie, broken towards the lower index
    assert out["segments"] == 2 and out["segment_error"] == pytest.approx(1 / 2)
    smoothed = score(one_hot([idx[p] for p in hyp_frames], s.num_classes), data, refs, s, FramewiseDecoder(s, min_frames=2))
    # runs shorter than 2 frames (the first aa, ae, b and the last sil) are dropped: sil aa -> b deleted
    assert (smoothed["insertions"], smoothed["deletions"], smoothed["substitutions"]) == (0, 1, 0)


def one_hot(classes, n, p=0.9):
    """Posteriors putting p on the given class of each frame, the rest spread evenly."""
    out = np.full((len(classes), n), (1 - p) / (n - 1))
    out[np.arange(len(classes)), classes] = p
    return out


def reference_of(units, spans, span_units):
    return Reference(units, np.array(spans), np.array(span_units))


def test_segment_error_pools_states_and_frames():
    s = get_scheme("phone_state")
    # a 10-frame utterance: "aa" over frames 2..6, "b" over 7..9. On the aa segment the aa states win 3
    # frames, b_m 2 (with less mass); summing states into phones and averaging log posteriors gives aa.
    post = np.full((10, s.num_classes), 1e-3)
    for f in range(2, 7):
        post[f, s.classes.index("aa_b" if f < 4 else "aa_e" if f < 5 else "b_m")] = 0.6 if f < 5 else 0.4
    post[7:, s.classes.index("b_e")] = 0.9
    post /= post.sum(axis=1, keepdims=True)
    data = FrameData({"audio": np.zeros((10, 1), np.float32)}, np.zeros(10, np.int64), np.array([0, 10]), ["u"], ["s"])
    ref = Reference(["sil", "aa", "b"], np.array([[2, 7], [7, 10]]), np.array([s.units.index("aa"), s.units.index("b")]))
    out = score(post, data, [ref], s, FramewiseDecoder(s, min_frames=1))
    assert out["segments"] == 2 and out["segment_error"] == 0.0
    # spans follow frame centres: [0.02, 0.07) holds frames 2..6; a 3 ms segment still gets its nearest frame
    from avfusion.frames.clock import frame_span

    assert frame_span(0.02, 0.07, 10) == (2, 7) and frame_span(0.071, 0.074, 10) == (7, 8)
    assert frame_span(0.095, 0.2, 10) == (9, 10)


def _report(name, seed, per_clean, per_noisy):
    rows = [{"condition": "clean", "per": per_clean, "frame_error": 0.1, "frame_error_phone": 0.1},
            {"condition": "babble 0 dB", "per": per_noisy, "frame_error": 0.2, "frame_error_phone": 0.2}]
    return {"name": name, "seed": seed, "test": rows}


def test_sweep_table_rows_per_model_and_seed_spread():
    table = sweep_table([_report("concat", 1, 0.2, 0.4), _report("concat", 2, 0.3, 0.5),
                         _report("audio_only", 1, 0.25, 0.7)])
    lines = table.splitlines()
    assert lines[0] == "| per | seeds | clean | babble 0 dB |"
    assert lines[2] == "| concat | 2 | 0.250 ± 0.071 | 0.450 ± 0.071 |"  # sample std: 0.05 * sqrt(2)
    assert lines[3] == "| audio_only | 1 | 0.250 | 0.700 |"


def _sweep_report(name, seed, errors_by_split, reference, speakers, noise_rows=True):
    """A report.json as avfusion-train writes it: dev and test rows with per-utterance counts."""
    out = {"name": name, "seed": seed, "label_scheme": "phone"}
    for split, errors in errors_by_split.items():
        rows = []
        for condition, shift in (("clean", 0), ("white 10 dB", 1), ("white 0 dB", 2)) if noise_rows else (("clean", 0),):
            e = np.minimum(np.asarray(errors) + shift, reference)
            detail = {"id": [f"{split}{i}" for i in range(len(e))], "speaker": speakers, "errors": e.tolist(),
                      "reference": list(reference), "frame_errors": e.tolist(), "frames": list(reference)}
            confusion = {"labels": ["A", "B"], "counts": [[int(reference.sum() - e.sum()), int(e.sum())], [0, 5]]}
            rows.append({"condition": condition, "per": e.sum() / reference.sum(),
                         "frame_error": e.sum() / reference.sum(), "frame_error_phone": e.sum() / reference.sum(),
                         "by_utterance": detail, "viseme_confusion": confusion})
        out[split] = rows
    return out


def test_the_report_of_a_sweep_gives_dev_and_test_tables_with_intervals_a_direct_computation_agrees_with(tmp_path):
    """Three seeds, one utterance per speaker: the CSV's interval agrees with the crossed bootstrap computed in
    plain loops (tests/test_intervals.py), the table says what was resampled."""
    import csv
    import json

    from avfusion.cli import report as report_cli
    from test_intervals import nested_reference

    rng = np.random.default_rng(5)
    n = 40
    reference = rng.integers(15, 40, n)
    speakers = [f"s{i}" for i in range(n)]
    errors = {}
    for model, rate in (("audio_only", 0.35), ("concat", 0.25)):
        for seed in range(3):
            errors[model, seed] = {s: rng.binomial(reference, rate) for s in ("dev", "test")}
            run = tmp_path / f"{model}_{seed}"
            run.mkdir()
            (run / "report.json").write_text(json.dumps(_sweep_report(model, seed, errors[model, seed], reference,
                                                                      speakers), default=int))
    report_cli.main([str(tmp_path), "--baseline", "audio_only"])
    summary = (tmp_path / "summary.md").read_text()
    assert summary.index("## dev") < summary.index("## test")
    with open(tmp_path / "summary.csv") as f:
        rows = {(r["split"], r["model"], r["condition"], r["metric"]): r for r in csv.DictReader(f)}
    for split in ("dev", "test"):
        per_seed = [errors["concat", s][split].sum() / reference.sum() for s in range(3)]
        row = rows[split, "concat", "clean", "per"]
        assert float(row["mean"]) == pytest.approx(np.mean(per_seed))
        assert float(row["std"]) == pytest.approx(np.std(per_seed, ddof=1))

        low, high = nested_reference({s: errors["concat", s][split] for s in range(3)}, reference, speakers)
        assert float(row["low"]) == pytest.approx(low, abs=0.012)
        assert float(row["high"]) == pytest.approx(high, abs=0.012)
        assert row["resampled"] == "seeds × speakers × utterances" and row["speakers"] == str(n)
    assert "| per - per(audio_only), 95% interval (resampled: seeds × speakers × utterances) |" in summary
    for name in ("per_vs_snr_dev.png", "per_vs_snr_test.png", "frame_error_vs_snr_dev.png",
                 "frame_error_vs_snr_test.png", "viseme_confusion_white_0dB_dev.png",
                 "viseme_confusion_white_0dB_test.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_a_report_without_dev_rows_has_a_test_section_only(tmp_path):
    import json

    from avfusion.cli import report as report_cli

    reference = np.full(4, 10)
    rep = _sweep_report("audio_only", 0, {"test": np.array([1, 2, 3, 4])}, reference, ["a", "a", "b", "b"],
                        noise_rows=False)
    (tmp_path / "report.json").write_text(json.dumps(rep, default=int))
    report_cli.main([str(tmp_path), "--no-plots"])
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## test") and "## dev" not in summary and not list(tmp_path.glob("*.png"))


def test_the_summary_says_when_its_reports_come_from_machines_with_different_instruction_sets(tmp_path):
    import json

    from avfusion.cli import report as report_cli

    reference = np.full(6, 20)
    speakers = [f"s{i}" for i in range(6)]

    def write(folder, name, seed, machine):
        report = _sweep_report(name, seed, {"test": np.full(6, 4)}, reference, speakers, noise_rows=False)
        if machine:
            report["machine"] = {"cpu_capability": machine, "cpu": "x", "torch": "2.13.0"}
        (folder / f"{name}_{seed}").mkdir(parents=True)
        (folder / f"{name}_{seed}" / "report.json").write_text(json.dumps(report, default=int))

    for seed in (0, 1):
        write(tmp_path / "one", "concat", seed, "AVX512")
    report_cli.main([str(tmp_path / "one"), "--no-plots"])
    assert "instruction sets" not in (tmp_path / "one" / "summary.md").read_text()
    write(tmp_path / "two", "concat", 0, "AVX512")
    write(tmp_path / "two", "concat", 1, "AVX2")
    write(tmp_path / "two", "concat", 2, None)  # written before reports recorded the machine
    report_cli.main([str(tmp_path / "two"), "--no-plots"])
    first = (tmp_path / "two" / "summary.md").read_text().splitlines()[0]
    assert first.startswith("**Reports from machines with different CPU instruction sets** (AVX2: 1, AVX512: 1, "
                            "not recorded: 1)")


def test_figures_name_the_metric_draw_clean_apart_and_key_the_visemes(tmp_path):
    """A figure for a paper: the metric's name (not its key) on the axis, clean at its own tick (also with one
    SNR, where the SNR axis used to collapse), and the phones of each viseme class under a confusion plot (the
    map of DESIGN.md)."""
    import matplotlib.pyplot as plt

    from avfusion.reporting import plots
    from avfusion.reporting.intervals import Interval

    iv = Interval(0.5, 0.4, 0.6, seeds=1, speakers=4)
    ranges = {"clean": {"concat": Interval(0.2, 0.15, 0.25, 1, 4), "bilinear": Interval(0.2, 0.15, 0.25, 1, 4)},
              "babble 0 dB": {"concat": iv, "bilinear": iv}}
    drawn = {}
    save = plots._save
    plots._save = lambda fig, path: drawn.setdefault("fig", fig) and save(fig, path)
    try:
        assert plots.plot_error_vs_snr(ranges, "per", tmp_path / "per.png", "t").is_file()
    finally:
        plots._save = save
    (ax,) = drawn["fig"].axes
    assert ax.get_ylabel() == "phone error rate (PER, decoded)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "clean"]
    assert abs(ax.get_xlim()[0] - ax.get_xlim()[1]) >= 5  # one SNR: the axis still spans the clean position
    clean_x = sorted(bars.lines[0].get_xdata()[0] for bars in ax.containers)  # the clean markers with their bars
    assert len(clean_x) == 2 and clean_x[1] - clean_x[0] > 1  # equal clean rates drawn side by side
    plt.close("all")
    key = plots.viseme_key(["V1", "E", "S"], per_line=2)
    assert key.splitlines() == ["V1: ao ah aa er oy aw hh   E: p b m", "S: sil"]


def test_contrasts_score_the_pairs_two_way_decision_alone():
    """evaluation.contrasts: of the frames of P or Q, those whose posterior is not higher for their own unit than for
    the partner's count as wrong, whatever the other classes get (the positive control's interaction-carried pairs)."""
    s = get_scheme("phone")
    idx = {p: i for i, p in enumerate(s.classes)}
    truth = ["ih", "ih", "eh", "eh", "ah", "ae", "t", "ih"]
    post = np.full((8, s.num_classes), 0.01)
    # ih frame 0: ih > eh (right, though t wins the frame); ih frame 1: eh > ih (wrong); eh frames: right, then a tie
    for f, (a, b) in enumerate([("ih", "eh"), ("eh", "ih"), ("eh", "ih"), ("eh", "ih"), ("ae", "ah"), ("ae", "ah"),
                                ("t", "ih"), ("ih", "eh")]):
        post[f, idx[a]], post[f, idx[b]] = 0.3, 0.2
    post[0, idx["t"]] = 0.4
    post[3, idx["ih"]] = post[3, idx["eh"]] = 0.25  # a tie is no decision for the frame's own unit: wrong
    data = FrameData({"audio": np.zeros((8, 1), np.float32)}, np.array([idx[p] for p in truth]),
                     np.array([0, 4, 8]), ["u", "v"], ["s", "s"])
    refs = [reference_of(["ih", "eh"], [[0, 2], [2, 4]], [idx["ih"], idx["eh"]]),
            reference_of(["ah", "ae", "t", "ih"], [[0, 1], [1, 2], [2, 3], [3, 4]],
                         [idx["ah"], idx["ae"], idx["t"], idx["ih"]])]
    out = score(post, data, refs, s, FramewiseDecoder(s, min_frames=1), contrasts=[["ih", "eh"], ["ah", "ae"]])
    assert out["contrast_error_ih_eh"] == pytest.approx(2 / 5)  # frames 1 and 3 of 0, 1, 2, 3, 7
    assert out["contrast_error_ah_ae"] == pytest.approx(1 / 2)  # the ah frame chose ae
    assert out["contrast_error"] == pytest.approx(3 / 7)
    detail = out["by_utterance"]
    assert detail["contrast_errors_ih_eh"] == [2, 0] and detail["contrast_frames_ih_eh"] == [4, 1]
    assert detail["contrast_errors"] == [2, 1] and detail["contrast_frames"] == [4, 3]
    assert "contrast_error" not in score(post, data, refs, s, FramewiseDecoder(s, min_frames=1))  # none asked: none

    states = get_scheme("phone_state")  # states are summed into their phone before the decision
    post3 = np.full((1, states.num_classes), 0.01)
    post3[0, [states.classes.index(c) for c in ("ih_b", "ih_m", "ih_e")]] = 0.1
    post3[0, states.classes.index("eh_m")] = 0.25
    one = FrameData({"audio": np.zeros((1, 1), np.float32)}, np.array([states.classes.index("ih_m")]), np.array([0, 1]),
                    ["u"], ["s"])
    ref = Reference(["ih"], np.array([[0, 1]]), np.array([states.units.index("ih")]))
    assert score(post3, one, [ref], states, FramewiseDecoder(states, min_frames=1),
                 contrasts=[["ih", "eh"]])["contrast_error"] == 0.0  # 0.3 for ih's states against eh's 0.25 + 0.02


def test_the_report_gives_contrast_intervals_beside_per_and_frame_error(tmp_path):
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    for name, rate in (("concat", 0.5), ("bilinear", 0.3)):
        for seed in (0, 1):
            n = 12
            frames = rng.integers(20, 40, n)
            detail = {"id": [f"u{i}" for i in range(n)], "speaker": [f"s{i % 4}" for i in range(n)],
                      "errors": [1] * n, "reference": [10] * n, "frame_errors": [2] * n, "frames": [20] * n,
                      "contrast_errors": rng.binomial(frames, rate).tolist(), "contrast_frames": frames.tolist(),
                      "contrast_errors_ih_eh": [0] * n, "contrast_frames_ih_eh": [1] * n}
            row = {"condition": "clean", "per": 0.1, "frame_error": 0.1, "contrast_error": rate,
                   "contrast_error_ih_eh": 0.0, "by_utterance": detail}
            (tmp_path / f"{name}-s{seed}").mkdir()
            (tmp_path / f"{name}-s{seed}" / "report.json").write_text(json.dumps(
                {"name": name, "seed": seed, "label_scheme": "phone", "test": [row], "dev": [row]}))
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.report", str(tmp_path), "--baseline", "concat",
                          "--no-plots"], capture_output=True, text=True, check=True).stdout
    assert "| contrast_error - contrast_error(concat), 95% interval" in out
    assert "| contrast_error_ih_eh | seeds |" in out  # each pair's mean beside the pooled decision
    table = out.split("| contrast_error - contrast_error(concat)")[1]
    bilinear = next(line for line in table.splitlines() if line.startswith("| bilinear |"))
    value, low, high = (float(x) for x in bilinear.split("|")[4].replace("[", "").replace("]", "").replace(",", "")
                        .split())
    assert low < value < high < 0 and value == pytest.approx(-0.2, abs=0.05)  # 0.3 against 0.5, paired
