"""`face` mode: the animated mouth composited onto real faces must still be a face to a detector."""

import cv2

from avfusion.media import read_video

from conftest import small_synthetic


def test_mediapipe_finds_the_lips_on_face_mode_video(tmp_path):
    import mediapipe as mp

    builder = small_synthetic(tmp_path / "face", "data/renderer=face", n_speakers=4, utterances_per_speaker=2)
    corpus = builder.load(progress=False)
    found = total = 0
    for utt in corpus:
        frames = read_video(utt.video)[0]
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
            for frame in frames:
                total += 1
                result = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                found += bool(result.multi_face_landmarks)
    assert total > 100
    assert found / total >= 0.95, f"lips found on {found} of {total} frames"


def test_the_mouth_moves_on_the_still_portrait(tmp_path):
    """On the still astronaut plate, only the composited mouth changes over time."""
    from avfusion.synth.face import face_plates

    builder = small_synthetic(tmp_path / "still", "data/renderer=face", utterances_per_speaker=1)
    corpus = builder.load(progress=False)
    plate = face_plates()[0]
    assert plate.name == "astronaut"
    (cx, cy), w = plate.mouth_centre[0].astype(int), int(plate.mouth_width[0])
    frames = read_video(corpus.utterances[0].video)[0].astype(float)  # speaker s01 -> plate 0
    mouth = frames[:, cy - w // 4:cy + w // 4, cx - w // 2:cx + w // 2].std(axis=0).mean()
    nose = frames[:, cy - 3 * w // 2:cy - w, cx - w // 2:cx + w // 2].std(axis=0).mean()
    assert mouth > 5 * nose
