import subprocess
import sys

from avfusion.corpus.manifest import read_manifest


def test_avfusion_synth_builds_and_prints_statistics(tmp_path):
    root = tmp_path / "cli"
    cmd = [sys.executable, "-m", "avfusion.cli.synth", f"data.root={root}", "data.n_speakers=3",
           "data.n_dev_speakers=1", "data.n_test_speakers=1", "data.utterances_per_speaker=2", "data.n_jobs=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "classes covered (of 39)" in out.stdout
    assert "train" in out.stdout and "test" in out.stdout
    assert len(read_manifest(root / "manifest.jsonl")) == 6
    # a second run finds the corpus and generates nothing
    again = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "synthesising" not in again.stderr
    assert not (tmp_path / "outputs").exists()  # no stray Hydra run folders


def test_bad_override_is_reported(tmp_path):
    cmd = [sys.executable, "-m", "avfusion.cli.synth", f"data.root={tmp_path}", "data/renderer=movie"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "data/renderer" in out.stderr + out.stdout and "face" in out.stderr + out.stdout
