"""experiments/paper_study/run_study.py end to end on the tiny corpus: every grid, combination and the report."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "paper_study" / "run_study.py"


def load_study():
    spec = importlib.util.spec_from_file_location("run_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grids_runs_only_the_chosen_grids_and_names_the_valid_range(tmp_path, monkeypatch, capsys):
    study = load_study()
    commands = []
    monkeypatch.setattr(study, "run", lambda cmd, log=None: commands.append(cmd))
    monkeypatch.setattr(sys, "argv", ["run_study.py", "--output", str(tmp_path), "--grids", "5", "4"])
    study.main()
    trained = [c for c in commands if "avfusion.cli.train" in c]
    full = study.STUDIES["full"]["grids"]
    assert [c[-len(full[n]) - 4:-4] for c, n in zip(trained, (3, 4))] == [full[3], full[4]]  # in study order
    assert "avfusion.cli.report" in commands[-1] and not any("--baseline" in a for a in commands[-1])  # none there
    (tmp_path / "concat-s0").mkdir()
    (tmp_path / "concat-s0" / "report.json").write_text(json.dumps({"name": "concat"}))
    study.main()
    assert [a for a in commands[-1] if "--baseline" in a] == ["--baseline=concat"]  # only what the sweep holds
    monkeypatch.setattr(sys, "argv", ["run_study.py", "--quick", "--output", str(tmp_path), "--grids", "3"])
    with pytest.raises(SystemExit):
        study.main()
    assert "--grids: the quick study has grids 1 to 2" in capsys.readouterr().err
    # the claimed comparisons again: the full variant's corpus and decoder grid, 5 seeds, pooled tuning
    monkeypatch.setattr(sys, "argv", ["run_study.py", "--variant", "claims", "--output", str(tmp_path / "c"),
                                      "--grids", "2"])
    study.main()
    (claims,) = [c for c in commands if "avfusion.cli.train" in c and "decoding.tune=pooled" in c]
    assert {"seed=0,1,2,3,4", "data=synthetic_study", "name=concat_head2", "training.head_seed=1000"} <= set(claims)


def test_the_third_edition_runs_its_parts_and_weights_the_streams_of_clean_and_multi_condition_runs(tmp_path,
                                                                                                  monkeypatch):
    study = load_study()
    commands = []
    monkeypatch.setattr(study, "run", lambda cmd, log=None: commands.append(cmd))
    out = tmp_path / "third"
    for run in ("audio_only-paper_500-multi-s1", "video_only-paper_500-clean-s1"):  # one seed's members finished
        (out / run).mkdir(parents=True)
        (out / run / "report.json").write_text(json.dumps({"name": run.split("-")[0], "seed": 1}))
    monkeypatch.setattr(sys, "argv", ["run_study.py", "--variant", "third", "--output", str(out), "--grids", "3"])
    study.main()
    (trained,) = [c for c in commands if "avfusion.cli.train" in c]
    assert {"fusion=stream_weighted", "name=stream_weighted", "train_noise.head_only=true", "frontend=reliability",
            "seed=0,1,2,3,4", "evaluation.noises=[white,babble,music]", "decoding.tune=pooled"} <= set(trained)
    weighted = [c for c in commands if "avfusion.cli.evaluate" in c]
    assert len(weighted) == 2  # fixed_weight and oracle_weight of the multi-condition audio_only and video_only, seed 1
    fixed = weighted[0]
    assert f"run_dirs=[{out / 'audio_only-paper_500-multi-s1'},{out / 'video_only-paper_500-clean-s1'}]" in fixed
    assert {"weights=per_condition", "rule=product", "name='fixed_weight(multi audio_only+video_only)'",
            f"output_dir={out / 'combinations' / 'fixed_weight-audio_only_multi-video_only-s1'}"} <= set(fixed)
    assert "weights=oracle" in weighted[1] and "evaluation.pairs=[[babble,0,occlusion,1.0]]" in weighted[1]
    # the positive control scores its pairs; the cd_state part has the paper's targets
    for variant, wanted in (("third_control", {"data=synthetic_interaction", "evaluation.contrasts=[[ih,eh],[ah,ae]]"}),
                            ("third_cd_state", {"label_scheme=cd_state", "seed=0,1,2"})):
        monkeypatch.setattr(sys, "argv", ["run_study.py", "--variant", variant, "--output", str(tmp_path / variant),
                                          "--grids", "1"])
        study.main()
        assert wanted <= set([c for c in commands if "avfusion.cli.train" in c][-1])


def test_two_study_processes_never_evaluate_the_same_combination_and_a_killed_ones_claim_lapses(tmp_path, monkeypatch):
    study = load_study()
    for run in ("concat-paper_500-clean-s0", "concat_head2-paper_500-clean-s0"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "report.json").write_text(json.dumps({"name": run.split("-")[0], "seed": 0}))
    evaluated = []
    monkeypatch.setattr(study, "run", lambda cmd, log=None: evaluated.append(cmd))
    out = tmp_path / "combinations" / "average-concat-concat_head2-s0"
    out.mkdir(parents=True)
    combination = [("average", ["concat", "concat_head2"])]
    (out / study.CLAIM).write_text(str(os.getppid()))  # a live process is evaluating it
    study.combine(tmp_path, combination, [0], [], tmp_path / "log")
    assert evaluated == [] and (out / study.CLAIM).read_text() == str(os.getppid())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / study.CLAIM).write_text(str(gone.pid))  # its process was killed
    study.combine(tmp_path, combination, [0], [], tmp_path / "log")
    assert len(evaluated) == 1 and f"output_dir={out}" in evaluated[0]
    assert not (out / study.CLAIM).exists()  # released when done


def test_a_step_logs_its_wall_time_and_the_peak_memory_of_its_process(tmp_path):
    study = load_study()
    log = tmp_path / study.TIMING
    # launched from a small process, as run_study.py is (a child's peak counts its parent's memory at the fork)
    step = [sys.executable, "-c", "block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096])"]
    subprocess.run([sys.executable, "-c", f"import importlib.util, sys; spec = importlib.util.spec_from_file_location("
                    f"'s', {str(SCRIPT)!r}); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
                    f"m.run({step!r}, __import__('pathlib').Path({str(log)!r}))"], check=True)
    started, seconds, command, peak_mb = log.read_text().rstrip("\n").split("\t")
    assert float(seconds) >= 0 and command.startswith("block = bytearray") and 300 <= float(peak_mb) < 600
    with pytest.raises(subprocess.CalledProcessError):
        study.run([sys.executable, "-c", "raise SystemExit(3)"], log)
    assert len(log.read_text().splitlines()) == 1  # a failed step is not logged as done


def test_export_adds_to_the_timing_log_of_earlier_sessions(tmp_path):
    study = load_study()
    sweep, kept = tmp_path / "sweep", tmp_path / "kept"
    (sweep / "concat-s0").mkdir(parents=True)
    (sweep / "concat-s0" / "report.json").write_text(json.dumps({"name": "concat", "seed": 0}, indent=2))
    (sweep / study.TIMING).write_text("t2\t60\tpart 3\n")
    kept.mkdir()
    (kept / study.TIMING).write_text("t0\t10\tpart 1\nt1\t20\tpart 2\n")
    study.export(sweep, kept)
    study.export(sweep, kept)  # exporting twice adds nothing
    assert (kept / study.TIMING).read_text() == "t0\t10\tpart 1\nt1\t20\tpart 2\nt2\t60\tpart 3\n"
    assert json.loads((kept / "concat-s0" / "report.json").read_text()) == {"name": "concat", "seed": 0}


@pytest.mark.slow
def test_the_quick_study_runs_every_grid_and_combination_and_reports_them(tiny_root):
    out = tiny_root / "paper_study"
    overrides = [o for o in tiny_overrides(tiny_root) if not o.startswith("training.encoder_cache_dir=")]
    overrides += [f"training.encoder_cache_dir={tiny_root}/study_cache", "trainer.max_epochs=1"]
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--seeds", "0", "1", "--output", str(out), *overrides],
                          capture_output=True, text=True, cwd=tiny_root)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(p.read_text()) for p in out.rglob("report.json")]
    seeds = {}
    for rep in reports:
        seeds.setdefault(rep["name"], set()).add(rep["seed"])
    assert seeds == {name: {0, 1} for name in (
        "audio_only", "video_only", "concat", "concat_joint", "bilinear", "audio_only+multi",
        "average(concat+bilinear)", "average(concat+concat next seed)")}  # the product rule: full variant only
    summary = (out / "summary.md").read_text()
    assert "| per - per(concat), 95% interval (resampled: seeds × speakers × utterances) |" in summary
    assert "| average(concat+bilinear) | 2 |" in summary
    assert list(out.glob("per_vs_snr_*.png"))
    # each encoder pre-trained once per seed and condition: audio, video, and the noise-trained audio
    assert len(list((tiny_root / "study_cache").glob("*/complete"))) == 3 * 2
    # every step's wall time is logged; --export keeps the reports (what git holds of a study stopped part way)
    steps = (out / "timing.tsv").read_text().splitlines()
    assert len(steps) == 2 + 4 and all(float(line.split("\t")[1]) >= 0 < float(line.split("\t")[3]) for line in steps)
    kept = tiny_root / "kept"
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output", str(out), "--export", str(kept)], check=True)
    exported = sorted(p.relative_to(kept) for p in kept.rglob("report.json"))
    assert exported == sorted(p.relative_to(out) for p in out.rglob("report.json"))
    assert all(json.loads((kept / p).read_text()) == json.loads((out / p).read_text()) for p in exported)
    assert (kept / "timing.tsv").read_text() == (out / "timing.tsv").read_text()


def test_compare_machines_finds_no_difference_between_two_copies_of_the_same_runs(tmp_path):
    """The same exported runs on both sides differ by exactly zero, interval included; a missing model is named."""
    results = SCRIPT.parent / "results" / "full"
    done = subprocess.run([sys.executable, str(SCRIPT.parent / "compare_machines.py"), str(results), str(results),
                           "--label", "A", "--models", "concat"], capture_output=True, text=True, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| concat (A machine) |")]
    assert len(rows) == 1 and rows[0].count("0.000 [0.000, 0.000]") == 11, done.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT.parent / "compare_machines.py"), str(results), str(tmp_path),
                          "--models", "concat"], capture_output=True, text=True)
    assert bad.returncode == 2 and "lacks reports of ['concat']" in bad.stderr


def test_a_verdict_needs_every_metric_on_one_side_of_zero():
    spec = importlib.util.spec_from_file_location("verdicts", SCRIPT.parent / "verdicts.py")
    verdicts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verdicts)
    from avfusion.reporting.intervals import Interval

    below, above, across = Interval(-0.02, -0.03, -0.01, 5, 10), Interval(0.02, 0.01, 0.03, 5, 10), \
        Interval(0.0, -0.01, 0.01, 5, 10)
    assert verdicts.verdict({"per": below, "frame_error": below}) == "**better**"
    assert verdicts.verdict({"per": above, "frame_error": above}) == "**worse**"
    assert verdicts.verdict({"per": below, "frame_error": above}) == "decoder-dependent"
    assert verdicts.verdict({"per": across, "frame_error": above}) == "frame error only: worse"
    assert verdicts.verdict({"per": across, "frame_error": across}) == "·"


def test_each_fusion_is_measured_against_the_streams_and_oracle_trained_as_it_was():
    spec = importlib.util.spec_from_file_location("verdicts", SCRIPT.parent / "verdicts.py")
    verdicts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verdicts)
    from avfusion.reporting.intervals import Interval

    rates = {"audio_only": 0.6, "audio_only+multi": 0.3, "video_only": 0.5, "concat": 0.55, "concat+multi": 0.25,
             "oracle_weight(audio_only+video_only)": 0.45, "oracle_weight(multi audio_only+video_only)": 0.28}
    reports = [{"name": n, "dev": [{"condition": "babble 0 dB", "per": r, "frame_error": r}]} for n, r in rates.items()]
    compared = []

    def differences(model, baseline, condition, metric):  # the difference of the means, a narrow interval
        compared.append((model, baseline))
        d = rates[model] - rates[baseline]
        return Interval(d, d - 0.01, d + 0.01, 5, 10)

    lines = verdicts.streams_section(reports, ["babble 0 dB"], "dev", "per", differences)
    # clean-trained concat against video (the better clean stream here), multi-condition concat against its audio
    assert {("concat", "video_only"), ("concat+multi", "audio_only+multi"), ("concat",
            "oracle_weight(audio_only+video_only)"), ("concat+multi", "oracle_weight(multi audio_only+video_only)")} \
        == set(compared)
    assert "| (the better stream, audio multi-condition) | audio 0.300 |" in lines
    assert "| concat+multi | -0.050 [-0.060, -0.040] ✓ |" in lines


def test_timing_counts_overlapping_steps_once_and_not_the_idle_time_between_sessions(tmp_path):
    spec = importlib.util.spec_from_file_location("timing", SCRIPT.parent / "timing.py")
    timing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timing)
    part = tmp_path / "third"
    part.mkdir()
    # two steps side by side (10:00:00-10:02:00 and 10:01:00-10:03:00), one in a later session, one logged before
    # memory was: 300 s summed, 240 s with a step running, peak 2 GB
    (part / timing.TIMING).write_text("2026-12-06 10:00:00\t120\tgrid 1\t1024\n2026-12-06 10:01:00\t120\tgrid 2\t2048\n"
                                      "2026-12-07 08:00:00\t60\tcombination\n")
    table = timing.summary([part])
    assert "| third | 3 | 5 | 4 | 2.0 |" in table  # 300 s, 240 s: the overlap counted once, the night not at all
    (part / timing.TIMING).write_text("yesterday\t12\tgrid\n")
    with pytest.raises(SystemExit, match=r"timing.tsv:1: not a timing line"):
        timing.summary([part])
