"""The embedded synthetic corpus: espeak-ng (or Festival) speech with exact phone timings and a
rendered talking mouth, written in the manifest layout so it loads through the same code as a real
corpus (`conf/data/synthetic.yaml`, `avfusion-synth`)."""
