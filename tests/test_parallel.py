"""Work done in worker processes stops when the command that started it is killed; progress without a
terminal."""

import os
import signal
import subprocess
import sys
import time

WORKER = """
import os, sys, time
from pathlib import Path
from avfusion.utils.progress import parallel_map

def work(i):
    time.sleep(0.2)
    (Path(sys.argv[1]) / f"{i}.{os.getpid()}").write_text("done")

if __name__ == "__main__":
    parallel_map(work, list(range(200)), n_jobs=2, progress=False)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def test_killing_the_parent_kills_its_workers(tmp_path):
    script = tmp_path / "work.py"
    script.write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(out)], cwd=tmp_path)
    deadline = time.time() + 60
    while len(list(out.iterdir())) < 6 and time.time() < deadline:
        time.sleep(0.05)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    done_at_kill = len(list(out.iterdir()))
    assert done_at_kill >= 6
    time.sleep(1.5)  # without the fix the workers go on through the tasks already handed to them
    assert len(list(out.iterdir())) <= done_at_kill + 2  # at most what was being written at the kill
    workers = {int(p.suffix[1:]) for p in out.iterdir()}
    assert workers and not any(alive(pid) for pid in workers)


def test_without_a_terminal_progress_is_log_lines_at_a_bounded_rate(caplog, monkeypatch):
    """A batch job (stderr redirected) gets `desc: done/total utt, elapsed, ETA` lines, at most one per EVERY_S,
    and the end; work shorter than that logs nothing."""
    from avfusion.utils import progress
    from avfusion.utils.progress import parallel_map

    clock = iter(float(t) for t in range(0, 1000, 4))  # each call of the clock: 4 s later
    monkeypatch.setattr(progress, "_clock", lambda: next(clock))
    with caplog.at_level("INFO", logger="avfusion.utils.progress"):
        assert parallel_map(lambda x: x * 2, list(range(9)), desc="extracting mfcc") == [2 * x for x in range(9)]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extracting mfcc: 3/9 utt, 12 s, about 0.4 min more")  # 3 items x 4 s, 6 to go
    assert len(lines) == 3 and lines[-1] == "extracting mfcc: 9/9 utt in 40 s"  # at 12 and 24 s, then the end
    caplog.clear()
    with caplog.at_level("INFO", logger="avfusion.utils.progress"):
        parallel_map(lambda x: x, [1, 2])
    assert not caplog.records
