"""Mouth detectors on real faces that installed packages ship."""

import cv2
import numpy as np
import pytest

from avfusion.configs import configured
from avfusion.synth.face import carphone_path
from avfusion.frontends.detectors import PrecroppedDetector
from avfusion.frontends.store import FeatureStore
from avfusion.frontends.video import dct_features
from avfusion.media import read_video


def mediapipe_lip_boxes(frames):
    """Lip landmark bounding boxes straight from MediaPipe (the reference for the detector's boxes)."""
    import mediapipe as mp

    lips = sorted({i for edge in mp.solutions.face_mesh.FACEMESH_LIPS for i in edge})
    out = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        for f in frames:
            r = mesh.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
            if not r.multi_face_landmarks:
                out.append(None)
                continue
            lm = r.multi_face_landmarks[0].landmark
            pts = np.array([[lm[i].x * f.shape[1], lm[i].y * f.shape[0]] for i in lips])
            out.append((pts.min(0), pts.max(0)))
    return out


@pytest.fixture(scope="module")
def carphone():
    return read_video(carphone_path())


def test_mediapipe_finds_the_mouth_on_the_real_carphone_clip(carphone):
    frames, fps = carphone
    assert len(frames) == 120 and fps == pytest.approx(29.97, abs=0.01)
    with configured("detector", "detector=mediapipe").session() as detect:
        boxes = [detect(f) for f in frames]
    found = [b for b in boxes if b is not None]
    assert len(found) / len(frames) >= 0.95
    reference = mediapipe_lip_boxes(frames)
    for box, ref in zip(boxes, reference):
        if box is None or ref is None:
            continue
        (x0, y0), (x1, y1) = ref
        assert x0 <= box.cx <= x1 and y0 <= box.cy <= y1
        assert box.size >= x1 - x0  # the ROI holds the whole lip width


def test_roi_extraction_on_carphone_counts_and_shapes(carphone):
    frames, _ = carphone
    rois, boxes, missed = configured("frontend.video.extractor", "detector=mediapipe").rois(frames[:30])
    assert rois.shape == (30, 64, 64) and boxes.shape == (30, 4)
    assert missed <= 2


def test_the_roi_store_holds_the_crops_the_dct_path_cuts(carphone, tmp_path):
    """The pixels a convolutional front-end learns from are the DCT front-end's crops, kept as bytes at
    the video rate (29.97 fps here), and their DCT is the DCT front-end's features."""
    from avfusion.corpus.types import Utterance

    frames, _ = carphone
    utt = Utterance("carphone", "s", "train", None, carphone_path(), None)
    store = FeatureStore(tmp_path, configured("frontend.streams.0.extractor", "frontend=mouth_roi", "detector=mediapipe"))
    report = store.build([utt], progress=False)
    assert report.extracted == ["carphone"] and not report.failed
    rois, meta = store.read(utt)
    assert rois.dtype == np.uint8 and rois.shape == (120, 44, 44)
    assert meta["fps"] == pytest.approx(29.97, abs=0.01) and meta["n_frames"] == 120
    dct = configured("frontend.video.extractor", "detector=mediapipe", roi_size=44, n_coefficients=50)
    np.testing.assert_array_equal(rois, dct.rois(frames, "carphone")[0])
    features, dct_meta = dct.extract(utt)
    np.testing.assert_array_equal(dct_features(np.asarray(rois), 50), features)
    assert dct_meta == meta
    assert store.build([utt], progress=False).cached == ["carphone"]  # built once


def test_haar_finds_a_mouth_on_the_astronaut():
    from skimage.data import astronaut

    img = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    with configured("detector", "detector=haar").session() as detect:
        box = detect(img)
    assert box is not None
    (x0, y0), (x1, y1) = mediapipe_lip_boxes([img])[0]  # independent localisation of the lips
    w = x1 - x0
    assert x0 - 0.25 * w <= box.cx <= x1 + 0.25 * w
    assert y0 - 0.5 * w <= box.cy <= y1 + 0.5 * w


def test_precropped_uses_the_whole_frame():
    with PrecroppedDetector().session() as detect:
        box = detect(np.zeros((90, 120, 3), np.uint8))
    assert (box.cx, box.cy, box.size) == (60, 45, 90)


def test_tasks_api_model_path_must_exist(carphone):
    with pytest.raises(FileNotFoundError, match="nowhere.task"):
        with configured("detector", "detector=mediapipe", model_path="/nowhere.task").session():
            pass


def test_no_mouth_anywhere_is_an_error_naming_the_file(tmp_path):
    from avfusion.synth.builder import write_video
    from avfusion.corpus.types import Utterance
    from avfusion.media import VideoError

    path = tmp_path / "blank.mp4"
    write_video(path, np.full((10, 64, 64, 3), 128, np.uint8), 25.0)
    utt = Utterance("u", "s", "train", None, path, None)
    with pytest.raises(VideoError, match="blank.mp4: mediapipe found no mouth in any of 10 frames"):
        configured("frontend.video.extractor", "detector=mediapipe").extract(utt)


def test_mediapipes_start_up_lines_are_dropped_and_anything_else_on_stderr_passes(capfd):
    """The four native lines TensorFlow Lite and absl print every run are filtered; an error written to the
    same file descriptor in the same moment still reaches the user."""
    import os
    import subprocess
    import sys

    from avfusion.utils.native_stderr import filtered_stderr

    with filtered_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 graph.cc:1] a real error\n")
    assert capfd.readouterr().err == "E0000 graph.cc:1] a real error\n"
    code = ("import numpy as np\nfrom avfusion.configs import configured\n"
            "with configured('detector', 'detector=mediapipe', config='predict').session() as detect:\n"
            "    detect(np.zeros((96, 96, 3), np.uint8)); detect(np.zeros((96, 96, 3), np.uint8))\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "TensorFlow Lite" not in err and "absl::InitializeLog" not in err and "Feedback manager" not in err, err
