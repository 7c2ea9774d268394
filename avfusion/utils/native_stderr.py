"""MediaPipe's native (C++) start-up lines on stderr, filtered: TensorFlow Lite and absl print four lines every
run that say nothing a user can act on; environment variables (GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL) do not
reach them, so the file descriptor itself is caught for the moment they are written (the model's creation and
its first frame), and every line that is not one of them is passed on: an error is delayed, never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

BENIGN = (
    re.compile(r"Created TensorFlow Lite XNNPACK delegate for CPU"),
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"inference_feedback_manager\.cc:\d+\] Feedback manager requires a model with a single signature"),
    re.compile(r"landmark_projection_calculator\.cc:\d+\] Using NORM_RECT without IMAGE_DIMENSIONS"),
)


@contextlib.contextmanager
def filtered_stderr(benign: tuple[re.Pattern, ...] = BENIGN) -> Iterator[None]:
    """Inside the block, file descriptor 2 goes to a temporary file; after it, every line that matches none of
    `benign` is written to the real stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(p.search(line) for p in benign)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def quiet_until_first_call(make) -> Iterator:
    """`make()` (a native model) and then its first call, both inside one `filtered_stderr`: the model's graph
    opens its TensorFlow Lite interpreters on threads of its own, after `make` returns and before or during the
    first frame, so the window must span both. Yields (model, wrapped call maker): `wrap(fn)` gives `fn` whose
    first call ends the filtering (ended at the latest when the block ends)."""
    quiet = contextlib.ExitStack()
    quiet.enter_context(filtered_stderr())
    with quiet:
        model = make()

        def wrap(fn):
            def wrapped(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                finally:
                    quiet.close()  # the first call's lines are in; later calls print as they come
            return wrapped

        yield model, wrap
