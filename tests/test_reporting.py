import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.evaluation.evaluate import score
from avfusion.frontends.pipeline import FrameData
from avfusion.reporting.report import sweep_table


def test_score_hand_case():
    s = get_scheme("phone")
    idx = {p: i for i, p in enumerate(s.classes)}
    ref_frames = ["sil", "sil", "aa", "aa", "aa", "b", "b", "sil"]
    hyp_frames = ["sil", "sil", "aa", "ae", "aa", "aa", "b", "sil"]  # one lone "ae" frame, one b frame lost
    data = FrameData({"audio": np.zeros((8, 1), np.float32)}, np.array([idx[p] for p in ref_frames]),
                     np.array([0, 8]), ["u"], ["s"])
    out = score(np.array([idx[p] for p in hyp_frames]), data, [["sil", "aa", "b", "sil"]], s, min_frames=1)
    assert out["frame_error"] == pytest.approx(2 / 8)
    assert out["frame_error_phone"] == pytest.approx(2 / 8)
    # hypothesis sil aa ae aa b sil vs reference sil aa b sil: two insertions
    assert out["per"] == pytest.approx(2 / 4) and out["insertions"] == 2
    smoothed = score(np.array([idx[p] for p in hyp_frames]), data, [["sil", "aa", "b", "sil"]], s, min_frames=2)
    # runs shorter than 2 frames (ae, b and the last sil) are dropped: sil aa -> two deletions, no insertion
    assert (smoothed["insertions"], smoothed["deletions"], smoothed["substitutions"]) == (0, 2, 0)


def _report(name, seed, per_clean, per_noisy):
    rows = [{"condition": "clean", "per": per_clean, "frame_error": 0.1, "frame_error_phone": 0.1},
            {"condition": "babble 0 dB", "per": per_noisy, "frame_error": 0.2, "frame_error_phone": 0.2}]
    return {"name": name, "seed": seed, "test": rows}


def test_sweep_table_rows_per_model_and_seed_spread():
    table = sweep_table([_report("concat", 1, 0.2, 0.4), _report("concat", 2, 0.3, 0.5),
                         _report("audio_only", 1, 0.25, 0.7)])
    lines = table.splitlines()
    assert lines[0] == "| per | seeds | clean | babble 0 dB |"
    assert lines[2] == "| concat | 2 | 0.250 ± 0.050 | 0.450 ± 0.050 |"
    assert lines[3] == "| audio_only | 1 | 0.250 | 0.700 |"
