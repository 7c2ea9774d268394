"""experiments/tuning_policies/compare.py: a study's runs under each decoder tuning policy, side by side."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "tuning_policies" / "compare.py"


def _report(tuning: str, per: float, frame_error: float = 0.2) -> str:
    return json.dumps({"evaluation": {"tuning": tuning},
                       "dev": [{"condition": "clean", "per": per, "frame_error": frame_error}]})


def test_compare_tables_each_policy_and_skips_runs_still_training(tmp_path):
    study = tmp_path / "study"
    for run in ("concat-s0", "bilinear-s0"):
        (study / run).mkdir(parents=True)
        (study / run / "run.json").write_text("{}")
    (study / "concat-s0" / "report.json").write_text(_report("pooled", 0.30))
    redecoded = tmp_path / "study_tuning" / "per_condition" / "concat-s0"  # decoded again earlier: not redone
    redecoded.mkdir(parents=True)
    (redecoded / "report.json").write_text(_report("per_condition", 0.25))
    done = subprocess.run([sys.executable, str(SCRIPT), str(study), "--split", "dev", "--conditions", "clean",
                           "--policies", "pooled", "per_condition"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "skipped, no report.json yet: bilinear-s0" in done.stderr
    assert "| concat-s0 | clean | 0.200 | 0.300 | 0.250 |" in done.stdout and "bilinear" not in done.stdout
    # frame error does not depend on the decoder: reports that disagree on it were not decoded from one model
    (redecoded / "report.json").write_text(_report("per_condition", 0.25, frame_error=0.3))
    bad = subprocess.run([sys.executable, str(SCRIPT), str(study), "--split", "dev", "--conditions", "clean",
                          "--policies", "pooled", "per_condition"], capture_output=True, text=True)
    assert bad.returncode != 0 and "frame error differs between policies" in bad.stderr
