"""Helpers for the contrastive-learning course; the notebooks import them from here.

Modules: ``runtime`` (profiles, devices, seeds, folders), ``data`` (datasets in
memory), ``augment`` (batched random views), ``models``, ``losses``, ``train``
(loop and checkpoints), ``evaluate`` (probes, kNN, scores), ``plots``, ``results``.
"""

from course_utils.runtime import data_dir, device, pick, profile, seed_everything

__all__ = ["data_dir", "device", "pick", "profile", "seed_everything"]
