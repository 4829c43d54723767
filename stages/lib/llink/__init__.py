"""LLINK (a language as a modality): the building blocks of the llink_* stages.

One concept per module: ``data`` (pairs), ``backbones`` (frozen encoder and decoder),
``projector`` (Stage A), ``prompt`` (Stage B's prompt, labels and slot positions),
``slots`` (Stage B's slot modules and injection), ``losses``, ``finetune`` (the LoRA loop Stage B
and the direct baseline share), ``metrics``, ``report``, ``inputs`` (what later stages read) and
``run`` (params, provenance and timing around a stage).
None of them knows about DVC. The original is rajansagarwal/llink.
"""
