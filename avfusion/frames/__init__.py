"""Frames: the 100 Hz clock, frame labels and reference spans, and the frame matrices every model reads.

    clock.py      FRAME_RATE, frame counts and times, the frames of a time span
    labelling.py  frame labels of a label scheme and scoring references, from alignments read once
    data.py       UttFrames (one utterance, for front-end steps) and FrameData (one split, for models)
    cache.py      the fitted front-end and train/dev FrameData, shared by every run with the same settings
    stats.py      a corpus's speakers, hours and frames per class

Sits above corpus/ (it reads alignments and label schemes) and below training/ and evaluation/. It
uses a front-end only through the object it is handed (`transform`, `state_dict`), so frontends/
may use its containers without a loop.
"""
