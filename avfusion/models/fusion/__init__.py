"""Fusion heads: one class per file, one YAML per class in conf/fusion/.

A head names the encoders it consumes (`encoders`), says whether they are first trained alone
with their own softmax (`pretrain_encoders`) and whether they stay frozen while it trains
(`freeze_encoders`), and maps their last hidden layers to class logits. `build(hidden_dims, scheme)`
sizes it once the encoders and the label scheme (classes and their groups) are known.
"""
