"""The built-in forced aligner (`avfusion-align`): phone alignments for corpora that come with text only.

    transcripts.py  each utterance's text as the linear HMM of its pronunciation (the lexicon's words)
    passes.py       flat start, then rounds of training a frame DNN and realigning every utterance
    outputs.py      the TextGrids, the manifest naming them, alignment.json
    boundaries.py   boundary accuracy of an alignment against reference alignments (within 10/20/40 ms)
"""
