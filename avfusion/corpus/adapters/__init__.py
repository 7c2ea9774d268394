"""Corpus adapters: a real corpus's own layout read into the same `Corpus` a manifest gives.

One class per corpus, each with `load() -> Corpus` and a `conf/data/<name>.yaml`: `TcdTimitCorpus`,
`GridCorpus`, `Lrs3Corpus`, `TimitCorpus` (audio only); `avfusion.corpus.manifest.ManifestCorpus` for
any corpus described by a manifest.
"""
